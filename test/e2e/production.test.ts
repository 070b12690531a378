import { graphqlRequest, startSystem, type RunningSystem } from "../support/system";

const INTROSPECTION = "{ __schema { queryType { name } } }";

async function landingPage(gatewayUrl: string) {
  const response = await fetch(gatewayUrl, { headers: { accept: "text/html" } });
  return { status: response.status, html: await response.text() };
}

describe("the gateway by NODE_ENV", () => {
  describe("in development", () => {
    let system: RunningSystem;
    beforeAll(async () => {
      system = await startSystem({ NODE_ENV: "development" });
    });
    afterAll(() => system?.stop());

    it("should serve the Apollo Sandbox landing page and allow introspection", async () => {
      const page = await landingPage(system.gatewayUrl);
      expect(page.status).toBe(200);
      expect(page.html).toMatch(/sandbox/i);
      const introspection = await graphqlRequest(system.gatewayUrl, INTROSPECTION);
      expect(introspection.body.data).toEqual({ __schema: { queryType: { name: "Query" } } });
    });
  });

  describe("in production", () => {
    let system: RunningSystem;
    beforeAll(async () => {
      // Production refuses to start without its secrets: give it some.
      system = await startSystem({
        NODE_ENV: "production",
        MEDIA_GRANT_SECRET: "production-test-grant-secret-0123456789abcdef",
        MEDIA_URL_SECRET: "production-test-url-secret-0123456789abcdef",
        MEDIA_PUBLIC_URL: "http://127.0.0.1:1/media",
      });
    });
    afterAll(() => system?.stop());

    it("should refuse introspection and serve no landing page", async () => {
      const introspection = await graphqlRequest(system.gatewayUrl, INTROSPECTION);
      expect(introspection.body.data).toBeUndefined();
      expect(introspection.body.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
      const page = await landingPage(system.gatewayUrl);
      expect(page.html).not.toMatch(/sandbox/i);
      expect(page.status).not.toBe(200);
    });
  });
});
