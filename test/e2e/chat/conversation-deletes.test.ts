import { randomBytes } from "node:crypto";
import { dropDatabase, ensureDatabase, migrateDeploy, withDatabaseName } from "@hv/prisma";
import { testEnv } from "../../support/system";
import {
  chatEventFeed,
  createGroup,
  gql,
  send,
  startChatHarness,
  type ChatEventFeed,
  type ChatHarness,
} from "./harness";

/**
 * Where Chat deletes a conversation (the last member leaves, the account purge empties it), it
 * deletes the conversation's messages itself: the foreign key messages → conversations (whose
 * cascade did it) is gone since migration 20261217120000, so only the explicit delete removes them.
 */
describe("chat: a deleted conversation's messages, without the foreign key's cascade", () => {
  const databaseUrl = withDatabaseName(
    String(testEnv().CHAT_DATABASE_URL),
    `hv_test_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}_no_fk`,
  );
  let harness: ChatHarness;
  let events: ChatEventFeed;
  let url: string;

  beforeAll(async () => {
    await ensureDatabase(databaseUrl);
    await migrateDeploy("chat", databaseUrl);
    harness = await startChatHarness({ CHAT_DATABASE_URL: databaseUrl, CHAT_SEND_BURST: "1000" });
    url = harness.instances[0]!.url;
    events = chatEventFeed(harness);
  }, 120_000);
  afterAll(async () => {
    await events?.close();
    await harness?.stop();
    await dropDatabase(databaseUrl);
  });

  const messagesIn = (conversationId: string) => harness.db.message.count({ where: { conversationId } });
  const leave = (conversationId: string, who: { token: string; userId: string; sessionId: string }) =>
    gql(url, "mutation($c: ID!) { leaveConversation(conversationId: $c) }", { c: conversationId }, who);

  it("should have no foreign key from messages to conversations once migrated", async () => {
    const keys = await harness.db.$queryRaw<Array<{ name: string }>>`
      SELECT conname::text AS name FROM pg_constraint
       WHERE conrelid = 'messages'::regclass AND confrelid = 'conversations'::regclass`;
    expect(keys).toEqual([]);
  });

  it("deletes them when the last member leaves", async () => {
    const [a, b] = [await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b]);
    await send(url, a, group, "one");
    await send(url, b, group, "two");
    expect((await leave(group, b)).body.data?.leaveConversation).toBe(true);
    expect(await messagesIn(group)).toBe(2);
    expect((await leave(group, a)).body.data?.leaveConversation).toBe(true);
    expect(await harness.db.conversation.count({ where: { id: group } })).toBe(0);
    expect(await messagesIn(group)).toBe(0);
  });

  it("deletes them, a former member's too, when the purge empties the conversation", async () => {
    const [a, b, c] = [await harness.person(), await harness.person(), await harness.person()];
    const group = await createGroup(url, a, [b, c]);
    await send(url, c, group, "from someone who leaves");
    await send(url, a, group, "hello");
    expect((await leave(group, c)).body.data?.leaveConversation).toBe(true);
    await events.deliver("user.deleted", { userId: a.userId });
    await events.deliver("user.deleted", { userId: b.userId });
    expect(await harness.db.conversation.count({ where: { id: group } })).toBe(0);
    expect(await messagesIn(group)).toBe(0);
  });
});
