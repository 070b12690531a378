import { randomUUID } from "node:crypto";
import type { RunningSubgraph } from "@hv/kit";
import { knownQueryAnswers } from "@hv/kit/src/known-queries";
import { createGroup, SEND, startChatHarness, type ChatHarness, type Person } from "./harness";

/**
 * Chat's mutations answered without Apollo Server's pipeline (kit/src/known-queries.ts) against the
 * same Chat with Apollo answering every request (SUBGRAPH_KNOWN_OPERATIONS=false), on one database
 * and Redis: status, headers and body byte for byte, and each mutation run once.
 */
describe("chat mutations without Apollo Server's pipeline", () => {
  let harness: ChatHarness;
  let known: RunningSubgraph;
  let apollo: RunningSubgraph;
  let a: Person;
  let b: Person;
  let outsider: Person;
  let conversationId: string;

  beforeAll(async () => {
    harness = await startChatHarness({ CHAT_MESSAGE_MAX_LENGTH: "50", CHAT_SEND_BURST: "1000" });
    known = harness.instances[0]!;
    apollo = await harness.startInstance({ SUBGRAPH_KNOWN_OPERATIONS: "false" });
    [a, b, outsider] = [await harness.person(), await harness.person(), await harness.person()];
    conversationId = await createGroup(known.url, a, [b]);
  });
  afterAll(async () => harness?.stop());

  /**
   * One POST as the gateway sends it: its status, headers (but the date) and body text. Outside
   * production errors carry their stack, whose frames differ between the paths: it is left out
   * (and the length with it); kit/src/known-queries.test.ts compares production answers whole.
   */
  const ask = async (
    instance: RunningSubgraph,
    query: string,
    variables: Record<string, unknown>,
    who: Person | string | undefined,
  ) => {
    const token = typeof who === "string" ? who : who?.token;
    const response = await fetch(instance.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-request-id": "request-0001",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify({ query, variables }),
    });
    const headers = Object.fromEntries(
      [...response.headers].filter(([name]) => name !== "date" && name !== "keep-alive"),
    );
    const text = await response.text();
    const body = JSON.parse(text) as { errors?: Array<{ extensions?: { stacktrace?: unknown } }> };
    if (!body.errors?.some((error) => error.extensions?.stacktrace))
      return { status: response.status, headers, text };
    for (const error of body.errors) delete error.extensions?.stacktrace;
    delete headers["content-length"];
    return { status: response.status, headers, text: `${JSON.stringify(body)}\n` };
  };
  const messageCount = () => harness.db.message.count({ where: { conversationId } });
  const input = (extra: Record<string, unknown> = {}) => ({
    input: { conversationId, clientMessageId: randomUUID(), text: "hello", ...extra },
  });

  it("should answer a send as Apollo Server does, and its retry with the same bytes", async () => {
    // Sent where Apollo answers, retried where the known path answers; then the other way round.
    for (const [first, retry] of [
      [apollo, known],
      [known, apollo],
    ] as const) {
      const variables = input();
      const sent = await ask(first, SEND, variables, a);
      expect(sent.status).toBe(200);
      expect(JSON.parse(sent.text).data.sendMessage.text).toBe("hello");
      expect(await ask(retry, SEND, variables, a)).toEqual(sent);
    }
  });

  it("should answer the send itself, and once", async () => {
    const before = { answers: knownQueryAnswers(), messages: await messageCount() };
    await ask(known, SEND, input(), a);
    await ask(apollo, SEND, input(), a);
    expect({ answers: knownQueryAnswers(), messages: await messageCount() }).toEqual({
      answers: before.answers + 1,
      messages: before.messages + 2,
    });
  });

  const MARK_READ = "mutation($c: ID!, $s: Int!) { markRead(conversationId: $c, seq: $s) }";
  const TYPING = "mutation($c: ID!) { typing(conversationId: $c) }";
  const refusals: Array<[string, () => [string, Record<string, unknown>, Person | string | undefined]]> = [
    ["a text too long", () => [SEND, input({ text: "x".repeat(51) }), a]],
    ["a conversation that does not exist", () => [SEND, input({ conversationId: randomUUID() }), a]],
    ["an id that is not one", () => [SEND, input({ conversationId: "nope" }), a]],
    ["someone not in the conversation", () => [SEND, input(), outsider]],
    ["a variable of the wrong type", () => [SEND, input({ text: 5 }), a]],
    ["no token", () => [SEND, input(), undefined]],
    ["a bad token", () => [SEND, input(), "not-a-token"]],
    ["markRead by someone not in it", () => [MARK_READ, { c: conversationId, s: 1 }, outsider]],
    ["markRead of a negative seq", () => [MARK_READ, { c: conversationId, s: -1 }, b]],
    ["typing by someone not in it", () => [TYPING, { c: conversationId }, outsider]],
  ];
  it.each(refusals)("should refuse %s as Apollo Server does, storing nothing", async (_what, request) => {
    const [query, variables, who] = request();
    const before = await messageCount();
    const expected = await ask(apollo, query, variables, who);
    expect(JSON.parse(expected.text).errors).toHaveLength(1);
    expect(await ask(known, query, variables, who)).toEqual(expected);
    expect(await messageCount()).toBe(before);
  });

  it("should answer markRead and typing as Apollo Server does", async () => {
    const seq: number = JSON.parse((await ask(known, SEND, input(), a)).text).data.sendMessage.seq;
    for (const [query, variables] of [
      [MARK_READ, { c: conversationId, s: seq }],
      [TYPING, { c: conversationId }],
    ] as const) {
      const expected = await ask(apollo, query, variables, b);
      expect(JSON.parse(expected.text).errors).toBeUndefined();
      const before = knownQueryAnswers();
      expect(await ask(known, query, variables, b)).toEqual(expected);
      expect(knownQueryAnswers()).toBe(before + 1);
    }
  });
});
