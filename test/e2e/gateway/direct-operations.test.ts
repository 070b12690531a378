import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { sha256Hex, type PersistedQueryManifest } from "@hv/gateway/src/protection";
import { loadGatewayConfig } from "@hv/kit";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { useSystem } from "../../support/fixture";
import { capturingLogger } from "../../support/log-capture";
import { subgraphUrlEnv, testEnv } from "../../support/system";
import type { SignedIn } from "../../support/users-client";
import { createGroup } from "./harness";

const MATCHES = readFileSync(path.join(__dirname, "../../../operations/discovery/Matches.graphql"), "utf8");
const USER = `query User($id: ID!) { user(id: $id) { id displayName age bio interests } }`;
const ME = `{ me { id displayName } }`;
const SEND = `mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { text sender { id } } }`;
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

const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

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

  // The app's operations in safelist mode: these two (the manifest's ids are their SHA-256).
  const manifest: PersistedQueryManifest = {
    format: "apollo-persisted-query-manifest",
    version: 1,
    operations: [
      { id: sha256Hex(USER), name: "User", type: "query", body: USER },
      { id: sha256Hex(MATCHES), name: "Matches", type: "query", body: MATCHES },
      { id: sha256Hex(SEND), name: "Send", type: "mutation", body: SEND },
    ],
  };
  let safelisted: RunningGateway;
  let safelistReference: RunningGateway;

  const gatewayWith = (directOperations: boolean, safelist = false) => {
    const { system } = fixture;
    return startGateway(
      loadGatewayConfig({
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl }),
        ...subgraphUrlEnv(system.subgraphs),
        ...(safelist ? { GATEWAY_OPERATIONS: "safelist" } : {}),
      }),
      capturingLogger("gateway", "warn").logger,
      safelist ? { directOperations, safelistManifest: manifest } : { directOperations },
    );
  };

  beforeAll(async () => {
    direct = await gatewayWith(true);
    reference = await gatewayWith(false);
    safelisted = await gatewayWith(true, true);
    safelistReference = await gatewayWith(false, true);
    ada = await fixture.client.signUp({ displayName: "Ada" });
    bob = await fixture.client.signUp({ displayName: "Bob" });
  });
  afterAll(async () => {
    await direct?.stop();
    await reference?.stop();
    await safelisted?.stop();
    await safelistReference?.stop();
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
  async function both(body: unknown, token?: string, pair = { mine: direct, theirs: reference }) {
    await post(pair.mine.url, body, token);
    const before = pair.mine.directAnswers();
    const fetchesBefore = await subgraphFetches(pair.mine);
    const mine = await post(pair.mine.url, body, token);
    const fetches = (await subgraphFetches(pair.mine)) - fetchesBefore;
    const answeredDirectly = pair.mine.directAnswers() - before;
    const referenceBefore = await subgraphFetches(pair.theirs);
    const theirs = await post(pair.theirs.url, body, token);
    const referenceFetches = (await subgraphFetches(pair.theirs)) - referenceBefore;
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

  it("should answer a safelisted hash itself, and refuse one outside the safelist as Apollo does", async () => {
    const safelist = { mine: safelisted, theirs: safelistReference };
    const byHash = await both(
      { extensions: persisted(sha256Hex(USER)), variables: { id: bob.userId } },
      ada.accessToken,
      safelist,
    );
    expect(byHash.answeredDirectly).toBe(1);
    expect(byHash.mine).toEqual(byHash.theirs);
    expect(JSON.parse(byHash.mine.body)).toEqual({
      data: { user: expect.objectContaining({ id: bob.userId }) },
    });
    const withText = await both(
      { query: MATCHES, extensions: persisted(sha256Hex(MATCHES)), variables: { first: 20 } },
      ada.accessToken,
      safelist,
    );
    expect(withText.answeredDirectly).toBe(1);
    expect(withText.mine).toEqual(withText.theirs);
    // A send by its hash alone: once learned, the admission spends its sendMessage budget.
    const conversationId = await createGroup(fixture.client, fixture.dbs, ada, [bob], "safelisted");
    const input = { conversationId, clientMessageId: "safelisted-1", text: "hi" };
    const sent = await both(
      { extensions: persisted(sha256Hex(SEND)), variables: { input } },
      ada.accessToken,
      safelist,
    );
    expect(sent.answeredDirectly).toBe(1);
    expect(sent.mine).toEqual(sent.theirs);
    expect(sent.mine.body).toContain('"text":"hi"');
    const refusals = [
      { extensions: persisted(sha256Hex(ME)) },
      { query: ME, extensions: persisted(sha256Hex(USER)), variables: { id: bob.userId } },
      { extensions: { persistedQuery: { version: 2, sha256Hash: sha256Hex(USER) } } },
    ];
    for (const body of refusals) {
      const refused = await both(body, ada.accessToken, safelist);
      expect({ body, answeredDirectly: refused.answeredDirectly }).toEqual({ body, answeredDirectly: 0 });
      expect(refused.mine.status).not.toBe(200);
      expect({ body, answer: refused.mine }).toEqual({ body, answer: refused.theirs });
    }
  });

  it("should answer a registered APQ hash itself, and leave PERSISTED_QUERY_NOT_FOUND to Apollo", async () => {
    // A text of this run only: its hash is in no replica's Redis yet.
    const query = `${USER} # ${randomUUID()}`;
    const hash = sha256Hex(query);
    const unknown = await both({ extensions: persisted(hash), variables: { id: bob.userId } });
    expect(unknown.answeredDirectly).toBe(0);
    expect(unknown.mine).toEqual(unknown.theirs);
    expect(unknown.mine.body).toContain("PERSISTED_QUERY_NOT_FOUND");
    const mismatch = await both({ query, extensions: persisted(sha256Hex(ME)) }, ada.accessToken);
    expect(mismatch.answeredDirectly).toBe(0);
    expect(mismatch.mine.status).toBe(400);
    expect(mismatch.mine).toEqual(mismatch.theirs);
    // Planned by its text; then sent with its hash, answered directly and registered as Apollo does.
    await post(direct.url, { query, variables: { id: bob.userId } }, ada.accessToken);
    const before = direct.directAnswers();
    const registered = await post(
      direct.url,
      { query, extensions: persisted(hash), variables: { id: bob.userId } },
      ada.accessToken,
    );
    expect(direct.directAnswers() - before).toBe(1);
    expect(JSON.parse(registered.body)).toEqual({
      data: { user: expect.objectContaining({ id: bob.userId }) },
    });
    const found = await whenRegistered(reference, {
      extensions: persisted(hash),
      variables: { id: bob.userId },
    });
    expect(found.body).toBe(registered.body);
    const byHash = await both(
      { extensions: persisted(hash), variables: { id: bob.userId } },
      ada.accessToken,
    );
    expect(byHash.answeredDirectly).toBe(1);
    expect(byHash.mine).toEqual(byHash.theirs);
    // A send by its hash alone: Apollo's (it would read Redis again for errors left to it, and might
    // find nothing there, so a mutation run directly could run twice).
    const conversationId = await createGroup(fixture.client, fixture.dbs, ada, [bob], "by hash");
    const send = `${SEND} # ${randomUUID()}`;
    const input = { conversationId, clientMessageId: "hash-1", text: "hi" };
    await post(
      reference.url,
      { query: send, extensions: persisted(sha256Hex(send)), variables: { input } },
      ada.accessToken,
    );
    await whenRegistered(direct, { extensions: persisted(sha256Hex(send)), variables: { input } });
    const sent = await both(
      { extensions: persisted(sha256Hex(send)), variables: { input } },
      ada.accessToken,
    );
    expect(sent.answeredDirectly).toBe(0);
    expect(sent.mine).toEqual(sent.theirs);
    expect(sent.mine.body).toContain('"text":"hi"');
  });

  /** `body` (a hash alone) posted to `gateway` until Apollo's registration (after its answer) is found. */
  async function whenRegistered(gateway: RunningGateway, body: unknown): Promise<Answer> {
    let found = await post(gateway.url, body, ada.accessToken);
    for (let attempt = 0; attempt < 100 && !found.body.includes('"data"'); attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      found = await post(gateway.url, body, ada.accessToken);
    }
    return found;
  }

  it("should answer a seen query over WebSocket itself, as Apollo does", async () => {
    const run = async (
      gateway: RunningGateway,
      operation: {
        query: string;
        variables: Record<string, unknown>;
        extensions?: Record<string, unknown>;
      } = {
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
    // By its persisted hash alone (graphql-ws clients send "" as its text), registered over HTTP first.
    const query = `${USER} # ${randomUUID()}`;
    await post(direct.url, { query, extensions: persisted(sha256Hex(query)), variables: { id: bob.userId } });
    const byHash = { query: "", extensions: persisted(sha256Hex(query)), variables: { id: bob.userId } };
    const mineByHash = await run(direct, byHash);
    expect(mineByHash.answeredDirectly).toBe(1);
    const theirsByHash = await run(reference, byHash);
    expect(JSON.stringify(mineByHash.answer)).toBe(JSON.stringify(theirsByHash.answer));
    expect(JSON.stringify(mineByHash.answer)).toContain(bob.userId);
  });
});
