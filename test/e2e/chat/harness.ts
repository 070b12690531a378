import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { start as startChat } from "@hv/chat";
import { createChatDb, type ChatDb } from "@hv/chat/src/db";
import { applyProfileChanged } from "@hv/chat/src/modules/people";
import {
  createAccessTokenIssuer,
  generateSigningKeyJwk,
  publicSigningKeyJwk,
  type AccessTokenIssuer,
  eventQueueName,
  type EventPayload,
  type EventType,
  type RunningSubgraph,
} from "@hv/kit";
import { loadChatConfig } from "@hv/chat/src/config";
import { Queue } from "bullmq";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { capturingLogger, type LogLine } from "../../support/log-capture";
import { graphqlRequest, testEnv, type GraphQLResponse } from "../../support/system";

export const ISSUER = "haiyvee";
export const AUDIENCE = "haiyvee-api";

/**
 * Chat instances in this process on free ports, on this run's chat database and Redis, verifying
 * access tokens against a real JWKS endpoint (a small HTTP server publishing this harness's key),
 * so tests need neither Users nor the gateway.
 */
export interface ChatHarness {
  env: Record<string, string | undefined>;
  db: ChatDb;
  tokens: AccessTokenIssuer;
  /**
   * A fresh person: an id and a token for them, known to Chat as Users' `user.profile_changed` would
   * make them (visible unless `visibility` says otherwise; `known: false` leaves Chat unaware of them).
   */
  person(options?: { visibility?: "VISIBLE" | "HIDDEN"; known?: boolean }): Promise<Person>;
  /** A token for this person that runs out about a second from now (issued a second "ago" for two). */
  shortToken(who: { userId: string; sessionId: string }): Promise<{ token: string }>;
  /** Another chat instance on the same database and Redis. */
  startInstance(overrides?: Record<string, string>): Promise<RunningSubgraph>;
  instances: RunningSubgraph[];
  logs: LogLine[];
  stop(): Promise<void>;
}

export interface Person {
  userId: string;
  sessionId: string;
  token: string;
}

/** A `user.profile_changed` payload as Users writes it at sign-up. */
export function profileOf(
  userId: string,
  visibility: "VISIBLE" | "HIDDEN" = "VISIBLE",
  banned = false,
): EventPayload<"user.profile_changed"> {
  return {
    userId,
    birthDate: "1995-04-01",
    gender: null,
    gendersOfInterest: [],
    ageMin: 18,
    ageMax: 99,
    maxDistanceKm: 50,
    visibility,
    banned,
  };
}

export async function startChatHarness(overrides: Record<string, string> = {}): Promise<ChatHarness> {
  const key = generateSigningKeyJwk(`chat-test-${randomUUID().slice(0, 8)}`);
  const jwks = http.createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [publicSigningKeyJwk(key)] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
  const env = testEnv({ AUTH_JWKS_URL: jwksUrl, LOG_LEVEL: "info", ...overrides });
  const tokens = createAccessTokenIssuer({
    keys: [key],
    issuer: ISSUER,
    audience: AUDIENCE,
    ttlSeconds: 900,
  });
  const { logger, lines } = capturingLogger("chat");
  const instances: RunningSubgraph[] = [];
  const db = createChatDb(String(env.CHAT_DATABASE_URL));
  const harness: ChatHarness = {
    env,
    db,
    tokens,
    instances,
    logs: lines,
    async person(options = {}) {
      const userId = randomUUID();
      const sessionId = randomUUID();
      const { token } = await tokens.issue({ userId, sessionId, role: "USER" });
      if (options.known !== false)
        await applyProfileChanged(db, profileOf(userId, options.visibility ?? "VISIBLE"), new Date());
      return { userId, sessionId, token };
    },
    shortToken: ({ userId, sessionId }) =>
      createAccessTokenIssuer({
        keys: [key],
        issuer: ISSUER,
        audience: AUDIENCE,
        ttlSeconds: 2,
        clock: () => new Date(Date.now() - 1000),
      }).issue({
        userId,
        sessionId,
        role: "USER",
      }),
    async startInstance(more = {}) {
      const instance = await startChat(
        loadChatConfig({ ...env, ...more }),
        logger.child({ instance: instances.length }),
      );
      instances.push(instance);
      return instance;
    },
    async stop() {
      await Promise.all(instances.map((instance) => instance.stop()));
      await db.$disconnect();
      await new Promise<void>((resolve) => jwks.close(() => resolve()));
    },
  };
  await harness.startInstance();
  return harness;
}

export type Gql<T = any> = GraphQLResponse<T>;

/** A GraphQL request over HTTP straight to a chat instance, as the gateway would send it. */
export function gql<T = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  who?: Person | string,
): Promise<Gql<T>> {
  const token = typeof who === "string" ? who : who?.token;
  return graphqlRequest<T>(url, query, variables, token ? { authorization: `Bearer ${token}` } : {});
}

export function codeOf(response: Gql): string | undefined {
  return response.body.errors?.[0]?.extensions?.code;
}

export const wsUrl = (instance: RunningSubgraph) => instance.url.replace(/^http/, "ws");

export const MESSAGE_FIELDS =
  "id conversationId seq text clientMessageId sender { id } attachments { id } replyTo { id } reactions { emoji count reactedByMe } createdAt editedAt deleted";
export const EVENT_FIELDS = `kind conversationId seq actor { id } occurredAt message { ${MESSAGE_FIELDS} }`;
export const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`;
export const CREATE_GROUP = `mutation($input: CreateGroupInput!) { createGroupConversation(input: $input) { id kind title memberCount myRole } }`;
export const MESSAGES = `query($conversationId: ID!, $after: Int, $before: Int, $first: Int) { messages(conversationId: $conversationId, after: $after, before: $before, first: $first) { hasMore messages { ${MESSAGE_FIELDS} } } }`;

export interface ChatEvent {
  kind: string;
  conversationId: string;
  seq: number;
  actor: { id: string } | null;
  message: { id: string; seq: number; text: string | null; sender: { id: string } } | null;
}

export const MY_INVITATIONS = `query($first: Int, $after: String) { myInvitations(first: $first, after: $after) { edges { cursor node { id conversationId title status inviter { id } createdAt } } pageInfo { hasNextPage endCursor } } }`;
export const ACCEPT = `mutation($i: ID!) { acceptInvitation(invitationId: $i) { id kind title memberCount myRole } }`;
export const DECLINE = `mutation($i: ID!) { declineInvitation(invitationId: $i) }`;

/** `who`'s pending invitation to `conversationId`, from myInvitations (null: none). */
export async function invitationTo(url: string, who: Person, conversationId: string): Promise<string | null> {
  const response = await gql(url, MY_INVITATIONS, { first: 50 }, who);
  const edges: Array<{ node: { id: string; conversationId: string } }> =
    response.body.data?.myInvitations?.edges ?? [];
  return edges.find((edge) => edge.node.conversationId === conversationId)?.node.id ?? null;
}

/**
 * A group of `owner` whose `members` are in: each one matched with the owner is in at once, each of
 * the others is invited and accepts.
 */
export async function createGroup(
  url: string,
  owner: Person,
  members: Person[],
  title = "friends",
): Promise<string> {
  const response = await gql(
    url,
    CREATE_GROUP,
    { input: { title, memberIds: members.map((member) => member.userId) } },
    owner,
  );
  const id = response.body.data?.createGroupConversation?.id;
  if (!id) throw new Error(`createGroupConversation failed: ${JSON.stringify(response.body)}`);
  for (const member of members) {
    const isIn = await gql(url, "query($id: ID!) { conversation(id: $id) { id } }", { id }, member);
    if (isIn.body.data?.conversation) continue;
    const invitation = await invitationTo(url, member, id);
    const accepted = invitation ? await gql(url, ACCEPT, { i: invitation }, member) : null;
    if (!accepted?.body.data?.acceptInvitation)
      throw new Error(
        `accepting the invitation failed: ${JSON.stringify(accepted?.body ?? "no invitation")}`,
      );
  }
  return id;
}

export async function send(
  url: string,
  who: Person,
  conversationId: string,
  text: string,
  extra: Record<string, unknown> = {},
) {
  return gql(url, SEND, { input: { conversationId, clientMessageId: randomUUID(), text, ...extra } }, who);
}

/** Waits (bounded number of short sleeps, no clock threshold on the outcome) until `check` holds. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  tries = 400,
): Promise<void> {
  for (let attempt = 0; attempt < tries; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never happened: ${what}`);
}

/**
 * A graphql-ws client on `myChatEvents` (or another subscription), as a phone runs it: it
 * reconnects (to whichever URL `url()` gives), resubscribes, and reports each (re)connection.
 */
export function subscriber(
  url: () => string,
  who: Person | null,
  query = `subscription { myChatEvents { ${EVENT_FIELDS} } }`,
  options: { retry?: boolean; variables?: Record<string, unknown>; onConnected?: () => void } = {},
) {
  const events: ChatEvent[] = [];
  const errors: unknown[] = [];
  const closes: number[] = [];
  let connections = 0;
  let completed = false;
  const client: Client = createClient({
    url,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: options.retry === false ? 0 : 50,
    retryWait: () => new Promise((resolve) => setTimeout(resolve, 50)),
    onNonLazyError: () => undefined,
    ...(who ? { connectionParams: { authorization: `Bearer ${who.token}` } } : {}),
    on: {
      connected: () => {
        connections += 1;
        options.onConnected?.();
      },
      closed: (event) => {
        closes.push((event as { code: number }).code);
      },
    },
  });
  const unsubscribe = client.subscribe<{ myChatEvents?: ChatEvent; conversationEvents?: ChatEvent }>(
    { query, ...(options.variables ? { variables: options.variables } : {}) },
    {
      next: (result) => {
        if (result.errors) errors.push(...result.errors);
        const event = result.data?.myChatEvents ?? result.data?.conversationEvents;
        if (event) events.push(event);
      },
      error: (error) => errors.push(error),
      complete: () => {
        completed = true;
      },
    },
  );
  return {
    events,
    errors,
    closes,
    connections: () => connections,
    completed: () => completed,
    async dispose() {
      unsubscribe();
      await client.dispose();
    },
  };
}
export type Subscriber = ReturnType<typeof subscriber>;

/**
 * Until `who`'s subscription is live on the server (the protocol has no "subscribed" answer):
 * marks delivered in `conversationId` until its own DELIVERED event comes back.
 */
export async function untilLive(
  url: string,
  who: Person,
  sub: Subscriber,
  conversationId: string,
): Promise<void> {
  const before = sub.events.length;
  for (let attempt = 0; attempt < 200; attempt += 1) {
    await gql(
      url,
      `mutation($c: ID!) { markDelivered(conversationId: $c, seq: 0) }`,
      { c: conversationId },
      who,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (
      sub.events
        .slice(before)
        .some(
          (event) =>
            event.kind === "DELIVERED" &&
            event.actor?.id === who.userId &&
            event.conversationId === conversationId,
        )
    )
      return;
  }
  throw new Error("the subscription never went live");
}

/** Hands events to a harness's Chat consumer as the other subgraphs' relays do (jobs on its BullMQ queue). */
export interface ChatEventFeed {
  /** Queues one event and waits until Chat has handled it. */
  deliver<T extends EventType>(type: T, payload: EventPayload<T>): Promise<void>;
  close(): Promise<void>;
}

export function chatEventFeed(harness: ChatHarness): ChatEventFeed {
  const queue = new Queue(eventQueueName("chat"), {
    connection: { url: String(harness.env.REDIS_URL ?? "redis://127.0.0.1:6379") },
    prefix: String(harness.env.EVENTS_PREFIX),
  });
  return {
    async deliver(type, payload) {
      const jobId = randomUUID();
      await queue.add(type, { type, payload, occurredAt: new Date().toISOString() }, { jobId });
      await eventually(async () => (await queue.getJobState(jobId)) === "completed", `${type} handled`);
    },
    close: () => queue.close(),
  };
}
