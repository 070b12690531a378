import { parseCacheControlHeader } from "@apollo/gateway/dist/datasources/parseCacheControlHeader";
import { GraphQLDataSourceRequestKind } from "@apollo/gateway/dist/datasources/types";
import {
  accessTokenDigest,
  createLogger,
  REVOCATION_ASSERTION_HEADER,
  revocationAssertions,
  type AdmissionOutcome,
} from "@hv/kit";
import {
  cacheHintOf,
  SubgraphDataSource,
  vouchForRevocation,
  type GatewayContext,
} from "./subgraph-data-source";
import { FlatHeaders } from "./subgraph-fetcher";

/** The hint @apollo/gateway's RemoteGraphQLDataSource derives from a subgraph's Cache-Control. */
function apolloHint(header: string | null) {
  const parsed = parseCacheControlHeader(header ?? undefined);
  const hint: { maxAge: number; scope?: "PUBLIC" | "PRIVATE" } = { maxAge: 0 };
  const maxAge = parsed["max-age"];
  if (typeof maxAge === "string" && /^[0-9]+$/.test(maxAge)) hint.maxAge = Number(maxAge);
  if (parsed.private === true) hint.scope = "PRIVATE";
  if (parsed.public === true) hint.scope = "PUBLIC";
  return hint;
}

describe("the gateway's subgraph fetches", () => {
  it("should read a subgraph's Cache-Control into the same hint as @apollo/gateway", () => {
    const headers = [
      null,
      "",
      "no-store",
      "max-age=30, public",
      "max-age=30, private",
      'max-age="15", private',
      " max-age = 10 , public ",
      "public, private, max-age=5",
      "private, public",
      "max-age=abc, public",
      "max-age=10, max-age=x",
      "private=foo",
    ];
    expect(headers.map(cacheHintOf)).toEqual(headers.map(apolloHint));
  });

  it("should read, join and write headers as the fetch API's Headers does", () => {
    const headers = new FlatHeaders({ "content-type": "application/json", "set-cookie": ["a=1", "b=2"] });
    headers.append("X-Request-Id", "abc");
    headers.append("x-request-id", "def");
    headers.set("Authorization", "Bearer t");
    expect({
      type: headers.get("Content-Type"),
      cookies: headers.get("set-cookie"),
      id: headers.get("x-request-id"),
      missing: headers.get("cache-control"),
      has: headers.has("AUTHORIZATION"),
    }).toEqual({
      type: "application/json",
      cookies: "a=1, b=2",
      id: "abc, def",
      missing: null,
      has: true,
    });
    const expected = new Headers({ "content-type": "application/json", "set-cookie": "a=1" });
    expected.append("set-cookie", "b=2");
    expected.append("X-Request-Id", "abc");
    expected.append("x-request-id", "def");
    expected.set("Authorization", "Bearer t");
    // The fetch API lists each Set-Cookie apart; every other header reads the same, in the same order.
    const withoutCookies = (entries: Iterable<[string, string]>) =>
      [...entries].filter(([name]) => name !== "set-cookie");
    expect(withoutCookies(headers)).toEqual(withoutCookies(expected));
    expect(headers.toRecord()).toEqual({
      "content-type": "application/json",
      "set-cookie": "a=1, b=2",
      "x-request-id": "abc, def",
      authorization: "Bearer t",
    });
    headers.delete("Set-Cookie");
    expect([...headers.keys()]).toEqual(["authorization", "content-type", "x-request-id"]);
  });
});

describe("the gateway's revocation assertions", () => {
  const assertions = revocationAssertions("gateway-unit-test-secret-0123456789abcdef");
  const digest = accessTokenDigest("a.b.c");
  const contextOf = (overrides: Partial<GatewayContext>): GatewayContext => ({
    requestId: "request-1",
    logger: createLogger({ service: "gateway", level: "silent" }),
    viewer: { userId: "u1", sessionId: "s1", role: "USER" },
    clientIp: "203.0.113.1",
    authorization: "Bearer a.b.c",
    ...overrides,
  });

  it("should vouch at once when the admission answered before the request ran", () => {
    const context = contextOf({});
    vouchForRevocation(context, assertions);
    expect(typeof context.revocationAssertion).toBe("string");
    expect(assertions.holds(context.revocationAssertion as string, digest, Date.now())).toBe(true);
  });

  it("should vouch for a request running before its admission only once it admits", async () => {
    const outcomes: AdmissionOutcome[] = ["admitted", "again", { status: 429, errors: [] }];
    const vouched = await Promise.all(
      outcomes.map(async (outcome) => {
        const context = contextOf({ admission: Promise.resolve(outcome) });
        vouchForRevocation(context, assertions);
        const assertion = await context.revocationAssertion;
        return assertion !== undefined && assertions.holds(assertion, digest, Date.now());
      }),
    );
    expect(vouched).toEqual([true, false, false]);
  });

  it("should vouch for no anonymous request or one without a bearer token", () => {
    const contexts = [
      contextOf({ viewer: null, authorization: null }),
      contextOf({ authorization: null }),
      contextOf({ authorization: "Basic dXNlcjpwYXNz" }),
    ];
    for (const context of contexts) vouchForRevocation(context, assertions);
    expect(contexts.map((context) => context.revocationAssertion)).toEqual([undefined, undefined, undefined]);
  });

  it("should build a fetch while its admission is asked, and send it once that answers, with the assertion only if it admits", async () => {
    for (const answer of ["v1.1.signature", undefined]) {
      const sent: Array<{ url: string; headers: Record<string, string>; body: unknown }> = [];
      const source = new SubgraphDataSource({
        url: "http://users.test/graphql",
        fetcher: (async (url: string, init: { headers: Record<string, string>; body: string }) => {
          sent.push({ url, headers: init.headers, body: JSON.parse(init.body) as unknown });
          return new Response(JSON.stringify({ data: { me: { id: "u1" } } }), {
            headers: { "content-type": "application/json" },
          });
        }) as unknown as SubgraphDataSource["fetcher"],
      });
      let answerAdmission!: (assertion: string | undefined) => void;
      const context = contextOf({
        revocationAssertion: new Promise((resolve) => (answerAdmission = resolve)),
      });
      const request = { query: "{ me { id } }", variables: { a: 1 } };
      const processing = source.process({
        kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
        request,
        context,
        incomingRequestContext: {} as never,
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect((request as { http?: { headers: FlatHeaders } }).http?.headers.get("authorization")).toBe(
        "Bearer a.b.c",
      );
      expect(sent).toEqual([]);
      answerAdmission(answer);
      expect((await processing).data).toEqual({ me: { id: "u1" } });
      expect(sent).toEqual([
        {
          url: "http://users.test/graphql",
          headers: {
            "content-type": "application/json",
            "x-request-id": "request-1",
            authorization: "Bearer a.b.c",
            "x-forwarded-for": "203.0.113.1",
            ...(answer === undefined ? {} : { [REVOCATION_ASSERTION_HEADER]: answer }),
          },
          body: { query: "{ me { id } }", variables: { a: 1 } },
        },
      ]);
    }
  });
});
