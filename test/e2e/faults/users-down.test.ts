import { randomUUID } from "node:crypto";
import { start as startUsers } from "@hv/users";
import { loadUsersConfig, type RunningSubgraph } from "@hv/kit";
import { capturingLogger } from "../../support/log-capture";
import { startSystem, testEnv, type RunningSystem } from "../../support/system";
import { UsersClient, type SignedIn } from "../../support/users-client";
import { phone, Subscription, type Phone } from "../gateway/harness";

const MESSAGE = `id seq text senderId sender { id displayName }`;
const FEED = `subscription Feed { myChatEvents { kind conversationId seq actor { id } message { ${MESSAGE} } } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE} } }`;
const MESSAGES = `query($id: ID!, $after: Int) { messages(conversationId: $id, after: $after, first: 100) { messages { ${MESSAGE} } } }`;
const MESSAGES_PAGE = `query($id: ID!, $after: Int, $first: Int) { messages(conversationId: $id, after: $after, first: $first) { messages { ${MESSAGE} } } }`;

interface Message {
  id: string;
  seq: number;
  text: string;
  senderId: string;
  sender: { id: string; displayName: string } | null;
}
interface FeedEvent {
  kind: string;
  seq: number;
  actor: { id: string } | null;
  message: Message | null;
}
type Errors = Array<{ message: string; extensions?: Record<string, unknown> }> | undefined;
const codes = (errors: Errors) => (errors ?? []).map((e) => e.extensions?.code);

/**
 * The real Users subgraph stopped (its port refuses connections) and started again on the same
 * port, while two people chat through the gateway and the real Chat subgraph.
 */
describe("chat while Users is down", () => {
  let system: RunningSystem;
  let client: UsersClient;
  let restarted: RunningSubgraph | undefined;
  const phones: Phone[] = [];

  beforeAll(async () => {
    system = await startSystem({ CHAT_SEND_BURST: "1000" });
    client = new UsersClient(system.gatewayUrl);
  });
  afterAll(async () => {
    await Promise.all(phones.map((p) => p.dispose()));
    await restarted?.stop();
    await system?.stop();
  });

  const send = (who: SignedIn, conversationId: string, text: string) =>
    client.request<{ sendMessage: Message | null }>(
      SEND,
      { input: { conversationId, clientMessageId: randomUUID(), text } },
      who.accessToken,
    );

  it("should store and deliver messages, the sender from the gateway's copy or null flagged UPSTREAM_UNAVAILABLE, and the sender again once Users is back", async () => {
    const [ada, bob, cy] = [
      await client.signUp({ displayName: "Ada" }),
      await client.signUp({ displayName: "Bob" }),
      await client.signUp({ displayName: "Cy" }),
    ];
    // Bob and Cy have not matched Ada: they are invited (once Chat learnt of them from
    // user.profile_changed) and accept.
    let conversationId = "";
    for (let attempt = 0; attempt < 200 && !conversationId; attempt += 1) {
      const created = await client.request<{ createGroupConversation: { id: string } }>(
        `mutation($input: CreateGroupInput!) { createGroupConversation(input: $input) { id } }`,
        { input: { title: "friends", memberIds: [bob.userId, cy.userId] } },
        ada.accessToken,
      );
      conversationId = created.body.data?.createGroupConversation.id ?? "";
      if (!conversationId) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const invited of [bob, cy]) {
      const invitations = await client.request<{
        myInvitations: { edges: Array<{ node: { id: string; conversationId: string } }> };
      }>(`query { myInvitations { edges { node { id conversationId } } } }`, {}, invited.accessToken);
      const invitation = invitations.body.data!.myInvitations.edges.find(
        (edge) => edge.node.conversationId === conversationId,
      )!.node.id;
      const accepted = await client.request(
        `mutation($i: ID!) { acceptInvitation(invitationId: $i) { id } }`,
        { i: invitation },
        invited.accessToken,
      );
      expect(accepted.body.errors).toBeUndefined();
    }
    const p = phone(system.gatewayUrl.replace(/^http/, "ws"), { authorization: `Bearer ${bob.accessToken}` });
    phones.push(p);
    const sub = new Subscription<{ myChatEvents: FeedEvent }>(p.client, FEED);
    const added = () => sub.results.filter((r) => r.data?.myChatEvents.kind === "MESSAGE_ADDED");
    // Live once a message sent now comes through.
    let before: Message | null = null;
    for (let attempt = 0; attempt < 100 && added().length === 0; attempt += 1) {
      if (!before) before = (await send(ada, conversationId, "before")).body.data?.sendMessage ?? null;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Sent before the subscription was live: it may only be in the catch-up; one more surely live.
    const warm = (await send(ada, conversationId, "warm")).body.data!.sendMessage!;
    await sub.until(
      () => added().some((r) => r.data?.myChatEvents.message?.id === warm.id),
      "a live message while Users is up",
    );
    expect(warm.sender).toEqual({ id: ada.userId, displayName: "Ada" });

    const usersPort = system.subgraphs.users.port;
    await system.subgraphs.users.stop();
    await expect(fetch(system.subgraphs.users.url)).rejects.toThrow();
    // Past SUBSCRIPTION_DEFAULTS.fetchShareMs (1 s): what fills the sender in below is the
    // gateway's copy of Ada's public fields, kept since the warm event until she changes.
    await new Promise((resolve) => setTimeout(resolve, 1_100));

    // The send succeeds, its sender from the gateway's copy of Ada (kept since the warm send).
    const during = await send(ada, conversationId, "while Users is down");
    expect(during.status).toBe(200);
    expect(during.body.errors).toBeUndefined();
    expect(during.body.data?.sendMessage).toMatchObject({
      text: "while Users is down",
      senderId: ada.userId,
      sender: { id: ada.userId, displayName: "Ada" },
    });
    const sent = during.body.data!.sendMessage!;

    // The live event carries it too, with the sender the gateway already held (it needs no Users).
    await sub.until(
      () => added().some((r) => r.data?.myChatEvents.message?.id === sent.id),
      "the live message while Users is down",
    );
    const live = added().find((r) => r.data?.myChatEvents.message?.id === sent.id)!;
    expect(live.data?.myChatEvents.message).toEqual({
      id: sent.id,
      seq: sent.seq,
      text: "while Users is down",
      senderId: ada.userId,
      sender: { id: ada.userId, displayName: "Ada" },
    });
    expect(live.errors).toBeUndefined();

    // Bob's feed is open: the gateway fetched his public fields when it opened (warming), so his
    // send needs no Users either.
    const bobs = await send(bob, conversationId, "Bob while Users is down");
    expect(bobs.body.errors).toBeUndefined();
    expect(bobs.body.data?.sendMessage).toMatchObject({
      senderId: bob.userId,
      sender: { id: bob.userId, displayName: "Bob" },
    });
    const bobsOwn = bobs.body.data!.sendMessage!;

    // Cy's public fields were never asked for (no feed, no send): his send is stored, who sent it
    // is known, the profile is missing and the answer says so.
    const cys = await send(cy, conversationId, "Cy while Users is down");
    expect(cys.status).toBe(200);
    expect(cys.body.data?.sendMessage).toMatchObject({
      text: "Cy while Users is down",
      senderId: cy.userId,
      sender: null,
    });
    expect(codes(cys.body.errors)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    const cysSent = cys.body.data!.sendMessage!;

    // And the catch-up: Ada's message from the gateway's copy, Cy's with a null sender, flagged.
    const catchUp = (after: number, first: number) =>
      client.request<{ messages: { messages: Message[] } }>(
        MESSAGES_PAGE,
        { id: conversationId, after, first },
        bob.accessToken,
      );
    const adasPage = await catchUp(warm.seq, 1);
    expect(adasPage.body.errors).toBeUndefined();
    expect(adasPage.body.data?.messages.messages).toEqual([
      {
        id: sent.id,
        seq: sent.seq,
        text: "while Users is down",
        senderId: ada.userId,
        sender: { id: ada.userId, displayName: "Ada" },
      },
    ]);
    const cysPage = await catchUp(bobsOwn.seq, 100);
    expect(cysPage.body.data?.messages.messages).toEqual([
      {
        id: cysSent.id,
        seq: cysSent.seq,
        text: "Cy while Users is down",
        senderId: cy.userId,
        sender: null,
      },
    ]);
    expect(codes(cysPage.body.errors)).toEqual(["UPSTREAM_UNAVAILABLE"]);
    // A page of both: the sender the gateway holds answered, the other null and flagged at its place.
    const bothPage = await catchUp(warm.seq, 100);
    expect(bothPage.body.data?.messages.messages.map((m) => [m.id, m.sender])).toEqual([
      [sent.id, { id: ada.userId, displayName: "Ada" }],
      [bobsOwn.id, { id: bob.userId, displayName: "Bob" }],
      [cysSent.id, null],
    ]);
    expect(bothPage.body.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([
      ["UPSTREAM_UNAVAILABLE", ["messages", "messages", 2, "sender"]],
    ]);
    expect(
      JSON.stringify([during.body, live, bobs.body, cys.body, adasPage.body, cysPage.body, bothPage.body]),
    ).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);

    // Users back on its port: profiles come back, nothing to do for the phone but read them.
    restarted = await startUsers(
      loadUsersConfig(
        testEnv({ USERS_PORT: String(usersPort), AUTH_SIGNING_KEYS: JSON.stringify(system.signingKeys) }),
      ),
      capturingLogger("users-restarted").logger,
    );
    const after = await send(ada, conversationId, "Users is back");
    expect(after.body.errors).toBeUndefined();
    expect(after.body.data?.sendMessage?.sender).toEqual({ id: ada.userId, displayName: "Ada" });
    await sub.until(
      () => added().some((r) => r.data?.myChatEvents.message?.id === after.body.data?.sendMessage?.id),
      "the live message after Users is back",
    );
    const again = await client.request<{ messages: { messages: Message[] } }>(
      MESSAGES,
      { id: conversationId, after: warm.seq },
      bob.accessToken,
    );
    expect(again.body.errors).toBeUndefined();
    expect(again.body.data?.messages.messages.map((m) => m.sender?.displayName)).toEqual([
      "Ada",
      "Bob",
      "Cy",
      "Ada",
    ]);
    sub.dispose();
  });
});
