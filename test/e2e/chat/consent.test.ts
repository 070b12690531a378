import { randomUUID } from "node:crypto";
import {
  ACCEPT,
  codeOf,
  CREATE_GROUP,
  createGroup,
  DECLINE,
  EVENT_FIELDS,
  eventually,
  gql,
  invitationTo,
  MESSAGES,
  MY_INVITATIONS,
  profileOf,
  send,
  startChatHarness,
  chatEventFeed,
  type ChatEventFeed,
  subscriber,
  untilLive,
  wsUrl,
  type ChatHarness,
  type Gql,
  type Person,
} from "./harness";

/**
 * Consent before contact: who joins a group at once (a match), who is invited, who is refused, and
 * what an invitee can see, on a real chat instance, Postgres and Redis, with events delivered the
 * way the other subgraphs' relays deliver them (jobs on Chat's BullMQ queue).
 */
describe("chat consent: group invitations", () => {
  let harness: ChatHarness;
  let url: string;
  let events: ChatEventFeed;

  beforeAll(async () => {
    harness = await startChatHarness({
      CHAT_INVITATIONS_PER_DAY: "8",
      CHAT_PENDING_INVITATIONS_MAX: "3",
      CHAT_GROUP_MAX_MEMBERS: "6",
    });
    url = harness.instances[0]!.url;
    events = chatEventFeed(harness);
  });
  afterAll(async () => {
    await events?.close();
    await harness?.stop();
  });

  const deliver: ChatEventFeed["deliver"] = (type, payload) => events.deliver(type, payload);

  /** `who`'s myChatEvents, live on the server (checked through a warm-up group of their own). */
  async function liveStream(who: Person, query?: string) {
    const stream = subscriber(() => wsUrl(harness.instances[0]!), who, query);
    const warmUp = await createGroup(url, who, [await harness.person()], "warm-up");
    await untilLive(url, who, stream, warmUp);
    return stream;
  }

  const match = (one: Person, other: Person) =>
    deliver("match.created", { matchId: randomUUID(), userIds: [one.userId, other.userId] });
  const create = (owner: Person, memberIds: unknown, title: unknown = "hikers") =>
    gql(url, CREATE_GROUP, { input: { title, memberIds } }, owner);
  const ADD =
    "mutation($c: ID!, $u: [ID!]!) { addGroupMembers(conversationId: $c, userIds: $u) { id memberCount } }";
  const VIEW =
    "query($id: ID!) { conversation(id: $id) { id memberCount members { user { id } role } invited { id } } }";
  const error = (response: Gql) => response.body.errors?.[0];
  const groupsOf = (who: Person) =>
    harness.db.conversationMember.count({ where: { userId: who.userId, conversation: { kind: "GROUP" } } });
  const invitationsFrom = (who: Person) =>
    harness.db.groupInvitation.count({ where: { inviterId: who.userId } });

  it("should add a match at once and only invite anyone else, who sees the title and inviter and nothing more until accepting", async () => {
    const [owner, matched, stranger] = [
      await harness.person(),
      await harness.person(),
      await harness.person(),
    ];
    await match(owner, matched);
    const [strangerStream, ownerStream] = [await liveStream(stranger), await liveStream(owner)];
    const created = await create(owner, [matched.userId, stranger.userId], "Sunday hike");
    expect(created.body.errors).toBeUndefined();
    const group = created.body.data.createGroupConversation.id as string;
    expect(created.body.data.createGroupConversation.memberCount).toBe(2);
    const ownerView = (await gql(url, VIEW, { id: group }, owner)).body.data.conversation;
    expect(ownerView.members.map((member: { user: { id: string } }) => member.user.id).sort()).toEqual(
      [owner.userId, matched.userId].sort(),
    );
    expect(ownerView.invited).toEqual([{ id: stranger.userId }]);
    // A plain member does not see who is invited.
    expect((await gql(url, VIEW, { id: group }, matched)).body.data.conversation.invited).toEqual([]);

    // The invitee: an event on their own stream and an entry in myInvitations, with title and inviter only.
    await eventually(
      () => strangerStream.events.some((event) => event.kind === "INVITATION_RECEIVED"),
      "the invitation reached the invitee's stream",
    );
    const invitations = (await gql(url, MY_INVITATIONS, {}, stranger)).body.data.myInvitations.edges;
    expect(invitations).toHaveLength(1);
    expect(invitations[0].node).toMatchObject({
      conversationId: group,
      title: "Sunday hike",
      status: "PENDING",
      inviter: { id: owner.userId },
    });
    const invitationId = invitations[0].node.id as string;
    // Nothing of the group itself: no conversation, no history, no sending, no member list.
    expect((await gql(url, VIEW, { id: group }, stranger)).body.data.conversation).toBeNull();
    expect(codeOf(await gql(url, MESSAGES, { conversationId: group }, stranger))).toBe("NOT_FOUND");
    expect(codeOf(await send(url, stranger, group, "let me in"))).toBe("NOT_FOUND");
    const before = (await send(url, owner, group, "only members read this")).body.data.sendMessage;
    const outbox = await harness.db.outboxEvent.findMany({ where: { type: "message.created" } });
    const pushed = outbox.find((row) => (row.payload as { messageId: string }).messageId === before.id)
      ?.payload as { recipients: Array<{ userId: string }> };
    expect(pushed.recipients.map((recipient) => recipient.userId)).toEqual([matched.userId]);
    expect(
      strangerStream.events.filter((event) => event.conversationId === group).map((event) => event.kind),
    ).toEqual(["INVITATION_RECEIVED"]);

    // Accepting: a member now; a retried accept answers the same, the others are told once.
    const accepted = await gql(url, ACCEPT, { i: invitationId }, stranger);
    expect(accepted.body.data.acceptInvitation).toMatchObject({
      id: group,
      memberCount: 3,
      myRole: "MEMBER",
    });
    expect((await gql(url, ACCEPT, { i: invitationId }, stranger)).body.data.acceptInvitation).toMatchObject({
      id: group,
      memberCount: 3,
    });
    await eventually(
      () =>
        ownerStream.events.some(
          (event) => event.kind === "MEMBERS_CHANGED" && event.actor?.id === stranger.userId,
        ),
      "the owner told that the invitee joined",
    );
    expect(
      ownerStream.events.filter(
        (event) => event.kind === "MEMBERS_CHANGED" && event.actor?.id === stranger.userId,
      ),
    ).toHaveLength(1);
    expect(
      (await gql(url, MESSAGES, { conversationId: group }, stranger)).body.data.messages.messages.map(
        (m: { text: string }) => m.text,
      ),
    ).toEqual(["only members read this"]);
    expect((await gql(url, MY_INVITATIONS, {}, stranger)).body.data.myInvitations.edges).toEqual([]);
    expect((await gql(url, VIEW, { id: group }, owner)).body.data.conversation.invited).toEqual([]);
    await Promise.all([strangerStream.dispose(), ownerStream.dispose()]);
  });

  it("should refuse unknown, hidden, banned, deleted and blocked ids (either way) with one answer, and create nothing", async () => {
    const owner = await harness.person();
    const [visible, hidden, banned, deleted, blockedByOwner, blockerOfOwner] = [
      await harness.person(),
      await harness.person({ visibility: "HIDDEN" }),
      await harness.person(),
      await harness.person(),
      await harness.person(),
      await harness.person(),
    ];
    await deliver("user.banned", { userId: banned.userId });
    await deliver("user.profile_changed", profileOf(banned.userId, "VISIBLE", true));
    await deliver("user.deleted", { userId: deleted.userId });
    await deliver("user.profile_changed", profileOf(deleted.userId)); // late, older news: must not bring it back
    await deliver("user.blocked", { blockerId: owner.userId, blockedId: blockedByOwner.userId });
    await deliver("user.blocked", { blockerId: blockerOfOwner.userId, blockedId: owner.userId });
    const refused = [
      randomUUID(),
      hidden.userId,
      banned.userId,
      deleted.userId,
      blockedByOwner.userId,
      blockerOfOwner.userId,
    ];
    const answers = [];
    for (const id of refused) {
      const response = await create(owner, [id]);
      expect(response.body.data).toBeNull();
      const { stacktrace: _stack, ...extensions } = error(response)?.extensions ?? {};
      answers.push({ message: error(response)?.message, extensions });
    }
    // Exactly the same answer for each: nothing tells them apart.
    expect(answers[0]).toEqual({
      message: "This person cannot be added to a conversation",
      extensions: { code: "USER_UNAVAILABLE", field: "input.memberIds[0]" },
    });
    for (const answer of answers) expect(answer).toEqual(answers[0]);
    // The visible person is invited; with any refused id beside them, nothing is.
    expect(codeOf(await create(owner, [visible.userId, hidden.userId]))).toBe("USER_UNAVAILABLE");
    expect(await groupsOf(owner)).toBe(0);
    expect(await invitationsFrom(owner)).toBe(0);
    // The blocked person cannot reach the blocker either.
    expect(codeOf(await create(blockedByOwner, [owner.userId]))).toBe("USER_UNAVAILABLE");
  });

  it("should answer wrong, missing, oversized and hostile input with typed codes and change nothing", async () => {
    const [owner, other, outsider] = [await harness.person(), await harness.person(), await harness.person()];
    const group = (await create(owner, [other.userId])).body.data.createGroupConversation.id as string;
    const invitationId = (await invitationTo(url, other, group))!;
    const cases: Array<[string, string, Record<string, unknown>, Person, string, string | undefined]> = [
      [
        "inviting oneself",
        CREATE_GROUP,
        { input: { title: "me", memberIds: [owner.userId] } },
        owner,
        "BAD_USER_INPUT",
        "input.memberIds",
      ],
      [
        "the same id twice",
        CREATE_GROUP,
        { input: { title: "dup", memberIds: [other.userId, other.userId] } },
        owner,
        "BAD_USER_INPUT",
        "input.memberIds",
      ],
      [
        "a hostile id",
        CREATE_GROUP,
        { input: { title: "x", memberIds: ["'; DROP TABLE people; --"] } },
        owner,
        "BAD_USER_INPUT",
        "input.memberIds[0]",
      ],
      [
        "too many ids",
        CREATE_GROUP,
        { input: { title: "x", memberIds: Array.from({ length: 6 }, () => randomUUID()) } },
        owner,
        "BAD_USER_INPUT",
        "input.memberIds",
      ],
      ["adding oneself", ADD, { c: group, u: [owner.userId] }, owner, "BAD_USER_INPUT", "userIds"],
      ["a bad invitation id", ACCEPT, { i: "not-an-id" }, other, "BAD_USER_INPUT", "invitationId"],
      [
        "an oversized invitation id",
        ACCEPT,
        { i: "9".repeat(100_000) },
        other,
        "BAD_USER_INPUT",
        "invitationId",
      ],
      ["an unknown invitation", ACCEPT, { i: randomUUID() }, other, "NOT_FOUND", "invitationId"],
      [
        "someone else's invitation (accept)",
        ACCEPT,
        { i: invitationId },
        outsider,
        "NOT_FOUND",
        "invitationId",
      ],
      [
        "someone else's invitation (accept, by the inviter)",
        ACCEPT,
        { i: invitationId },
        owner,
        "NOT_FOUND",
        "invitationId",
      ],
      [
        "someone else's invitation (decline)",
        DECLINE,
        { i: invitationId },
        outsider,
        "NOT_FOUND",
        "invitationId",
      ],
      [
        "a missing invitation id",
        "mutation { acceptInvitation { id } }",
        {},
        other,
        "GRAPHQL_VALIDATION_FAILED",
        undefined,
      ],
      ["a null invitation id", ACCEPT, { i: null }, other, "BAD_USER_INPUT", undefined],
      ["a page of 0", MY_INVITATIONS, { first: 0 }, other, "BAD_USER_INPUT", "first"],
      ["a page of 51", MY_INVITATIONS, { first: 51 }, other, "BAD_USER_INPUT", "first"],
      [
        "a forged cursor",
        MY_INVITATIONS,
        { after: Buffer.from('{"t":"x","id":"y"}').toString("base64url") },
        other,
        "BAD_USER_INPUT",
        "after",
      ],
      [
        "an oversized cursor",
        MY_INVITATIONS,
        { after: "A".repeat(10_000) },
        other,
        "BAD_USER_INPUT",
        "after",
      ],
    ];
    for (const [what, query, variables, who, code, field] of cases) {
      const response = await gql(url, query, variables, who);
      expect({ what, code: codeOf(response) }).toEqual({ what, code });
      if (field) expect({ what, field: error(response)?.extensions?.field }).toEqual({ what, field });
    }
    expect(await harness.db.groupInvitation.findUniqueOrThrow({ where: { id: invitationId } })).toMatchObject(
      { status: "PENDING", inviteeId: other.userId },
    );
    expect(await groupsOf(owner)).toBe(1);
    expect(await harness.db.conversationMember.count({ where: { conversationId: group } })).toBe(1);
    // Not signed in.
    expect(codeOf(await gql(url, MY_INVITATIONS, {}))).toBe("UNAUTHENTICATED");
    expect(codeOf(await gql(url, ACCEPT, { i: invitationId }))).toBe("UNAUTHENTICATED");
  });

  it("should keep a repeated invitation to one (retry, or already pending) as one invitation and one event", async () => {
    const [owner, guest] = [await harness.person(), await harness.person()];
    const stream = await liveStream(guest);
    const group = (await create(owner, [guest.userId])).body.data.createGroupConversation.id as string;
    for (let retry = 0; retry < 2; retry += 1)
      expect(
        (await gql(url, ADD, { c: group, u: [guest.userId] }, owner)).body.data.addGroupMembers,
      ).toMatchObject({ memberCount: 1 });
    expect(await harness.db.groupInvitation.count({ where: { conversationId: group } })).toBe(1);
    await eventually(
      () => stream.events.some((event) => event.kind === "INVITATION_RECEIVED"),
      "invitation event",
    );
    // One more round trip of the stream (a later invitation) before counting: nothing extra arrived.
    const later = (await create(owner, [guest.userId], "later")).body.data.createGroupConversation
      .id as string;
    await eventually(
      () =>
        stream.events.some((event) => event.kind === "INVITATION_RECEIVED" && event.conversationId === later),
      "the later invitation",
    );
    expect(
      stream.events.filter((event) => event.conversationId === group).map((event) => event.kind),
    ).toEqual(["INVITATION_RECEIVED"]);
    await stream.dispose();
  });

  it("should decline without telling anyone, refuse another invitation from that group, and refuse accepting afterwards", async () => {
    const [owner, guest] = [await harness.person(), await harness.person()];
    const group = (await create(owner, [guest.userId])).body.data.createGroupConversation.id as string;
    const invitationId = (await invitationTo(url, guest, group))!;
    expect((await gql(url, DECLINE, { i: invitationId }, guest)).body.data.declineInvitation).toBe(true);
    expect((await gql(url, DECLINE, { i: invitationId }, guest)).body.data.declineInvitation).toBe(true); // retried
    expect((await gql(url, MY_INVITATIONS, {}, guest)).body.data.myInvitations.edges).toEqual([]);
    const again = await gql(url, ADD, { c: group, u: [guest.userId] }, owner);
    expect(error(again)?.extensions).toMatchObject({ code: "USER_UNAVAILABLE", field: "userIds[0]" });
    const late = await gql(url, ACCEPT, { i: invitationId }, guest);
    expect(error(late)?.extensions).toMatchObject({
      code: "CONFLICT",
      reason: "answered",
      status: "DECLINED",
    });
    expect(
      await harness.db.conversationMember.count({ where: { conversationId: group, userId: guest.userId } }),
    ).toBe(0);
    // Once they match, the match is consent: the owner may add them directly.
    await match(owner, guest);
    expect(
      (await gql(url, ADD, { c: group, u: [guest.userId] }, owner)).body.data.addGroupMembers.memberCount,
    ).toBe(2);
  });

  it("should not let a hidden or banned person invite strangers, and not list invitations from someone hidden since", async () => {
    const [hiddenOwner, guest, friend] = [
      await harness.person({ visibility: "HIDDEN" }),
      await harness.person(),
      await harness.person(),
    ];
    const refused = await create(hiddenOwner, [guest.userId]);
    expect(error(refused)?.extensions).toMatchObject({ code: "FORBIDDEN", reason: "hidden-profile" });
    expect(await groupsOf(hiddenOwner)).toBe(0);
    // A match is still fine: the hidden person's match already sees them.
    await match(hiddenOwner, friend);
    expect((await create(hiddenOwner, [friend.userId])).body.data.createGroupConversation.memberCount).toBe(
      2,
    );

    const owner = await harness.person();
    const group = (await create(owner, [guest.userId], "soon hidden")).body.data.createGroupConversation
      .id as string;
    expect(await invitationTo(url, guest, group)).not.toBeNull();
    await deliver("user.profile_changed", profileOf(owner.userId, "HIDDEN"));
    expect(await invitationTo(url, guest, group)).toBeNull();
    await deliver("user.profile_changed", profileOf(owner.userId, "VISIBLE"));
    expect(await invitationTo(url, guest, group)).not.toBeNull();
    await deliver("user.banned", { userId: owner.userId });
    await deliver("user.profile_changed", profileOf(owner.userId, "VISIBLE", true));
    expect(await invitationTo(url, guest, group)).toBeNull();
  });

  it("should invite again someone who accepted and left", async () => {
    const [owner, guest] = [await harness.person(), await harness.person()];
    const group = (await create(owner, [guest.userId])).body.data.createGroupConversation.id as string;
    expect(
      (await gql(url, ACCEPT, { i: (await invitationTo(url, guest, group))! }, guest)).body.data
        .acceptInvitation.memberCount,
    ).toBe(2);
    expect(
      (await gql(url, "mutation($c: ID!) { leaveConversation(conversationId: $c) }", { c: group }, guest))
        .body.data.leaveConversation,
    ).toBe(true);
    expect(
      (await gql(url, ADD, { c: group, u: [guest.userId] }, owner)).body.data.addGroupMembers.memberCount,
    ).toBe(1);
    const again = (await invitationTo(url, guest, group))!;
    expect(await harness.db.groupInvitation.findUniqueOrThrow({ where: { id: again } })).toMatchObject({
      status: "PENDING",
      respondedAt: null,
    });
    expect((await gql(url, ACCEPT, { i: again }, guest)).body.data.acceptInvitation.memberCount).toBe(2);
  });

  it("should withdraw invitations between two people when one blocks the other", async () => {
    const [owner, guest] = [await harness.person(), await harness.person()];
    const group = (await create(owner, [guest.userId])).body.data.createGroupConversation.id as string;
    const invitationId = (await invitationTo(url, guest, group))!;
    await deliver("user.blocked", { blockerId: guest.userId, blockedId: owner.userId });
    expect((await gql(url, MY_INVITATIONS, {}, guest)).body.data.myInvitations.edges).toEqual([]);
    expect(codeOf(await gql(url, ACCEPT, { i: invitationId }, guest))).toBe("NOT_FOUND");
    expect((await gql(url, VIEW, { id: group }, owner)).body.data.conversation.invited).toEqual([]);
  });

  it("should cap pending invitations per inviter (QUOTA_EXCEEDED) and invitations per day, refused ids included (RATE_LIMITED)", async () => {
    const owner = await harness.person();
    const guests = [
      await harness.person(),
      await harness.person(),
      await harness.person(),
      await harness.person(),
    ];
    expect(
      (
        await create(
          owner,
          guests.slice(0, 3).map((guest) => guest.userId),
        )
      ).body.errors,
    ).toBeUndefined();
    const over = await create(owner, [guests[3]!.userId]);
    expect(error(over)?.extensions).toMatchObject({
      code: "QUOTA_EXCEEDED",
      limit: "chat-pending-invitations",
      pendingInvitations: 3,
      maxPendingInvitations: 3,
    });
    expect(await groupsOf(owner)).toBe(1); // the refused group was not created
    // An answer frees a place.
    const first = (await gql(url, MY_INVITATIONS, {}, guests[0]!)).body.data.myInvitations.edges[0].node.id;
    await gql(url, DECLINE, { i: first }, guests[0]!);
    expect((await create(owner, [guests[3]!.userId])).body.errors).toBeUndefined();

    // Per day (8 here) for a fresh inviter: twice 4 unknown ids use it up, one more id is over.
    const prober = await harness.person();
    const unknown = () => randomUUID();
    expect(codeOf(await create(prober, [unknown(), unknown(), unknown(), unknown()]))).toBe(
      "USER_UNAVAILABLE",
    );
    expect(codeOf(await create(prober, [unknown(), unknown(), unknown(), unknown()]))).toBe(
      "USER_UNAVAILABLE",
    );
    const limited = await create(prober, [guests[0]!.userId]);
    expect(error(limited)?.extensions).toMatchObject({
      code: "RATE_LIMITED",
      limit: "chat-invitations",
      retryAfterSeconds: expect.any(Number),
    });
    // A match is not an invitation: still allowed.
    const friend = await harness.person();
    await match(prober, friend);
    expect((await create(prober, [friend.userId])).body.data.createGroupConversation.memberCount).toBe(2);
    expect(await invitationsFrom(prober)).toBe(0);
  });

  it("should tell each invitee only about their own invitation on myChatEvents", async () => {
    const [owner, one, two] = [await harness.person(), await harness.person(), await harness.person()];
    const query = `subscription { myChatEvents { ${EVENT_FIELDS} invitation { id title inviter { id } } } }`;
    const streams = [await liveStream(one, query), await liveStream(two, query)];
    const group = (await create(owner, [one.userId, two.userId], "two guests")).body.data
      .createGroupConversation.id as string;
    for (const [index, stream] of streams.entries()) {
      const mine = () => stream.events.filter((event) => event.kind === "INVITATION_RECEIVED");
      await eventually(() => mine().length > 0, `invitee ${index} got the invitation`);
      expect(mine()).toHaveLength(1);
      const event = mine()[0] as unknown as {
        kind: string;
        conversationId: string;
        actor: { id: string };
        invitation: { id: string; title: string; inviter: { id: string } };
      };
      expect(event).toMatchObject({
        kind: "INVITATION_RECEIVED",
        conversationId: group,
        actor: { id: owner.userId },
        invitation: { title: "two guests", inviter: { id: owner.userId } },
      });
      expect(event.invitation.id).toBe(await invitationTo(url, [one, two][index]!, group));
    }
    await Promise.all(streams.map((stream) => stream.dispose()));
  });
});
