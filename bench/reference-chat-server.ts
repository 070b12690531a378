/**
 * A minimal reference chat server, ONE process, for the floor of issue #17 (bench code only):
 *
 *   REFERENCE_PORT=4999 REFERENCE_DATABASE_URL=postgresql://... AUTH_SIGNING_KEYS='[jwk]' \
 *     node --import tsx bench/reference-chat-server.ts
 *
 * - graphql-ws (`graphql-ws/use/ws` on `ws`) and HTTP POST on one port, against a tiny schema of
 *   its own that answers the app's ChatMyEvents and ChatSendMessage texts field for field (scalars
 *   as String; attachments, reactions, replyTo and invitation always empty);
 * - sendMessage (over HTTP or the socket): the ES256 access token checked by @hv/kit's verifier
 *   (local key set, the same 60 s memory of verified tokens; no revocation check, no rate budget),
 *   ONE PostgreSQL statement (autocommit) that checks membership, takes the conversation's next seq
 *   and inserts the message, deduplicated on (conversation, sender, clientMessageId), then one
 *   PUBLISH per member on Redis (graphql-redis-subscriptions, ioredis auto-pipelining);
 * - the sender's displayName travels in the event, from an in-process map filled at subscribe
 *   (one SELECT per event-loop turn of subscribes) or from PostgreSQL once on a miss.
 * It creates its tables in the database it is given. SIGTERM ends it.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  buildSchema,
  GraphQLError,
  Kind,
  parse,
  validate,
  execute,
  type DocumentNode,
  type GraphQLFieldConfig,
  type GraphQLObjectType,
} from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { RedisPubSub } from "graphql-redis-subscriptions";
import Redis from "ioredis";
import pg from "pg";
import { WebSocketServer } from "ws";
import { bearerToken, createAccessTokenVerifier } from "@hv/kit/src/auth/access-tokens";
import { SessionRevocations } from "@hv/kit/src/auth/revocations";
import type { Viewer } from "@hv/kit/src/auth/viewer";
import { parseSigningKeys, publicSigningKeyJwk } from "@hv/kit/src/auth/signing-keys";
import { tokenExpiry } from "@hv/kit/src/connection-auth";
import type {
  CheckedSend,
  ReferenceChecks,
  ReferenceChecksOptions,
  startReferenceChecks,
} from "./reference-checks";

const SDL = /* GraphQL */ `
  type Query {
    ok: Boolean!
  }
  type User {
    id: ID!
    displayName: String!
  }
  type Media {
    id: ID!
  }
  type ReactionCount {
    emoji: String!
    count: Int!
    reactedByMe: Boolean!
  }
  type Message {
    id: ID!
    conversationId: ID!
    seq: Int!
    sender: User
    senderId: ID!
    clientMessageId: String!
    text: String
    attachments: [Media!]!
    replyTo: Message
    reactions: [ReactionCount!]!
    createdAt: String!
    editedAt: String
    deleted: Boolean!
    version: Int!
  }
  type GroupInvitation {
    id: ID!
    title: String!
    inviter: User!
  }
  enum ChatEventKind {
    MESSAGE_ADDED
  }
  type ChatEvent {
    kind: ChatEventKind!
    conversationId: ID!
    seq: Int!
    message: Message
    actor: User
    invitation: GroupInvitation
    occurredAt: String!
  }
  input SendMessageInput {
    conversationId: ID!
    clientMessageId: String!
    text: String
  }
  type Mutation {
    sendMessage(input: SendMessageInput!): Message!
  }
  type Subscription {
    myChatEvents: ChatEvent!
  }
`;

/** Its tables (created at start; a caller may create them first to seed them). */
export const REFERENCE_TABLES = `
CREATE TABLE IF NOT EXISTS ref_users (id uuid PRIMARY KEY, display_name text NOT NULL);
CREATE TABLE IF NOT EXISTS ref_conversations (
  id uuid PRIMARY KEY, member_ids uuid[] NOT NULL, last_seq integer NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ref_messages (
  id uuid PRIMARY KEY, conversation_id uuid NOT NULL, seq integer NOT NULL, sender_id uuid NOT NULL,
  client_message_id text NOT NULL, text text, created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (conversation_id, seq), UNIQUE (conversation_id, sender_id, client_message_id));
`;

/**
 * $1 conversation, $2 sender, $3 clientMessageId, $4 new id, $5 text: the stored message (fresh, with
 * the members to publish to) or the one this key stored before; no row when the sender is no member.
 */
const SEND_SQL = `
WITH existing AS (
  SELECT id, seq, text, created_at FROM ref_messages
  WHERE conversation_id = $1 AND sender_id = $2 AND client_message_id = $3
), bumped AS (
  UPDATE ref_conversations SET last_seq = last_seq + 1
  WHERE id = $1 AND $2 = ANY (member_ids) AND NOT EXISTS (SELECT 1 FROM existing)
  RETURNING last_seq, member_ids
), inserted AS (
  INSERT INTO ref_messages (id, conversation_id, seq, sender_id, client_message_id, text)
  SELECT $4, $1, last_seq, $2, $3, $5 FROM bumped
  RETURNING id, seq, text, created_at
)
SELECT i.id, i.seq, i.text, i.created_at, b.member_ids::text[] AS member_ids FROM inserted i, bumped b
UNION ALL
SELECT id, seq, text, created_at, NULL FROM existing`;

interface SendRow {
  id: string;
  seq: number;
  text: string | null;
  created_at: Date;
  member_ids: string[] | null;
}

/** A stored message (or the one its key stored before: no audience, nothing to publish). */
type Stored = CheckedSend;

interface MessageObject {
  id: string;
  conversationId: string;
  seq: number;
  sender: { id: string; displayName: string };
  senderId: string;
  clientMessageId: string;
  text: string | null;
  attachments: never[];
  replyTo: null;
  reactions: never[];
  createdAt: string;
  editedAt: null;
  deleted: false;
  version: number;
}

/** A ping to every idle socket this often (docs/client-contract.md: 25 s). */
const KEEP_ALIVE_MS = 25_000;

export interface ReferenceServerOptions {
  port: number;
  host?: string;
  databaseUrl: string;
  redisUrl: string;
  /** Redis channels are `<prefix>:user:<id>`. */
  channelPrefix: string;
  /** AUTH_SIGNING_KEYS' text: the private JWKs the tokens were signed with (their public halves verify). */
  signingKeys: string;
  poolSize?: number;
  /**
   * The checks our contract requires (bench/reference-checks.ts), on Chat's migrated schema in
   * `databaseUrl`: the reference's own ref_users still give the names, Chat's tables the rest.
   * `start` is bench/reference-checks.ts's (passed in: the plain reference never loads it).
   */
  checks?: ReferenceChecksOptions & { start: typeof startReferenceChecks };
}

export interface ReferenceServer {
  port: number;
  close(): Promise<void>;
}

export async function startReferenceServer(options: ReferenceServerOptions): Promise<ReferenceServer> {
  const poolSize = options.poolSize ?? 10;
  // Opened whole at start and kept, as the services' pools are (DATABASE_POOL_MIN, kit's POOL_IDLE_MS).
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: poolSize,
    min: poolSize,
    idleTimeoutMillis: 5 * 60_000,
  });
  const opened = await Promise.all(Array.from({ length: poolSize }, () => pool.connect()));
  for (const client of opened) client.release();
  await pool.query(REFERENCE_TABLES);
  const commands = options.checks ? new Redis(options.redisUrl) : undefined;
  const verifier = createAccessTokenVerifier({
    jwks: { keys: parseSigningKeys(options.signingKeys, "AUTH_SIGNING_KEYS").map(publicSigningKeyJwk) },
    issuer: "haiyvee",
    audience: "haiyvee-api",
    revocations: commands ? new SessionRevocations(commands) : { isRevoked: () => Promise.resolve(false) },
  });
  const publisher = new Redis(options.redisUrl, { enableAutoPipelining: true });
  const subscriber = new Redis(options.redisUrl);
  let checks: ReferenceChecks | undefined;
  if (options.checks && commands) {
    checks = options.checks.start({
      ...options.checks,
      pool,
      databaseUrl: options.databaseUrl,
      redis: commands,
      redisUrl: options.redisUrl,
      verifier,
    });
  }
  const pubsub = new RedisPubSub({ publisher, subscriber });
  const channel = (userId: string) => `${options.channelPrefix}:user:${userId}`;

  /** displayName by user id: filled for subscribers, one SELECT per turn of subscribes. */
  const names = new Map<string, string>();
  let toLoad: string[] = [];
  const loadNames = async (ids: string[]) => {
    const { rows } = await pool.query<{ id: string; display_name: string }>(
      "SELECT id::text, display_name FROM ref_users WHERE id = ANY ($1::uuid[])",
      [ids],
    );
    for (const row of rows) names.set(row.id, row.display_name);
  };
  const loadAtTurnEnd = (userId: string) => {
    if (toLoad.length === 0)
      setImmediate(() => {
        const ids = toLoad;
        toLoad = [];
        loadNames(ids).catch((error: unknown) => console.error("reference: names", error));
      });
    toLoad.push(userId);
  };
  const nameOf = async (userId: string) => {
    if (!names.has(userId)) await loadNames([userId]);
    return names.get(userId) ?? "";
  };

  /** The plain reference's send: one statement. */
  const store = async (
    viewer: Viewer,
    input: { conversationId: string; clientMessageId: string; text?: string | null },
  ): Promise<Stored> => {
    const values = [
      input.conversationId,
      viewer.userId,
      input.clientMessageId,
      randomUUID(),
      input.text ?? null,
    ];
    const run = () => pool.query<SendRow>({ name: "ref-send", text: SEND_SQL, values });
    // Two retries of one key at once: the second's insert breaks the unique key and is run again.
    const { rows } = await run().catch((error: unknown) => {
      if ((error as { code?: string }).code === "23505") return run();
      throw error;
    });
    const row = rows[0];
    if (!row)
      throw new GraphQLError("Not a member of this conversation", { extensions: { code: "FORBIDDEN" } });
    return { id: row.id, seq: row.seq, text: row.text, createdAt: row.created_at, audience: row.member_ids };
  };

  const send = async (
    viewer: Viewer,
    input: { conversationId: string; clientMessageId: string; text?: string | null },
  ) => {
    const row = checks
      ? await checks.send(viewer, input.conversationId, input.clientMessageId, input.text ?? null)
      : await store(viewer, input);
    // Chat hands the push event over before it publishes (CHAT_PUSH_SKIP_LIVE unset).
    if (checks && row.record) checks.handOver(row.record);
    const sender = { id: viewer.userId, displayName: await nameOf(viewer.userId) };
    const message: MessageObject = {
      id: row.id,
      conversationId: input.conversationId,
      seq: row.seq,
      sender,
      senderId: viewer.userId,
      clientMessageId: input.clientMessageId,
      text: row.text,
      attachments: [],
      replyTo: null,
      reactions: [],
      createdAt: row.createdAt.toISOString(),
      editedAt: null,
      deleted: false,
      version: row.seq,
    };
    if (row.audience) {
      const event = {
        kind: "MESSAGE_ADDED",
        conversationId: input.conversationId,
        seq: row.seq,
        message,
        actor: sender,
        invitation: null,
        occurredAt: message.createdAt,
      };
      await Promise.all(row.audience.map((member) => pubsub.publish(channel(member), event)));
    }
    return message;
  };

  const schema = buildSchema(SDL);
  const field = (type: GraphQLObjectType | null | undefined, name: string) =>
    type?.getFields()[name] as GraphQLFieldConfig<unknown, Context> | undefined;
  interface Context {
    viewer: Viewer;
  }
  const sendField = field(schema.getMutationType(), "sendMessage")!;
  sendField.resolve = (_source, args, context) =>
    send(
      context.viewer,
      (args as { input: { conversationId: string; clientMessageId: string; text?: string } }).input,
    );
  const feedField = field(schema.getSubscriptionType(), "myChatEvents")!;
  feedField.subscribe = (_source, _args, context) => {
    loadAtTurnEnd(context.viewer.userId);
    return pubsub.asyncIterator(channel(context.viewer.userId));
  };
  feedField.resolve = (event) => event;

  /** Each operation text parsed and validated once. */
  const documents = new Map<string, DocumentNode | readonly GraphQLError[]>();
  const documentOf = (query: string) => {
    let known = documents.get(query);
    if (!known) {
      try {
        const document = parse(query);
        const errors = validate(schema, document);
        known = errors.length > 0 ? errors : document;
      } catch (error) {
        known = [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
      }
      documents.set(query, known);
    }
    return known;
  };
  const tokenOf = (authorization: unknown) => {
    const token = typeof authorization === "string" ? bearerToken(authorization) : undefined;
    if (!token) throw new GraphQLError("No access token", { extensions: { code: "UNAUTHENTICATED" } });
    return token;
  };
  const viewerOf = async (authorization: unknown) => verifier.verify(tokenOf(authorization));
  /** sendMessage fields in a document's mutations (the points its sendMessage budget spends). */
  const sendCounts = new WeakMap<DocumentNode, number>();
  const sendsIn = (document: DocumentNode) => {
    let count = sendCounts.get(document);
    if (count === undefined) {
      count = 0;
      for (const definition of document.definitions)
        if (definition.kind === Kind.OPERATION_DEFINITION && definition.operation === "mutation")
          for (const selection of definition.selectionSet.selections)
            if (selection.kind === Kind.FIELD && selection.name.value === "sendMessage") count += 1;
      sendCounts.set(document, count);
    }
    return count;
  };
  /** With checks: the gateway's admission of a request (its signature checked first); an error when refused. */
  const admitted = async (checks: ReferenceChecks, ip: string, token: string, document: DocumentNode) => {
    const caller = await verifier.inspect(token);
    const verdict = await checks.admit(ip, caller, sendsIn(document));
    if (verdict.kind === "revoked")
      return new GraphQLError("Access token revoked", {
        extensions: { code: "UNAUTHENTICATED", reason: "revoked" },
      });
    const over =
      verdict.kind === "over-budget"
        ? verdict.limit
        : verdict.operationOver
          ? verdict.operationOver.limit
          : null;
    if (over !== null)
      return new GraphQLError(`Rate limited: ${over}`, { extensions: { code: "RATE_LIMITED", limit: over } });
    return caller.viewer;
  };

  const answer = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/readyz") return answer(res, 200, { ok: true });
    if (req.method !== "POST") return answer(res, 404, {});
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          query: string;
          variables?: Record<string, unknown>;
        };
        let viewer: Viewer;
        const document = documentOf(body.query);
        if (checks) {
          if (!("kind" in document)) return answer(res, 400, { errors: document });
          const outcome = await admitted(
            checks,
            req.socket.remoteAddress ?? "",
            tokenOf(req.headers.authorization),
            document,
          );
          if (outcome instanceof GraphQLError)
            return answer(res, outcome.extensions.code === "RATE_LIMITED" ? 429 : 401, { errors: [outcome] });
          viewer = outcome;
        } else {
          viewer = await viewerOf(req.headers.authorization);
          if (!("kind" in document)) return answer(res, 400, { errors: document });
        }
        const result = await execute({
          schema,
          document,
          variableValues: body.variables ?? null,
          contextValue: { viewer } satisfies Context,
        });
        answer(res, 200, result);
      })().catch((error: unknown) =>
        answer(res, error instanceof GraphQLError ? 401 : 400, { errors: [{ message: String(error) }] }),
      );
    });
  });
  // As the services keep idle HTTP connections (kit's SERVICE_KEEP_ALIVE_MS): the bench's reused.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const wss = new WebSocketServer({ server, path: "/graphql" });
  const viewers = new WeakMap<object, Viewer>();
  const tokens = new WeakMap<object, string>();
  useServer(
    {
      schema,
      onConnect: async (ctx) => {
        try {
          const token = tokenOf(ctx.connectionParams?.authorization);
          viewers.set(ctx, await verifier.verify(token));
          if (checks) {
            tokens.set(ctx, token);
            checks.watch(ctx.extra.socket, token, tokenExpiry(token));
          }
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: async (ctx, _id, payload) => {
        const document = documentOf(payload.query);
        if (!("kind" in document)) return document;
        if (checks) {
          const ip = ctx.extra.request.socket.remoteAddress ?? "";
          if (sendsIn(document) > 0) {
            const outcome = await admitted(checks, ip, tokens.get(ctx)!, document);
            if (outcome instanceof GraphQLError) return [outcome];
          } else {
            const refused = await checks.subscribe(viewers.get(ctx)!).then(
              () => undefined,
              (error: unknown) => (error instanceof GraphQLError ? error : new GraphQLError(String(error))),
            );
            if (refused) return [refused];
          }
        }
        return {
          schema,
          document,
          variableValues: payload.variables ?? null,
          contextValue: { viewer: viewers.get(ctx)! } satisfies Context,
        };
      },
    },
    wss,
    // graphql-ws's own ping per socket (12 s by default), at the client contract's 25 s as the gateway's.
    KEEP_ALIVE_MS,
  );
  await new Promise<void>((resolve) => server.listen(options.port, options.host ?? "127.0.0.1", resolve));

  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pubsub.close();
      await checks?.close();
      await commands?.quit();
      await pool.end();
    },
  };
}

/**
 * Runs the server from the environment (REFERENCE_PORT, REFERENCE_DATABASE_URL, AUTH_SIGNING_KEYS,
 * REDIS_URL, REFERENCE_CHANNEL_PREFIX; with `start`, REFERENCE_CHECKS' JSON options) until SIGTERM.
 */
export function runReferenceServer(start?: typeof startReferenceChecks): void {
  const need = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is required`);
    return value;
  };
  startReferenceServer({
    port: Number(need("REFERENCE_PORT")),
    databaseUrl: need("REFERENCE_DATABASE_URL"),
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    channelPrefix: process.env.REFERENCE_CHANNEL_PREFIX ?? `hvref${process.pid}`,
    signingKeys: need("AUTH_SIGNING_KEYS"),
    ...(start
      ? { checks: { ...(JSON.parse(need("REFERENCE_CHECKS")) as ReferenceChecksOptions), start } }
      : {}),
  }).then(
    (server) =>
      process.once("SIGTERM", () => {
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      }),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

if (require.main === module) runReferenceServer();
