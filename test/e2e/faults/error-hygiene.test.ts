import http from "node:http";
import type { AddressInfo } from "node:net";
import { start as startGateway, type RunningGateway } from "@hv/gateway";
import { CLIENT_EXTENSIONS, loadGatewayConfig } from "@hv/kit";
import { capturingLogger } from "../../support/log-capture";
import { freePort } from "../../support/ports";
import {
  graphqlRequest,
  startSystem,
  testEnv,
  type GraphQLResponse,
  type RunningSystem,
} from "../../support/system";
import { UsersClient, type SignedIn } from "../../support/users-client";
import { phone, Subscription } from "../gateway/harness";

const UPDATE_GENDER = `mutation($g: Gender) { updateProfile(input: { gender: $g }) { id } }`;
const UPDATE_NAME = `mutation($name: String) { updateProfile(input: { displayName: $name }) { id } }`;
const WITH_PHOTOS = `query($id: ID!) { user(id: $id) { id displayName photos { id } } }`;

/**
 * What a phone sees of the gateway's and the subgraphs' errors: subgraphs run in development
 * (stack traces in their answers), one gateway in production and one in development, and one
 * production gateway whose media subgraph refuses connections or answers 503 from a proxy.
 */
describe("errors a phone sees through the gateway", () => {
  let system: RunningSystem;
  let production: RunningGateway;
  let refusedMedia: RunningGateway;
  let proxied503: RunningGateway;
  let proxy: http.Server;
  let ada: SignedIn;
  let deadPort: number;

  const gatewayWith = async (overrides: Record<string, string>) =>
    startGateway(
      loadGatewayConfig({
        ...testEnv({ AUTH_JWKS_URL: system.jwksUrl }),
        USERS_URL: system.subgraphs.users.url,
        DISCOVERY_URL: system.subgraphs.discovery.url,
        CHAT_URL: system.subgraphs.chat.url,
        MEDIA_URL: system.subgraphs.media.url,
        ...overrides,
      }),
      capturingLogger("gateway-under-test").logger,
    );

  beforeAll(async () => {
    system = await startSystem({ NODE_ENV: "development" });
    deadPort = await freePort();
    // A load balancer with no instance behind it: 503 and an HTML page naming its upstream.
    proxy = http.createServer((_req, res) => {
      res.statusCode = 503;
      res.setHeader("content-type", "text/html");
      res.end(`<html><body>no healthy upstream 10.1.2.3:4004</body></html>`);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    production = await gatewayWith({ NODE_ENV: "production" });
    refusedMedia = await gatewayWith({
      NODE_ENV: "production",
      MEDIA_URL: `http://127.0.0.1:${deadPort}/graphql`,
    });
    proxied503 = await gatewayWith({
      NODE_ENV: "production",
      MEDIA_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/graphql`,
    });
    ada = await new UsersClient(system.gatewayUrl).signUp({ displayName: "Ada" });
  });
  afterAll(async () => {
    await Promise.all([production, refusedMedia, proxied503].map((g) => g?.stop()));
    await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
    await system?.stop();
  });

  const asAda = (url: string, query: string, variables: Record<string, unknown>) =>
    graphqlRequest(url, query, variables, { authorization: `Bearer ${ada.accessToken}` });
  const extensionKeys = (response: GraphQLResponse) =>
    (response.body.errors ?? []).flatMap((e) => Object.keys(e.extensions ?? {}));

  it("should keep only client-visible extensions of a development subgraph's error in production", async () => {
    const tooLong = "x".repeat(10_000);
    // The subgraph really runs in development: the development gateway passes its stack trace on.
    const dev = await asAda(system.gatewayUrl, UPDATE_NAME, { name: tooLong });
    expect(dev.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(extensionKeys(dev)).toContain("stacktrace");

    const prod = await asAda(production.url, UPDATE_NAME, { name: tooLong });
    expect(prod.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(prod.body.errors?.[0]?.extensions?.field).toBe("input.displayName");
    for (const key of extensionKeys(prod)) expect(CLIENT_EXTENSIONS).toContain(key);
    expect(JSON.stringify(prod.body)).not.toMatch(/stacktrace|serviceName|exception|\.ts:\d+/);
  });

  it("should hide graphql-js's enum value suggestions in production, in documents and in variables", async () => {
    const literal = `mutation { updateProfile(input: { gender: WOMEN }) { id } }`;
    const devLiteral = await asAda(system.gatewayUrl, literal, {});
    expect(devLiteral.body.errors?.[0]?.message).toMatch(/Did you mean the enum value "WOMAN"/);
    const prodLiteral = await asAda(production.url, literal, {});
    expect(prodLiteral.body.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(prodLiteral.body.errors?.[0]?.message).toMatch(/WOMEN/);
    expect(JSON.stringify(prodLiteral.body)).not.toMatch(/WOMAN|Did you mean/);

    const devVariable = await asAda(system.gatewayUrl, UPDATE_GENDER, { g: "WOMEN" });
    expect(devVariable.body.errors?.[0]?.message).toMatch(/Did you mean the enum value "WOMAN"/);
    const prodVariable = await asAda(production.url, UPDATE_GENDER, { g: "WOMEN" });
    expect(prodVariable.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(JSON.stringify(prodVariable.body)).not.toMatch(/WOMAN|Did you mean/);
  });

  it("should hide field suggestions from subscriptions over WebSocket in production", async () => {
    const p = phone(production.url.replace(/^http/, "ws"), { authorization: `Bearer ${ada.accessToken}` });
    try {
      const typo = new Subscription(p.client, `subscription { myChatEvent { kind } }`);
      const typoError = (await typo.ending()) as Array<{
        message: string;
        extensions?: Record<string, unknown>;
      }>;
      expect(typoError[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
      expect(typoError[0]?.message).toMatch(/myChatEvent/);
      expect(JSON.stringify(typoError)).not.toMatch(/Did you mean|myChatEvents/);
    } finally {
      await p.dispose();
    }
  });

  it("should answer UPSTREAM_UNAVAILABLE, without the subgraph's address or the socket error, when a subgraph refuses connections", async () => {
    const response = await asAda(refusedMedia.url, WITH_PHOTOS, { id: ada.userId });
    expect(response.status).toBe(200);
    const codes = (response.body.errors ?? []).map((e) => e.extensions?.code);
    expect(codes).toContain("UPSTREAM_UNAVAILABLE");
    expect(codes.every((code) => code === "UPSTREAM_UNAVAILABLE")).toBe(true);
    const text = JSON.stringify(response.body);
    expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|connect /);
    expect(text).not.toContain(String(deadPort));
  });

  it("should answer UPSTREAM_UNAVAILABLE, without the proxy's page, when a subgraph's proxy answers 503", async () => {
    const response = await asAda(proxied503.url, WITH_PHOTOS, { id: ada.userId });
    const codes = (response.body.errors ?? []).map((e) => e.extensions?.code);
    expect(codes).toContain("UPSTREAM_UNAVAILABLE");
    expect(JSON.stringify(response.body)).not.toMatch(/10\.1\.2\.3|healthy|html|503/);
  });
});
