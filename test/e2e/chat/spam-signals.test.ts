import { randomUUID } from "node:crypto";
import { type EventPayload } from "@hv/kit";
import { normalizeText, textFingerprint } from "@hv/chat/src/modules/spam-signals";
import {
  codeOf,
  createGroup,
  eventually,
  gql,
  MESSAGES,
  send,
  startChatHarness,
  chatEventFeed,
  type ChatEventFeed,
  subscriber,
  untilLive,
  wsUrl,
  type ChatHarness,
  type Person,
  type Subscriber,
} from "./harness";

/**
 * Spam signals and holds on a real chat instance, Postgres and Redis: each signal fires once per
 * window, a held account's messages to strangers are withheld (live, history, push) until a
 * moderator's DISMISS releases them in order, and a ban keeps them withheld.
 */
describe("chat spam signals", () => {
  let harness: ChatHarness;
  let url: string;
  let events: ChatEventFeed;

  beforeAll(async () => {
    harness = await startChatHarness({
      CHAT_REQUIRE_MATCH: "false",
      CHAT_SEND_BURST: "1000",
      CHAT_NEW_ACCOUNT_HOURS: "24",
      CHAT_NEW_ACCOUNT_MAX_MESSAGES: "6",
      CHAT_NEW_ACCOUNT_MAX_CONVERSATIONS: "4",
      CHAT_REPEATED_TEXT_CONVERSATIONS: "3",
      CHAT_MESSAGE_MAX_LENGTH: "200",
    });
    url = harness.instances[0]!.url;
    events = chatEventFeed(harness);
  });
  afterAll(async () => {
    await events?.close();
    await harness?.stop();
  });

  const deliver: ChatEventFeed["deliver"] = (type, payload) => events.deliver(type, payload);

  /** A person whose token says the account was created `ageHours` ago. */
  async function aged(ageHours: number): Promise<Person> {
    const person = await harness.person();
    const accountCreatedAt = Math.floor(Date.now() / 1000 - ageHours * 3600);
    const { token } = await harness.tokens.issue({
      userId: person.userId,
      sessionId: person.sessionId,
      role: "USER",
      accountCreatedAt,
    });
    return { ...person, token };
  }
  const fresh = () => aged(1);
  const old = () => aged(24 * 30);

  const OPEN = "mutation($u: ID!) { openDirectConversation(userId: $u) { id } }";
  async function direct(one: Person, other: Person): Promise<string> {
    const response = await gql(url, OPEN, { u: other.userId }, one);
    const id = response.body.data?.openDirectConversation?.id;
    if (!id) throw new Error(`openDirectConversation failed: ${JSON.stringify(response.body)}`);
    return id;
  }
  const match = async (one: Person, other: Person): Promise<string> => {
    await deliver("match.created", { matchId: randomUUID(), userIds: [one.userId, other.userId] });
    return direct(one, other);
  };
  const moderate = (userId: string, action: EventPayload<"moderation.action_taken">["action"]) =>
    deliver("moderation.action_taken", {
      caseId: randomUUID(),
      targetKind: "USER",
      targetId: userId,
      targetUserId: userId,
      action,
      moderatorId: randomUUID(),
      at: new Date().toISOString(),
    });

  async function signalsOf(userId: string): Promise<Array<Record<string, unknown>>> {
    const rows = await harness.db.$queryRaw<Array<{ payload: Record<string, unknown> }>>`
      SELECT payload FROM outbox_events WHERE type = 'safety.signal_raised' AND payload->>'userId' = ${userId} ORDER BY created_at`;
    return rows.map((row) => row.payload);
  }
  async function pushedTo(userId: string, conversationId: string): Promise<number> {
    const rows = await harness.db.$queryRaw<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM outbox_events
       WHERE type = 'message.created' AND payload->>'conversationId' = ${conversationId}
         AND payload->'recipients' @> ${JSON.stringify([{ userId }])}::jsonb`;
    return rows[0]!.n;
  }
  async function historyOf(
    who: Person,
    conversationId: string,
  ): Promise<Array<{ id: string; seq: number; text: string }>> {
    const response = await gql(url, MESSAGES, { conversationId, first: 100 }, who);
    expect(response.body.errors).toBeUndefined();
    return response.body.data.messages.messages;
  }
  async function liveStream(who: Person, conversationId: string): Promise<Subscriber> {
    const stream = subscriber(() => wsUrl(harness.instances[0]!), who);
    await untilLive(url, who, stream, conversationId);
    return stream;
  }
  const added = (stream: Subscriber, conversationId: string) =>
    stream.events.filter(
      (event) => event.kind === "MESSAGE_ADDED" && event.conversationId === conversationId,
    );

  it("should hold a new account's links to a stranger: hidden live, in history and from push, then delivered in order on DISMISS", async () => {
    const [sender, stranger] = [await fresh(), await old()];
    const conversation = await direct(sender, stranger);
    const [strangerStream, senderStream] = [
      await liveStream(stranger, conversation),
      await liveStream(sender, conversation),
    ];

    const links = await send(url, sender, conversation, "see my pics at www.example.com");
    expect(links.body.errors).toBeUndefined();
    const more = await send(url, sender, conversation, "or h\u200Bere: HTTPS://spam.example.com/x");
    expect(more.body.errors).toBeUndefined();
    const held = [links.body.data.sendMessage, more.body.data.sendMessage];
    // The sender sees its own messages as always: answered, live on its other devices, in history.
    expect(held.map((message) => message.seq)).toEqual([1, 2]);
    await eventually(() => added(senderStream, conversation).length === 2, "the sender's own live events");
    expect((await historyOf(sender, conversation)).map((message) => message.id)).toEqual(
      held.map((message) => message.id),
    );

    // One signal for both messages, with exactly the catalogued payload.
    const signals = await signalsOf(sender.userId);
    expect(signals).toEqual([
      {
        userId: sender.userId,
        signal: "LINKS_FROM_NEW_ACCOUNT",
        detail: expect.any(String),
        at: expect.any(String),
      },
    ]);
    expect(new Date(String(signals[0]!.at)).toISOString()).toBe(signals[0]!.at);

    // Withheld from the stranger: not in history, not pushed, not live.
    expect(await historyOf(stranger, conversation)).toEqual([]);
    expect(await pushedTo(stranger.userId, conversation)).toBe(0);
    // A retried send (same clientMessageId) returns the held message, not a second one.
    const retried = await gql(
      url,
      "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }",
      {
        input: {
          conversationId: conversation,
          clientMessageId: links.body.data.sendMessage.clientMessageId,
          text: "see my pics at www.example.com",
        },
      },
      sender,
    );
    expect(retried.body.data.sendMessage).toEqual({ id: held[0]!.id, seq: 1 });

    // The stranger writes: it takes seq 1, the held messages hold no place in the sequence.
    expect((await send(url, stranger, conversation, "hello?")).body.data.sendMessage.seq).toBe(1);
    await eventually(
      () => added(strangerStream, conversation).length === 1,
      "the stranger's own message live",
    );
    expect(added(strangerStream, conversation).map((event) => event.message?.text)).toEqual(["hello?"]);

    await moderate(sender.userId, "DISMISS");
    const after = await historyOf(stranger, conversation);
    expect(after.map((message) => message.seq)).toEqual([1, 2, 3]);
    expect(after.slice(1).map((message) => message.id)).toEqual(held.map((message) => message.id));
    await eventually(() => added(strangerStream, conversation).length === 3, "released messages live");
    expect(added(strangerStream, conversation).map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(await pushedTo(stranger.userId, conversation)).toBe(2);
    // The sender's view now has them once, with their real seqs.
    expect((await historyOf(sender, conversation)).map((message) => message.seq)).toEqual([1, 2, 3]);
    // Released: the next link flows at once.
    const next = await send(url, sender, conversation, "www.example.com again");
    expect(next.body.data.sendMessage.seq).toBe(4);
    expect((await historyOf(stranger, conversation)).map((message) => message.seq)).toEqual([1, 2, 3, 4]);
    await strangerStream.dispose();
    await senderStream.dispose();
  });

  it("should not raise the links signal for an old account, nor for a new account writing to its match", async () => {
    const [oldSender, newSender, other, matched] = [await old(), await fresh(), await old(), await old()];
    const toOther = await direct(oldSender, other);
    expect((await send(url, oldSender, toOther, "www.example.com")).body.errors).toBeUndefined();
    const toMatch = await match(newSender, matched);
    expect((await send(url, newSender, toMatch, "my insta: www.example.com")).body.errors).toBeUndefined();
    expect(await signalsOf(oldSender.userId)).toEqual([]);
    expect(await signalsOf(newSender.userId)).toEqual([]);
    expect((await historyOf(other, toOther)).map((message) => message.text)).toEqual(["www.example.com"]);
    expect((await historyOf(matched, toMatch)).map((message) => message.text)).toEqual([
      "my insta: www.example.com",
    ]);
  });

  it("should see through case, spacing, accents and invisible characters when the same text goes to many conversations", async () => {
    const sender = await old();
    const targets = [await old(), await old(), await old(), await old()];
    const conversations: string[] = [];
    for (const target of targets) conversations.push(await direct(sender, target));
    const variants = [
      "Hey, check my profile!",
      "hey,   CHECK my\tprofile!",
      "he\u200By, che\u00ADck my pro\uFEFFfile!",
      "Hey, chéck my profile!",
    ];
    expect(new Set(variants.map(textFingerprint)).size).toBe(1);
    expect(normalizeText(variants[2]!)).toBe("hey, check my profile!");
    for (const [index, conversation] of conversations.entries()) {
      expect((await send(url, sender, conversation, variants[index]!)).body.errors).toBeUndefined();
    }
    // A different text is not the same text.
    expect(
      (await send(url, sender, conversations[0]!, "Hey, check my profile?!")).body.errors,
    ).toBeUndefined();
    const signals = await signalsOf(sender.userId);
    expect(signals.map((signal) => signal.signal)).toEqual(["REPEATED_TEXT"]);
    // The first two went out before the signal; from the third on, strangers get nothing.
    expect((await historyOf(targets[0]!, conversations[0]!)).length).toBe(1);
    expect((await historyOf(targets[1]!, conversations[1]!)).length).toBe(1);
    expect(await historyOf(targets[2]!, conversations[2]!)).toEqual([]);
    expect(await historyOf(targets[3]!, conversations[3]!)).toEqual([]);

    // A ban keeps them withheld for good; the sender still sees its own.
    await moderate(sender.userId, "BAN");
    await moderate(sender.userId, "DISMISS");
    expect(await historyOf(targets[3]!, conversations[3]!)).toEqual([]);
    expect((await historyOf(sender, conversations[3]!)).length).toBe(1);
    expect(await pushedTo(targets[3]!.userId, conversations[3]!)).toBe(0);
  });

  it("should answer RATE_LIMITED over the new-account throttles, raising NEW_ACCOUNT_BURST once", async () => {
    const sender = await fresh();
    const others = [await old(), await old(), await old(), await old(), await old()];
    const conversations: string[] = [];
    for (const other of others.slice(0, 4)) conversations.push(await direct(sender, other));
    const fifth = await gql(url, OPEN, { u: others[4]!.userId }, sender);
    expect(codeOf(fifth)).toBe("RATE_LIMITED");
    expect(fifth.body.errors?.[0]?.extensions).toMatchObject({
      limit: "chat-new-account-conversations",
      retryAfterSeconds: expect.any(Number),
    });
    expect(fifth.body.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(22 * 3600);

    // Matched conversations are where a burst goes unnoticed by strangers: the throttle still counts.
    const own = await match(others[0]!, sender).then(() => conversations[0]!);
    const answers: Array<string | undefined> = [];
    for (let index = 0; index < 8; index += 1)
      answers.push(codeOf(await send(url, sender, own, `message ${index}`)));
    expect(answers).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      "RATE_LIMITED",
      "RATE_LIMITED",
    ]);
    expect((await signalsOf(sender.userId)).map((signal) => signal.signal)).toEqual(["NEW_ACCOUNT_BURST"]);

    // An old account is not throttled.
    const veteran = await old();
    for (const other of others) expect(await direct(veteran, other)).toEqual(expect.any(String));
    expect(await signalsOf(veteran.userId)).toEqual([]);
  });

  it("should refuse hostile input before counting it", async () => {
    const sender = await fresh();
    const conversation = await direct(sender, await old());
    const huge = await send(url, sender, conversation, "www.example.com ".repeat(1000));
    expect(codeOf(huge)).toBe("BAD_USER_INPUT");
    expect(huge.body.errors?.[0]?.extensions?.field).toBe("input.text");
    const invisible = await send(url, sender, conversation, "\u200B\u200B\u200B");
    expect(codeOf(invisible)).toBe("BAD_USER_INPUT");
    expect(await signalsOf(sender.userId)).toEqual([]);
    // A group with a stranger counts as one opened conversation and holds links like a one-to-one.
    const group = await createGroup(url, sender, [await old()]);
    const link = await send(url, sender, group, "join: t.me/spam");
    expect(link.body.errors).toBeUndefined();
    expect((await signalsOf(sender.userId)).map((signal) => signal.signal)).toEqual([
      "LINKS_FROM_NEW_ACCOUNT",
    ]);
  });
});
