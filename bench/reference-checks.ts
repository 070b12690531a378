/**
 * The checks our contract requires, added to the reference chat server (bench/reference-chat-server.ts
 * `checks`, bench/chat-gateway.ts `--target reference-checks`), each done by the services' own
 * modules in the reference's one process (bench code only):
 * - per request: the gateway's admission (gateway/src/protection/admission.ts): address and user
 *   budgets, revocation and the sendMessage budget in one Redis round trip;
 * - per socket: the token verified with revocation at connect, and again every 60 s (kit's
 *   ConnectionTokenWatch); the gateway's subscribe budget per subscribe;
 * - per send: Chat's pre-check (send-precheck.ts), send budgets and spam counters (send-admission.ts,
 *   one Redis trip), STORE with its outbox row through group commit (store-statement.ts), and the
 *   push hand-over (kit's outbox relay: one BullMQ job per CHAT_PUSH_BATCH_MS window).
 * It works on Chat's migrated schema (conversations, conversation_members, messages, outbox_events).
 * Run as the reference is, with REFERENCE_CHECKS (JSON `ReferenceChecksOptions`) set:
 *   node --import tsx bench/reference-checks.ts
 */
import {
  appError,
  ConnectionTokenWatch,
  createLogger,
  createRateLimiter,
  ErrorCode,
  groupCommit,
  outboxEventData,
  outboxNotifications,
  sqlOutboxStore,
  startOutboxRelay,
  timeOrderedUuid,
  type AccessTokenVerifier,
  type OutboxRecord,
  type Redis,
  type SqlClient,
  type Viewer,
} from "@hv/kit";
import type { GraphQLError } from "graphql";
import type pg from "pg";
import { runReferenceServer } from "./reference-chat-server";
import { EdgeAdmission, type AdmissionVerdict } from "@hv/gateway/src/protection/admission";
import type { ChatServices } from "@hv/chat/src/modules/context";
import type { StoredSend } from "@hv/chat/src/modules/messages";
import { SendAdmission } from "@hv/chat/src/modules/send-admission";
import { SendPrechecks } from "@hv/chat/src/modules/send-precheck";
import { storeStatement } from "@hv/chat/src/modules/store-statement";

/** The budgets: the gateway's GATEWAY_RATE_LIMIT_* (per 60 s) and Chat's CHAT_SEND_*. */
export interface ReferenceBudgets {
  address: number;
  user: number;
  sendMessage: number;
  subscribe: number;
  /** Chat's CHAT_SEND_BURST (per 10 s) and CHAT_SEND_SUSTAINED (per hour). */
  sendBurst: number;
  sendSustained: number;
}

export interface ReferenceChecksOptions {
  /** Redis keys, BullMQ queues and budgets live under this prefix (EVENTS_PREFIX). */
  eventsPrefix: string;
  budgets: ReferenceBudgets;
  /** CHAT_PUSH_BATCH_MS (Chat's default 20). */
  pushBatchMs?: number;
}

/** A stored (or earlier stored) message, as the reference builds its answer from it. */
export interface CheckedSend {
  id: string;
  seq: number;
  text: string | null;
  createdAt: Date;
  /** Who sees the event; null for a retried key (nothing published). */
  audience: string[] | null;
  /** The outbox record handed to the relay. */
  record?: OutboxRecord;
}

export interface ReferenceChecks {
  /** The gateway's admission of one request: the sendMessage budget spent `sends` times. */
  admit(ip: string, caller: { viewer: Viewer; issuedAt: number }, sends: number): Promise<AdmissionVerdict>;
  /** The gateway's subscribe budget (per user). */
  subscribe(viewer: Viewer): Promise<void>;
  /** Watches a socket's token: verified again every 60 s, closed with 4403 once refused. */
  watch(
    socket: Parameters<ConnectionTokenWatch["watch"]>[0],
    token: string,
    expiresAt: number | undefined,
  ): void;
  /** Chat's send: pre-check, budgets and spam, STORE with the outbox row. */
  send(
    viewer: Viewer,
    conversationId: string,
    clientMessageId: string,
    text: string | null,
  ): Promise<CheckedSend>;
  /** Hands a stored message's outbox event to the relay (after its publish, as Chat does). */
  handOver(record: OutboxRecord): void;
  close(): Promise<void>;
}

/** Chat's spam settings at their defaults (CHAT_NEW_ACCOUNT_*, CHAT_REPEATED_TEXT_*). */
const SPAM_DEFAULTS = {
  newAccountHours: 24,
  newAccountMaxMessages: 100,
  newAccountMaxConversations: 10,
  repeatedTextConversations: 5,
  repeatedTextWindowSeconds: 3600,
};

export function startReferenceChecks(
  options: ReferenceChecksOptions & {
    pool: pg.Pool;
    databaseUrl: string;
    redis: Redis;
    redisUrl: string;
    verifier: AccessTokenVerifier;
  },
): ReferenceChecks {
  const { pool, redis, budgets, eventsPrefix } = options;
  const logger = createLogger({ service: "reference", level: "warn" });
  const sql: SqlClient = {
    query: async <T>(statement: { text: string; values: readonly unknown[]; name?: string }) =>
      (
        await pool.query({
          text: statement.text,
          values: statement.values as unknown[],
          ...(statement.name === undefined ? {} : { name: statement.name }),
        })
      ).rows as T[],
  };
  const stores = groupCommit({
    databaseUrl: options.databaseUrl,
    poolName: "store",
    maxBatch: 16,
    maxRunning: 2,
    min: 2,
  });
  const relay = startOutboxRelay({
    store: sqlOutboxStore(pool),
    handOverWindowMs: options.pushBatchMs ?? 20,
    wakeUps: outboxNotifications({ connectionString: options.databaseUrl, logger }),
    connection: options.redisUrl,
    prefix: eventsPrefix,
    logger,
    markDelayMs: 1_000,
  });
  const keyPrefix = `${eventsPrefix}:gw:rl`;
  const minute = (name: string, points: number) => ({
    keyPrefix: `${keyPrefix}:${name}`,
    name,
    points,
    durationSeconds: 60,
  });
  const admission = new EdgeAdmission(
    redis,
    minute("edge-address", budgets.address),
    minute("edge-user", budgets.user),
  );
  const subscribes = createRateLimiter(
    redis,
    { name: "edge-subscribe", points: budgets.subscribe, durationSeconds: 60 },
    keyPrefix,
  );
  const tokenWatch = new ConnectionTokenWatch({
    revalidateMs: 60_000,
    logger,
    verify: (token) => options.verifier.verify(token),
  });
  const prechecks = new SendPrechecks(sql);
  const sendAdmission = new SendAdmission(redis, {
    burst: { name: "chat-send-burst", points: budgets.sendBurst, durationSeconds: 10 },
    sustained: { name: "chat-send-sustained", points: budgets.sendSustained, durationSeconds: 3600 },
  });
  // What send-admission.ts and spam-signals.ts read of Chat's services.
  const services = {
    config: { spam: SPAM_DEFAULTS },
    redis,
    sql,
    flushEvents: () => void relay.flush(),
  } as unknown as ChatServices;
  const forbidden = (reason: string, message: string): GraphQLError =>
    appError(ErrorCode.FORBIDDEN, message, { details: { reason } });

  const earlier = async (conversationId: string, senderId: string, clientMessageId: string) => {
    const { rows } = await pool.query<{ id: string; seq: number; text: string | null; created_at: Date }>({
      name: "ref-checks-earlier",
      text: `SELECT id::text, seq, text, created_at FROM messages
              WHERE conversation_id = $1 AND sender_id = $2 AND client_message_id = $3`,
      values: [conversationId, senderId, clientMessageId],
    });
    const row = rows[0];
    return row && { id: row.id, seq: row.seq, text: row.text, createdAt: row.created_at, audience: null };
  };

  return {
    admit: (ip, caller, sends) =>
      admission.admit(
        ip,
        caller,
        sends === 0
          ? []
          : [
              {
                key: `${keyPrefix}:edge-send-message:${caller.viewer.userId}`,
                name: "edge-send-message",
                points: budgets.sendMessage,
                durationSeconds: 60,
                amount: sends,
              },
            ],
      ),
    subscribe: (viewer) => subscribes.consume(`user:${viewer.userId}`),
    watch: (socket, token, expiresAt) => {
      const handle = tokenWatch.watch(socket, token, expiresAt);
      socket.once("close", () => handle.stop());
    },
    async send(viewer, conversationId, clientMessageId, text) {
      const senderId = viewer.userId;
      const check = await prechecks.check(conversationId, senderId, clientMessageId);
      if (!check) throw forbidden("not-member", "Not a member of this conversation");
      if (check.existing) {
        const found = await earlier(conversationId, senderId, clientMessageId);
        if (found) return found;
      }
      if (check.closed) throw forbidden("closed", "This conversation is closed");
      if (check.banned) throw forbidden("banned", "This account may not send messages");
      await sendAdmission.admit(services, viewer, conversationId, text);
      const now = new Date();
      const message = {
        messageId: timeOrderedUuid(),
        conversationId,
        senderId,
        clientMessageId,
        text,
        attachmentIds: [],
        replyToId: null,
        now,
      };
      const event = outboxEventData("message.created", {
        messageId: message.messageId,
        conversationId,
        conversationKind: "GROUP",
        senderId,
        seq: 1,
        sentAt: now.toISOString(),
        preview: text === null ? null : [...text].slice(0, 200).join(""),
        recipients: [],
      });
      const { seq: _seq, conversationKind: _kind, recipients: _recipients, ...eventBase } = event.payload;
      let stored: StoredSend | undefined;
      try {
        stored = (
          await stores.query<StoredSend>(
            storeStatement(message, eventBase, event.id, check.kind),
            conversationId,
          )
        )[0];
      } catch (error) {
        if ((error as { code?: string }).code !== "23505") throw error;
        const found = await earlier(conversationId, senderId, clientMessageId);
        if (found) return found;
        throw error;
      }
      if (!stored) throw forbidden("not-stored", "Not stored");
      return {
        id: message.messageId,
        seq: stored.seq,
        text,
        createdAt: now,
        audience: stored.audience,
        record: { id: event.id, type: event.type, payload: stored.event, createdAt: now },
      };
    },
    handOver: (record) => relay.publishCommitted([record]),
    async close() {
      tokenWatch.clear();
      await relay.stop();
      await stores.end();
    },
  };
}

if (require.main === module) runReferenceServer(startReferenceChecks);
