import { readFileSync } from "node:fs";
import path from "node:path";
import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { loadGatewayConfig, SUBGRAPH_NAMES } from "@hv/kit";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { useSystem } from "../../support/fixture";
import { capturingLogger } from "../../support/log-capture";
import { testEnv } from "../../support/system";
import type { SignedIn } from "../../support/users-client";
import { createGroup } from "./harness";

const MATCHES = readFileSync(path.join(__dirname, "../../../operations/discovery/Matches.graphql"), "utf8");
const USER = `query User($id: ID!) { user(id: $id) { id displayName age bio interests } }`;
const ME = `{ me { id displayName } }`;
/** Headers Apollo Server's answer carries that a direct answer must carry alike. */
const COMPARED_HEADERS = [
  "content-type",
  "content-length",
  "cache-control",
  "www-authenticate",
  "retry-after",
  "etag",
  "access-control-allow-origin",
];

function withoutStacktraces(text: string): string {
  const body = JSON.parse(text) as { errors?: Array<{ extensions?: Record<string, unknown> }> };
  for (const error of body.errors ?? []) delete error.extensions?.stacktrace;
  return JSON.stringify(body);
}

interface Answer {
  status: number;
  headers: Record<string, string | null>;
  body: string;
}

/**
 * Operations the gateway answers without Apollo Server's pipeline (gateway/src/direct-operations.ts)
 * against a gateway where Apollo answers everything: same status, headers and bytes, for answers
 * and for every kind of error (those fall back to Apollo with what already ran).
 */
describe("operations answered without Apollo Server's pipeline", () => {
  const fixture = useSystem();
  let direct: RunningGateway;
  let reference: RunningGateway;
  let ada: SignedIn;
  let bob: SignedIn;

  const gatewayWith = (directOperations: boolean) => {
    const { system } = fixture;
    return startGateway(
      loadGatewayConfig({
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl }),
        ...Object.fromEntries(
          SUBGRAPH_NAMES.map((name) => [`${name.toUpperCase()}_URL`, system.subgraphs[name].url]),
        ),
      }),
      capturingLogger("gateway", "warn").logger,
      { directOperations },
    );
  };

  beforeAll(async () => {
    direct = await gatewayWith(true);
    reference = await gatewayWith(false);
    ada = await fixture.client.signUp({ displayName: "Ada" });
    bob = await fixture.client.signUp({ displayName: "Bob" });
  });
  afterAll(async () => {
    await direct?.stop();
    await reference?.stop();
  });

  async function post(url: string, body: unknown, token?: string): Promise<Answer> {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    const headers = Object.fromEntries(COMPARED_HEADERS.map((name) => [name, response.headers.get(name)]));
    // Outside production errors carry their stack, which names the code path: compared without it.
    const traced = text.includes('"stacktrace":');
    if (traced) delete headers["content-length"];
    return { status: response.status, headers, body: traced ? withoutStacktraces(text) : text };
  }

  /**
   * The request twice through the direct gateway (the first plans it) and once through the
   * reference: the second answer, the reference's, and how many the direct gateway answered itself.
   */
  async function both(body: unknown, token?: string) {
    await post(direct.url, body, token);
    const before = direct.directAnswers();
    const fetchesBefore = await subgraphFetches(direct);
    const mine = await post(direct.url, body, token);
    const fetches = (await subgraphFetches(direct)) - fetchesBefore;
    const answeredDirectly = direct.directAnswers() - before;
    const referenceBefore = await subgraphFetches(reference);
    const theirs = await post(reference.url, body, token);
    const referenceFetches = (await subgraphFetches(reference)) - referenceBefore;
    // Nothing runs twice: a result left to Apollo is answered as it is.
    expect({ body, fetches }).toEqual({ body, fetches: referenceFetches });
    return { mine, theirs, answeredDirectly };
  }

  /** The gateway's subgraph fetches so far, from its metrics. */
  async function subgraphFetches(gateway: RunningGateway): Promise<number> {
    const text = await (await fetch(gateway.metricsUrl)).text();
    let total = 0;
    for (const match of text.matchAll(/^hv_gateway_subgraph_fetches_total\{[^}]*\} (\d+)$/gm))
      total += Number(match[1]);
    return total;
  }

  it("should answer a seen query itself, with Apollo's status, headers and bytes", async () => {
    const user = await both({ query: USER, variables: { id: bob.userId } }, ada.accessToken);
    expect(user.answeredDirectly).toBe(1);
    expect(user.mine).toEqual(user.theirs);
    expect(user.mine.status).toBe(200);
    expect(JSON.parse(user.mine.body)).toEqual({
      data: { user: expect.objectContaining({ id: bob.userId, displayName: "Bob" }) },
    });
    const me = await both({ query: ME }, ada.accessToken);
    expect(me.answeredDirectly).toBe(1);
    expect(me.mine).toEqual(me.theirs);
    const matches = await both({ query: MATCHES, variables: { first: 20 } }, ada.accessToken);
    expect(matches.answeredDirectly).toBe(1);
    expect(matches.mine).toEqual(matches.theirs);
    expect(reference.directAnswers()).toBe(0);
  });

  it("should answer an anonymous caller itself, with the public cache policy Apollo gives it", async () => {
    const user = await both({ query: USER, variables: { id: bob.userId } });
    expect(user.answeredDirectly).toBe(1);
    expect(user.mine).toEqual(user.theirs);
    expect(user.mine.headers["cache-control"]).toMatch(/public/);
    const me = await both({ query: ME });
    expect(me.mine).toEqual(me.theirs);
  });

  it("should answer a seen mutation without sensitive budgets itself, as Apollo does", async () => {
    const rename = `mutation($b: String) { updateProfile(input: { bio: $b }) { id bio } }`;
    const answer = await both({ query: rename, variables: { b: "same" } }, ada.accessToken);
    expect(answer.answeredDirectly).toBe(1);
    expect(answer.mine).toEqual(answer.theirs);
    expect(answer.mine.headers["cache-control"]).toBe("no-store");
  });

  it("should leave errors to Apollo, with the same answer: variables, upstream, refused token", async () => {
    const cases: Array<{ body: unknown; token?: string }> = [
      // Variables the gateway refuses.
      { body: { query: USER, variables: {} }, token: ada.accessToken },
      { body: { query: USER, variables: { id: 5.5 } }, token: ada.accessToken },
      // The subgraph refuses the id.
      { body: { query: USER, variables: { id: "not-an-id" } }, token: ada.accessToken },
      // No token where one is needed: the subgraph's UNAUTHENTICATED becomes 401.
      { body: { query: MATCHES, variables: { first: 20 } } },
      // A token that does not verify: refused before anything runs.
      { body: { query: USER, variables: { id: bob.userId } }, token: "not-a-token" },
      // An operation name the document does not have.
      {
        body: { query: USER, operationName: "Other", variables: { id: bob.userId } },
        token: ada.accessToken,
      },
    ];
    for (const { body, token } of cases) {
      const answer = await both(body, token);
      expect(answer.mine.status === 200 && !answer.mine.body.includes('"errors"')).toBe(false);
      expect({ body, answer: answer.mine }).toEqual({ body, answer: answer.theirs });
      expect({ body, answeredDirectly: answer.answeredDirectly, text: answer.mine.body }).toEqual({
        body,
        answeredDirectly: 0,
        text: answer.mine.body,
      });
    }
  });

  it("should answer a seen query over WebSocket itself, as Apollo does", async () => {
    const run = async (
      gateway: RunningGateway,
      operation: { query: string; variables: Record<string, unknown> } = {
        query: USER,
        variables: { id: bob.userId },
      },
    ) => {
      const client = createClient({
        url: gateway.url.replace(/^http/, "ws"),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${ada.accessToken}` },
        retryAttempts: 0,
      });
      try {
        const once = () =>
          new Promise<unknown>((resolve, reject) => {
            const results: unknown[] = [];
            client.subscribe(operation, {
              next: (value) => results.push(value),
              error: reject,
              complete: () => resolve(results),
            });
          });
        await once();
        const before = gateway.directAnswers();
        const answer = await once();
        return { answer, answeredDirectly: gateway.directAnswers() - before };
      } finally {
        await client.dispose();
      }
    };
    const mine = await run(direct);
    const theirs = await run(reference);
    expect(mine.answeredDirectly).toBe(1);
    expect(JSON.stringify(mine.answer)).toBe(JSON.stringify(theirs.answer));
    // A send: its sendMessage budget spent by the socket's admission, so the plugin has nothing to do.
    const conversationId = await createGroup(fixture.client, fixture.dbs, ada, [bob], "direct");
    const send = {
      query: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { text sender { id } } }`,
      variables: { input: { conversationId, clientMessageId: "direct-1", text: "hi" } },
    };
    const sent = await run(direct, send);
    expect(sent.answeredDirectly).toBe(1);
    // The same client key: the stored message again, as Apollo answers it.
    const again = await run(reference, send);
    expect(JSON.stringify(sent.answer)).toBe(JSON.stringify(again.answer));
  });
});
