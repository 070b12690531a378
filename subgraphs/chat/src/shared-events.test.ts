import { randomUUID } from "node:crypto";
import { buildSubgraphSchema, type GraphQLResolverMap } from "@apollo/subgraph";
import { execute, parse, type ExecutionResult } from "graphql";
import { sharedSubscribe } from "@hv/kit";
import type { ChatEventPayload } from "./modules/bus";
import type { MessageRow } from "./modules/rows";
import { resolvers, sharedEventFields, sharedEventFieldsWhen } from "./resolvers";
import { typeDefs } from "./server";

/** What the gateway asks Chat for the app's ChatMyEvents (operations/chat/ChatMyEvents.graphql). */
const APP_SELECTION = parse(
  "subscription ChatMyEvents__chat__0 { myChatEvents { kind conversationId seq occurredAt actor { __typename id } message { id seq clientMessageId text createdAt editedAt deleted sender { __typename id } attachments { id } reactions { emoji count reactedByMe } } invitation { id title inviter { __typename id } } } }",
);

type Stream = AsyncIterableIterator<ExecutionResult> & { return(): Promise<unknown> };

function message(reactions: MessageRow["reactions"]): MessageRow {
  const conversationId = randomUUID();
  return {
    id: randomUUID(),
    conversationId,
    seq: 1,
    senderId: randomUUID(),
    clientMessageId: "c-1",
    text: "hello",
    replyToId: null,
    createdAt: new Date(0),
    editedAt: null,
    deletedAt: null,
    version: 1,
    attachmentIds: [],
    reactions,
  };
}

/** Two members subscribed with the app's selection, each handed the same event objects (as the bus does). */
async function twoMembers() {
  const schema = buildSubgraphSchema([{ typeDefs, resolvers: resolvers as GraphQLResolverMap<unknown> }]);
  const subscribe = sharedSubscribe(schema, sharedEventFields, sharedEventFieldsWhen);
  const members = [randomUUID(), randomUUID()];
  let invitationLoads = 0;
  const feeds = members.map(() => {
    const queue: ChatEventPayload[] = [];
    let waiting: ((result: IteratorResult<ChatEventPayload>) => void) | undefined;
    const iterator = {
      next: (): Promise<IteratorResult<ChatEventPayload>> => {
        const value = queue.shift();
        if (value) return Promise.resolve({ done: false, value });
        return new Promise((resolve) => (waiting = resolve));
      },
      return: () => Promise.resolve({ done: true as const, value: undefined }),
      [Symbol.asyncIterator]: () => iterator,
    };
    const push = (event: ChatEventPayload) => {
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ done: false, value: event });
      } else queue.push(event);
    };
    return { iterator, push };
  });
  const contexts = members.map((userId, index) => ({
    viewer: { userId, sessionId: userId, role: "USER" },
    services: {
      presence: { keepOnline: () => () => undefined },
      bus: { subscribe: () => feeds[index]!.iterator },
    },
    loaders: {
      invitationById: {
        load: (id: string) => {
          invitationLoads += 1;
          return Promise.resolve({ id, title: "a group", inviterId: members[0] });
        },
      },
    },
    refreshLoaders: () => undefined,
  }));
  const streams = (await Promise.all(
    contexts.map((contextValue) => subscribe({ schema, document: APP_SELECTION, contextValue })),
  )) as Stream[];
  return {
    members,
    /** What graphql-js's own execution answers each member for `event`. */
    expected: (event: ChatEventPayload) =>
      Promise.all(
        contexts.map((contextValue) =>
          execute({ schema, document: APP_SELECTION, rootValue: event, contextValue }),
        ),
      ),
    invitationLoads: () => invitationLoads,
    /** Hands `event` to both members and returns what each got. */
    async deliver(event: ChatEventPayload): Promise<ExecutionResult[]> {
      const results = streams.map((stream) => stream.next());
      for (const feed of feeds) feed.push(event);
      return (await Promise.all(results)).map((result) => result.value as ExecutionResult);
    },
    end: () => Promise.all(streams.map((stream) => stream.return())),
  };
}

const event = (kind: ChatEventPayload["kind"], row: MessageRow | null, invitationId?: string) =>
  ({
    kind,
    conversationId: row?.conversationId ?? randomUUID(),
    seq: row?.seq ?? 0,
    message: row,
    actorId: row?.senderId ?? null,
    occurredAt: new Date(0).toISOString(),
    ...(invitationId ? { invitationId } : {}),
  }) as ChatEventPayload;

describe("Chat's live events with the app's selection", () => {
  it("should execute a new message's event once for both members (no reactions, no invitation)", async () => {
    const pair = await twoMembers();
    const [first, second] = await pair.deliver(event("MESSAGE_ADDED", message([])));
    expect(first?.errors).toBeUndefined();
    expect(first?.data).toMatchObject({
      myChatEvents: { kind: "MESSAGE_ADDED", message: { reactions: [] }, invitation: null },
    });
    expect(second).toBe(first);
    await pair.end();
  });

  it("should give each member their own reactedByMe once the message has reactions", async () => {
    const pair = await twoMembers();
    const [a] = pair.members as [string, string];
    const [mine, theirs] = await pair.deliver(
      event("REACTION_CHANGED", message([{ emoji: "👍", userIds: [a] }])),
    );
    expect(theirs).not.toBe(mine);
    const reactions = (result: ExecutionResult | undefined) =>
      (result?.data as { myChatEvents: { message: { reactions: unknown } } }).myChatEvents.message.reactions;
    expect(reactions(mine)).toEqual([{ emoji: "👍", count: 1, reactedByMe: true }]);
    expect(reactions(theirs)).toEqual([{ emoji: "👍", count: 1, reactedByMe: false }]);
    await pair.end();
  });

  it("should answer each member what graphql-js answers, for every kind of event", async () => {
    const pair = await twoMembers();
    const [a, b] = pair.members as [string, string];
    const events = [
      event("MESSAGE_ADDED", message([])),
      event("MESSAGE_ADDED", { ...message([]), text: null, attachmentIds: [randomUUID()] }),
      event("MESSAGE_EDITED", { ...message([]), editedAt: new Date(1) }),
      event("MESSAGE_DELETED", { ...message([]), text: null, deletedAt: new Date(2) }),
      event(
        "REACTION_CHANGED",
        message([
          { emoji: "👍", userIds: [a, b] },
          { emoji: "🎉", userIds: [b] },
        ]),
      ),
      event("READ", null),
      event("TYPING", null),
      event("INVITATION_RECEIVED", null, randomUUID()),
    ];
    for (const sent of events) {
      const delivered = await pair.deliver(sent);
      expect(delivered.every((result) => result.errors === undefined)).toBe(true);
      expect(JSON.stringify(delivered)).toBe(JSON.stringify(await pair.expected(sent)));
    }
    await pair.end();
  });

  it("should resolve an invitation per member", async () => {
    const pair = await twoMembers();
    const [first, second] = await pair.deliver(event("INVITATION_RECEIVED", null, randomUUID()));
    expect(second).not.toBe(first);
    expect(pair.invitationLoads()).toBe(2);
    await pair.end();
  });
});
