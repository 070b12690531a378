import { readFileSync } from "node:fs";
import path from "node:path";
import { SUPERGRAPH_PATH } from "@hv/gateway";
import { buildManifest } from "@hv/gateway/src/protection";
import { queryLimitProtection } from "@hv/gateway/src/protection/query-limits";
import { loadGatewayConfig } from "@hv/kit";
import { Supergraph } from "@apollo/federation-internals";
import {
  codes,
  DEFAULT_LIMITS,
  post,
  randomIpv6,
  startFakeSubgraph,
  startLightGateway,
  type FakeSubgraph,
  type LightGateway,
} from "./support";

const nested = (levels: number) => `query { thing { ${"child { ".repeat(levels)}id${" }".repeat(levels)} } }`;

describe("query limits at the gateway (real gateway, fake subgraph, default limits)", () => {
  let g: LightGateway;
  beforeAll(async () => {
    g = await startLightGateway({ GATEWAY_MAX_BODY_BYTES: "16384" });
  });
  afterAll(async () => {
    await g?.stop();
  });
  const ask = (query: string, extra: Record<string, string> = {}) =>
    post(g.url, { query }, { "x-forwarded-for": randomIpv6(), ...extra });
  const refusedBy = async (query: string, limit: string) => {
    const before = g.subgraph.requests.length;
    const reply = await ask(query);
    expect({
      status: reply.status,
      codes: codes(reply),
      limit: reply.body.errors?.[0]?.extensions?.limit,
    }).toEqual({
      status: 400,
      codes: ["GRAPHQL_VALIDATION_FAILED"],
      limit,
    });
    expect(reply.body.errors?.[0]?.message).toMatch(/too complex/);
    // Refused before planning: nothing reached the subgraph.
    expect(g.subgraph.requests.length).toBe(before);
  };

  it("should run an ordinary query within every limit", async () => {
    const reply = await ask(nested(5));
    expect(reply.status).toBe(200);
    expect(reply.body.errors).toBeUndefined();
  });

  it("should refuse a query nested deeper than GATEWAY_MAX_DEPTH (12), also through fragments", async () => {
    await refusedBy(nested(13), "maxDepth");
    const viaFragments = `query { thing { ...F0 } } ${Array.from({ length: 14 }, (_, i) => `fragment F${i} on Thing { id child { ${i < 13 ? `...F${i + 1}` : "id"} } }`).join(" ")}`;
    await refusedBy(viaFragments, "maxDepth");
  });

  it("should refuse more than GATEWAY_MAX_ALIASES (15) aliases", async () => {
    await refusedBy(
      `query { ${Array.from({ length: 16 }, (_, i) => `a${i}: echo(text: "x")`).join(" ")} }`,
      "maxAliases",
    );
  });

  it("should refuse more than GATEWAY_MAX_DIRECTIVES (30) directives", async () => {
    await refusedBy(`query { thing { ${"id @include(if: true) ".repeat(31)} } }`, "maxDirectives");
  });

  it("should refuse a query costing more than GATEWAY_MAX_COST (5000)", async () => {
    // Wide and 11 deep: within depth and aliases, far over the cost.
    // No aliases: the same field twice is valid GraphQL (merged on execution) and costs twice.
    const wide = (levels: number): string =>
      levels === 0 ? "id name" : `id name child { ${wide(levels - 1)} } child { ${wide(levels - 1)} }`;
    await refusedBy(`query { thing { ${wide(6)} } }`, "maxCost");
  });

  it("should refuse a document of more than GATEWAY_MAX_TOKENS (2000) tokens as a parse failure", async () => {
    const reply = await ask(`query { thing { ${"id ".repeat(2_100)} } }`);
    expect({ status: reply.status, codes: codes(reply) }).toEqual({
      status: 400,
      codes: ["GRAPHQL_PARSE_FAILED"],
    });
    expect(reply.body.errors?.[0]?.message).toMatch(/2000 tokens/);
  });

  it("should refuse a batch (an array body) even of harmless operations", async () => {
    const before = g.subgraph.requests.length;
    const reply = await post(g.url, [{ query: '{ echo(text: "a") }' }, { query: '{ echo(text: "b") }' }]);
    expect(reply.status).toBe(400);
    expect(JSON.stringify(reply.body)).toMatch(/batching/i);
    expect(g.subgraph.requests.length).toBe(before);
  });

  it("should refuse requests a browser could send cross-site without a preflight (CSRF prevention)", async () => {
    const simplePost = await fetch(g.url, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ query: '{ echo(text: "x") }' }),
    });
    expect(simplePost.status).toBe(400);
    expect(await simplePost.text()).toMatch(/CSRF/);
    const simpleGet = await fetch(`${g.url}?query=${encodeURIComponent('{ echo(text: "x") }')}`);
    expect(simpleGet.status).toBe(400);
    expect(await simpleGet.text()).toMatch(/CSRF/);
    // The same GET with a non-simple header is a normal query.
    const withHeader = await fetch(`${g.url}?query=${encodeURIComponent('{ echo(text: "x") }')}`, {
      headers: { "apollo-require-preflight": "true" },
    });
    expect(withHeader.status).toBe(200);
    expect(await withHeader.json()).toEqual({ data: { echo: "x" } });
  });

  it("should refuse a body over GATEWAY_MAX_BODY_BYTES with 413 PAYLOAD_TOO_LARGE", async () => {
    const reply = await post(g.url, {
      query: "query($t: String) { echo(text: $t) }",
      variables: { t: "x".repeat(17_000) },
    });
    expect({ status: reply.status, codes: codes(reply) }).toEqual({
      status: 413,
      codes: ["PAYLOAD_TOO_LARGE"],
    });
    const fits = await post(g.url, {
      query: "query($t: String) { echo(text: $t) }",
      variables: { t: "x".repeat(15_000) },
    });
    expect(fits.body).toEqual({ data: { echo: "x".repeat(15_000) } });
  });

  it("should answer a body that is not JSON with a GraphQL-shaped 400", async () => {
    const reply = await post(g.url, "{ not json");
    expect({ status: reply.status, codes: codes(reply) }).toEqual({ status: 400, codes: ["BAD_REQUEST"] });
  });
});

describe("timeouts to subgraphs and masked errors", () => {
  let slow: FakeSubgraph;
  let g: LightGateway;
  let production: LightGateway;
  beforeAll(async () => {
    slow = await startFakeSubgraph({ slowMs: 2_000 });
    g = await startLightGateway({ GATEWAY_SUBGRAPH_TIMEOUT_MS: "300" }, { subgraph: slow });
    production = await startLightGateway(
      { GATEWAY_SUBGRAPH_TIMEOUT_MS: "300", NODE_ENV: "production" },
      { subgraph: slow },
    );
  });
  afterAll(async () => {
    await g?.stop();
    await production?.stop();
    await slow?.close();
  });

  it("should end a subgraph fetch that outlives GATEWAY_SUBGRAPH_TIMEOUT_MS with UPSTREAM_TIMEOUT", async () => {
    const reply = await post(g.url, { query: "{ slowPing }" });
    expect(reply.status).toBe(200);
    expect(reply.body.data).toEqual({ slowPing: null });
    expect(codes(reply)).toEqual(["UPSTREAM_TIMEOUT"]);
    expect(reply.body.errors?.[0]?.message).toMatch(/did not answer in time/);
    // Production says the same: the code is catalogued, nothing internal in it.
    const masked = await post(production.url, { query: "{ slowPing }" });
    expect(codes(masked)).toEqual(["UPSTREAM_TIMEOUT"]);
    expect(JSON.stringify(masked.body)).not.toMatch(/127\.0\.0\.1|serviceName|stacktrace/);
  });

  it("should mask a subgraph's internal error in production, and show it in development", async () => {
    const dev = await post(g.url, { query: "{ fail }" });
    expect(JSON.stringify(dev.body)).toMatch(/ECONNREFUSED/);
    const masked = await post(production.url, { query: "{ fail }" });
    expect(masked.body.errors).toEqual([
      { message: "Internal server error", path: ["fail"], extensions: { code: "INTERNAL_SERVER_ERROR" } },
    ]);
    expect(JSON.stringify(masked.body)).not.toMatch(/hunter2|10\.1\.2\.3/);
  });

  it("should mask Armor's refusals of field suggestions (no schema probing by typo)", async () => {
    const reply = await post(production.url, { query: "{ thng { id } }" });
    expect(codes(reply)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(reply.body.errors?.[0]?.message).not.toMatch(/Did you mean/);
  });
});

describe("the app's operations and the limits", () => {
  it("should pass every operation in operations/ through every default limit", () => {
    const config = loadGatewayConfig({ ...DEFAULT_LIMITS });
    const limits = queryLimitProtection(config.protection.queryLimits);
    const api = Supergraph.build(readFileSync(SUPERGRAPH_PATH, "utf8")).apiSchema().toGraphQLJSSchema();
    const manifest = buildManifest(path.join(__dirname, "..", "..", "..", "operations"));
    expect(manifest.operations.length).toBeGreaterThan(40);
    const refused = manifest.operations
      .map((operation) => ({ name: operation.name, result: limits.check(api, operation.body) }))
      .filter(({ result }) => Array.isArray(result))
      .map(({ name, result }) => ({ name, errors: (result as Error[]).map((e) => e.message) }));
    expect(refused).toEqual([]);
  });

  it("should really refuse with these limits (the check above is not vacuous)", () => {
    const config = loadGatewayConfig({ ...DEFAULT_LIMITS, GATEWAY_MAX_DEPTH: "2" });
    const limits = queryLimitProtection(config.protection.queryLimits);
    const api = Supergraph.build(readFileSync(SUPERGRAPH_PATH, "utf8")).apiSchema().toGraphQLJSSchema();
    const deep = buildManifest(path.join(__dirname, "..", "..", "..", "operations")).operations.find(
      (o) => o.name === "ChatMessages",
    );
    expect(Array.isArray(limits.check(api, deep?.body ?? ""))).toBe(true);
  });
});
