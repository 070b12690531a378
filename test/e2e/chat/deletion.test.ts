import { randomUUID } from "node:crypto";
import {
  codeOf,
  CREATE_GROUP,
  createGroup,
  eventually,
  gql,
  MESSAGES,
  profileOf,
  send,
  startChatHarness,
  chatEventFeed,
  type ChatEventFeed,
  subscriber,
  untilLive,
  wsUrl,
  type ChatHarness,
  type Person,
} from "./harness";

/**
 * What an account deletion (`user.deleted`) does to the people left behind, on a real chat instance,
 * Postgres and Redis, with the event delivered as a job on Chat's queue.
 */
describe("chat: an account deleted", () => {
  let harness: ChatHarness;
  let url: string;
  let events: ChatEventFeed;

  beforeAll(async () => {
    harness = await startChatHarness();
    url = harness.instances[0]!.url;
    events = chatEventFeed(harness);
  });
  afterAll(async () => {
    await events?.close();
    await harness?.stop();
  });

  const deliver: ChatEventFeed["deliver"] = (type, payload) => events.deliver(type, payload);

  const CONVERSATION =
    "query($id: ID!) { conversation(id: $id) { id closed closedReason memberCount myRole members { user { id } role } match { id } } }";
  const DIRECT = "mutation($u: ID!) { openDirectConversation(userId: $u) { id } }";
  const texts = async (who: Person, conversationId: string) =>
    (await gql(url, MESSAGES, { conversationId }, who)).body.data.messages.messages.map(
      (message: { text: string | null }) => message.text,
    );

  it("should leave the other person their one-to-one conversation, closed, with their own messages, and the deleted account's gone", async () => {
    const [stays, leaves, third] = [await harness.person(), await harness.person(), await harness.person()];
    const matchId = randomUUID();
    await deliver("match.created", { matchId, userIds: [stays.userId, leaves.userId] });
    const direct = (await gql(url, DIRECT, { u: leaves.userId }, stays)).body.data.openDirectConversation
      .id as string;
    await send(url, stays, direct, "mine 1");
    await send(url, leaves, direct, "theirs");
    await send(url, stays, direct, "mine 2");
    // A group the leaver owns goes on: ownership passes on, their messages go.
    const group = await createGroup(url, leaves, [stays, third], "book club");
    await send(url, leaves, group, "owner's words");
    await send(url, third, group, "third's words");
    const stream = subscriber(() => wsUrl(harness.instances[0]!), stays);
    await untilLive(url, stays, stream, direct);

    await deliver("user.deleted", { userId: leaves.userId });
    await deliver("user.deleted", { userId: leaves.userId }); // redelivered: nothing more happens

    const view = (await gql(url, CONVERSATION, { id: direct }, stays)).body.data.conversation;
    expect(view).toMatchObject({
      id: direct,
      closed: true,
      closedReason: "ACCOUNT_DELETED",
      memberCount: 1,
      members: [{ user: { id: stays.userId } }],
    });
    expect(await texts(stays, direct)).toEqual(["mine 1", "mine 2"]);
    expect(codeOf(await send(url, stays, direct, "hello?"))).toBe("FORBIDDEN");
    await eventually(
      () =>
        stream.events.some(
          (event) => event.kind === "CONVERSATION_CLOSED" && event.conversationId === direct,
        ),
      "told it closed",
    );
    const groupView = (await gql(url, CONVERSATION, { id: group }, third)).body.data.conversation;
    expect(groupView.memberCount).toBe(2);
    expect(groupView.members.find((member: { role: string }) => member.role === "OWNER")?.user.id).toBe(
      stays.userId,
    );
    expect(await texts(third, group)).toEqual(["third's words"]);
    expect(await harness.db.message.count({ where: { senderId: leaves.userId } })).toBe(0);
    expect(await harness.db.conversationMember.count({ where: { userId: leaves.userId } })).toBe(0);
    // Gone for good: nobody can add or invite the account, even after a late profile event.
    await deliver("user.profile_changed", profileOf(leaves.userId));
    expect(
      codeOf(await gql(url, CREATE_GROUP, { input: { title: "again", memberIds: [leaves.userId] } }, third)),
    ).toBe("USER_UNAVAILABLE");
    expect(await harness.db.person.findUnique({ where: { userId: leaves.userId } })).toMatchObject({
      visible: false,
      deletedAt: expect.any(Date),
    });
    await stream.dispose();
  });

  it("should delete a conversation nobody is left in", async () => {
    const [one, other] = [await harness.person(), await harness.person()];
    await deliver("match.created", { matchId: randomUUID(), userIds: [one.userId, other.userId] });
    const direct = (await gql(url, DIRECT, { u: other.userId }, one)).body.data.openDirectConversation
      .id as string;
    await send(url, one, direct, "hi");
    await deliver("user.deleted", { userId: one.userId });
    expect(await harness.db.conversation.count({ where: { id: direct } })).toBe(1);
    await deliver("user.deleted", { userId: other.userId });
    expect(await harness.db.conversation.count({ where: { id: direct } })).toBe(0);
  });
});
