import { randomUUID } from "node:crypto";
import { useSystem } from "../../support/fixture";
import { errorCode, type SignedIn } from "../../support/users-client";
import { phone, Subscription } from "../gateway/harness";

/**
 * The whole system through the gateway, each subgraph learning from the others' events only: a
 * match opens a chat reachable from the match in one request, group members need consent, and a
 * block ends contact while an unblock lets the pair match again as a new match.
 */
describe("consent, matches and blocks through the gateway", () => {
  const fixture = useSystem();

  const send = <T = any>(query: string, variables: Record<string, unknown>, who: SignedIn) =>
    fixture.client.request<T>(query, variables, who.accessToken);

  /** Bounded polling (a fixed number of short sleeps; no clock threshold on the outcome). */
  async function until<T>(what: string, read: () => Promise<T | null | undefined | false>): Promise<T> {
    for (let attempt = 0; attempt < 400; attempt += 1) {
      const value = await read();
      if (value) return value;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`never happened: ${what}`);
  }

  /** Signed up, once Discovery and Chat have both learnt the profile from `user.profile_changed`. */
  async function person(displayName: string): Promise<SignedIn> {
    const who = await fixture.client.signUp({ displayName });
    await until(`${displayName} known to Discovery and Chat`, async () => {
      const [discovery, chat] = await Promise.all([
        fixture.dbs.discovery.discoveryProfile.count({ where: { userId: who.userId } }),
        fixture.dbs.chat.person.count({ where: { userId: who.userId } }),
      ]);
      return discovery > 0 && chat > 0;
    });
    return who;
  }

  const LIKE = `mutation($u: ID!) { like(userId: $u) { matched match { id } } }`;
  const MATCHES = `query { matches(first: 50) { edges { node { id user { id displayName } conversation { id closed unreadCount } } } } }`;
  const CONVERSATION = `query($id: ID!) { conversation(id: $id) { id kind closed closedReason match { id user { id displayName } } } }`;
  const CREATE = `mutation($input: CreateGroupInput!) { createGroupConversation(input: $input) { id memberCount members { user { id } } invited { id displayName } } }`;
  const INVITATIONS = `query { myInvitations { edges { node { id title conversationId inviter { id displayName } } } } }`;
  const ACCEPT = `mutation($i: ID!) { acceptInvitation(invitationId: $i) { id memberCount myRole } }`;

  type MatchEdge = {
    node: {
      id: string;
      user: { id: string; displayName: string };
      conversation: { id: string; closed: boolean } | null;
    };
  };
  const matchWith = async (who: SignedIn, other: SignedIn) =>
    ((await send(MATCHES, {}, who)).body.data?.matches.edges as MatchEdge[] | undefined)?.find(
      (edge) => edge.node.user.id === other.userId,
    )?.node ?? null;

  it("should open the chat from a match in one request, and the match from the chat", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    await send(LIKE, { u: bob.userId }, ada);
    const liked = await send(LIKE, { u: ada.userId }, bob);
    const matchId = liked.body.data.like.match.id as string;
    // Chat opens the conversation when match.created arrives: until then the field is null.
    const seenByAda = await until(
      "the match's conversation",
      async () => (await matchWith(ada, bob))?.conversation,
    );
    const seenByBob = await until(
      "the match's conversation for Bob",
      async () => (await matchWith(bob, ada))?.conversation,
    );
    expect(seenByBob.id).toBe(seenByAda.id);
    expect(seenByAda).toMatchObject({ closed: false, unreadCount: 0 });
    const conversation = (await send(CONVERSATION, { id: seenByAda.id }, ada)).body.data.conversation;
    expect(conversation).toMatchObject({
      kind: "DIRECT",
      closed: false,
      match: { id: matchId, user: { id: bob.userId, displayName: "Bob" } },
    });
  });

  it("should add a match to a group, invite anyone else, and refuse a hidden or unknown id alike", async () => {
    const [ada, bob, cy, dee] = [
      await person("Ada"),
      await person("Bob"),
      await person("Cy"),
      await person("Dee"),
    ];
    await send(LIKE, { u: bob.userId }, ada);
    await send(LIKE, { u: ada.userId }, bob);
    await until("the match's conversation", async () => (await matchWith(ada, bob))?.conversation);
    const hidden = await send(`mutation { updateProfile(input: { visibility: HIDDEN }) { id } }`, {}, dee);
    expect(hidden.body.errors).toBeUndefined();
    await until(
      "Chat learnt Dee is hidden",
      async () =>
        (await fixture.dbs.chat.person.findUnique({ where: { userId: dee.userId } }))?.visible === false,
    );

    const created = await send(
      CREATE,
      { input: { title: "Climbing", memberIds: [bob.userId, cy.userId] } },
      ada,
    );
    expect(created.body.errors).toBeUndefined();
    const group = created.body.data.createGroupConversation;
    expect(group.memberCount).toBe(2);
    expect(group.invited).toEqual([{ id: cy.userId, displayName: "Cy" }]);
    const invitation = (await send(INVITATIONS, {}, cy)).body.data.myInvitations.edges[0].node;
    expect(invitation).toMatchObject({
      title: "Climbing",
      conversationId: group.id,
      inviter: { id: ada.userId, displayName: "Ada" },
    });
    expect((await send(ACCEPT, { i: invitation.id }, cy)).body.data.acceptInvitation).toMatchObject({
      id: group.id,
      memberCount: 3,
      myRole: "MEMBER",
    });

    const refusals = await Promise.all(
      [dee.userId, randomUUID()].map((id) => send(CREATE, { input: { title: "x", memberIds: [id] } }, ada)),
    );
    expect(refusals.map((response) => [errorCode(response), response.body.errors?.[0]?.message])).toEqual([
      ["USER_UNAVAILABLE", "This person cannot be added to a conversation"],
      ["USER_UNAVAILABLE", "This person cannot be added to a conversation"],
    ]);
  });

  it("should bring the invitation, with the inviter's name from Users, to the invitee's stream through the gateway", async () => {
    const [ada, cy] = [await person("Ada"), await person("Cy")];
    const device = phone(fixture.system.gatewayUrl.replace(/^http/, "ws"), {
      authorization: `Bearer ${cy.accessToken}`,
    });
    type Feed = {
      myChatEvents: {
        kind: string;
        conversationId: string;
        invitation: { id: string; title: string; inviter: { id: string; displayName: string } } | null;
      };
    };
    const feed = new Subscription<Feed>(
      device.client,
      `subscription { myChatEvents { kind conversationId invitation { id title inviter { id displayName } } } }`,
    );
    try {
      // The protocol has no "subscribed" answer: invite again (a new group each time) until one arrives.
      const invited: string[] = [];
      let polls = 0;
      const event = await until("an invitation on Cy's stream", async () => {
        if (polls++ % 5 === 0) {
          const created = await send(
            CREATE,
            { input: { title: `Group ${invited.length}`, memberIds: [cy.userId] } },
            ada,
          );
          invited.push(created.body.data.createGroupConversation.id);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        return feed.results.find((result) => result.data?.myChatEvents.kind === "INVITATION_RECEIVED");
      });
      expect(event.errors).toBeUndefined();
      const received = event.data!.myChatEvents;
      expect(invited).toContain(received.conversationId);
      expect(received.invitation).toMatchObject({
        title: `Group ${invited.indexOf(received.conversationId)}`,
        inviter: { id: ada.userId, displayName: "Ada" },
      });
    } finally {
      feed.dispose();
      await device.dispose();
    }
  });

  it("should end contact on a block, and let the pair match again after an unblock as a new match with a new chat", async () => {
    const [ada, bob] = [await person("Ada"), await person("Bob")];
    await send(LIKE, { u: bob.userId }, ada);
    await send(LIKE, { u: ada.userId }, bob);
    const first = await until(
      "the first conversation",
      async () => (await matchWith(ada, bob))?.conversation,
    );
    expect(
      (await send(`mutation($u: ID!) { blockUser(userId: $u) }`, { u: ada.userId }, bob)).body.errors,
    ).toBeUndefined();
    // Bob (the blocker) no longer sees the conversation; Ada sees it closed like an unmatch.
    await until(
      "Ada's conversation closed",
      async () => (await send(CONVERSATION, { id: first.id }, ada)).body.data?.conversation?.closed === true,
    );
    expect((await send(CONVERSATION, { id: first.id }, ada)).body.data.conversation.closedReason).toBe(
      "UNMATCHED",
    );
    expect((await send(CONVERSATION, { id: first.id }, bob)).body.data.conversation).toBeNull();
    expect(await matchWith(ada, bob)).toBeNull();
    expect(errorCode(await send(LIKE, { u: ada.userId }, bob))).toBe("NOT_FOUND");

    expect(
      (await send(`mutation($u: ID!) { unblockUser(userId: $u) }`, { u: ada.userId }, bob)).body.errors,
    ).toBeUndefined();
    // Discovery applies the unblock from its event: like again until it is through.
    await until(
      "Bob may like Ada again",
      async () => errorCode(await send(LIKE, { u: ada.userId }, bob)) === undefined,
    );
    const again = await send(LIKE, { u: bob.userId }, ada);
    expect(again.body.data.like.matched).toBe(true);
    const second = await until("the new conversation", async () => (await matchWith(ada, bob))?.conversation);
    expect(second.id).not.toBe(first.id);
    expect(second.closed).toBe(false);
  });
});
