import { randomUUID } from "node:crypto";
import {
  createAccessTokenIssuer,
  generateSigningKeyJwk,
  Redis,
  SessionRevocations,
  SUBGRAPH_NAMES,
  type SubgraphName,
  type Viewer,
} from "@hv/kit";
import { seedPerson, testDatabases, type TestDatabases } from "../support/seed";
import { graphqlRequest, startSystem, type RunningSystem } from "../support/system";

const ACROSS_ALL_SUBGRAPHS = /* GraphQL */ `
  query Everything($userId: ID!, $conversationId: ID!) {
    user(id: $userId) {
      displayName
      isDiscoverable
      photos {
        kind
      }
    }
    conversation(id: $conversationId) {
      memberCount
    }
  }
`;
const SUBGRAPHS = SUBGRAPH_NAMES;
const encode = (json: unknown) => Buffer.from(JSON.stringify(json)).toString("base64url");

describe("access tokens across the gateway and the subgraphs", () => {
  let system: RunningSystem;
  let dbs: TestDatabases;
  let person: Awaited<ReturnType<typeof seedPerson>>;

  beforeAll(async () => {
    dbs = testDatabases();
    system = await startSystem();
    person = await seedPerson(dbs, "Katherine");
  });
  afterAll(async () => {
    await system?.stop();
    await dbs?.close();
  });

  const viewer = (): Viewer => ({ userId: person.user.id, sessionId: randomUUID(), role: "USER" });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const variables = () => ({ userId: person.user.id, conversationId: person.conversation.id });
  const requestLines = (service: SubgraphName | "gateway", requestId: string) =>
    system.logs[service].filter((line) => line.requestId === requestId && line.msg === "graphql request");

  async function throughGateway(headers: Record<string, string>) {
    const requestId = `auth-${randomUUID()}`;
    const response = await graphqlRequest(system.gatewayUrl, ACROSS_ALL_SUBGRAPHS, variables(), {
      "x-request-id": requestId,
      ...headers,
    });
    return { requestId, response };
  }

  it("should publish the users subgraph's public signing keys at /.well-known/jwks.json", async () => {
    const response = await fetch(system.jwksUrl);
    expect(response.status).toBe(200);
    const jwks = (await response.json()) as { keys: Array<Record<string, unknown>> };
    expect(jwks).toEqual(system.accessTokens.publicJwks());
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({
      kty: "EC",
      crv: "P-256",
      alg: "ES256",
      use: "sig",
      kid: "test-system",
    });
    expect(jwks.keys[0]).not.toHaveProperty("d");
  });

  it("should serve a signed-in request, with every subgraph seeing the same viewer and client address", async () => {
    const signedIn = viewer();
    const { token } = await system.accessTokens.issue(signedIn);

    const { requestId, response } = await throughGateway({
      ...bearer(token),
      "x-forwarded-for": "203.0.113.7",
    });

    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      data: {
        user: { displayName: "Katherine", isDiscoverable: true, photos: [{ kind: "IMAGE" }] },
        conversation: { memberCount: 2 },
      },
    });
    for (const service of ["gateway", ...SUBGRAPHS] as const) {
      const seen = requestLines(service, requestId).map(({ userId, clientIp }) => ({ userId, clientIp }));
      expect({ service, seen }).toEqual({
        service,
        seen: [{ userId: signedIn.userId, clientIp: "203.0.113.7" }],
      });
    }
  });

  it("should serve an anonymous request without a token", async () => {
    const { requestId, response } = await throughGateway({});

    // UNAUTHENTICATED is answered with 401 whatever its cause, a missing token included; the
    // fields anonymous callers may read are still there.
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
    expect(response.body.data?.user).toEqual(expect.objectContaining({ displayName: "Katherine" }));
    // Every subgraph serves the anonymous caller; only Chat's members-only conversation says no.
    expect(
      response.body.errors?.map((error) => ({ path: error.path, code: error.extensions?.code })),
    ).toEqual([{ path: ["conversation"], code: "UNAUTHENTICATED" }]);
    for (const service of ["gateway", ...SUBGRAPHS] as const) {
      expect({ service, userIds: requestLines(service, requestId).map((line) => line.userId) }).toEqual({
        service,
        userIds: [null],
      });
    }
  });

  it("should refuse a bad token at the gateway with 401 UNAUTHENTICATED before any subgraph sees it", async () => {
    const { requestId, response } = await throughGateway(bearer("not-a-token"));

    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
    expect(response.body.data).toBeUndefined();
    expect(response.body.errors).toEqual([
      expect.objectContaining({
        extensions: expect.objectContaining({ code: "UNAUTHENTICATED", reason: "invalid" }),
      }),
    ]);
    expect(response.body.errors?.[0]?.extensions).not.toHaveProperty("http");
    for (const service of SUBGRAPHS)
      expect({ service, lines: requestLines(service, requestId) }).toEqual({ service, lines: [] });
  });

  it("should refuse an expired token with reason expired and a revoked one with reason revoked", async () => {
    const lastHour = createAccessTokenIssuer({
      keys: system.signingKeys,
      issuer: "haiyvee",
      audience: "haiyvee-api",
      ttlSeconds: 900,
      clock: () => new Date(Date.now() - 3600_000),
    });
    const expired = await throughGateway(bearer((await lastHour.issue(viewer())).token));
    expect(expired.response.status).toBe(401);
    expect(expired.response.body.errors?.[0]?.extensions).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "expired",
    });
    expect(expired.response.body.errors?.[0]?.message).toMatch(/refresh/);

    const loggedOut = viewer();
    const { token } = await system.accessTokens.issue(loggedOut);
    expect((await throughGateway(bearer(token))).response.status).toBe(200);
    const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    try {
      await new SessionRevocations(redis).revokeSession(loggedOut.sessionId);
    } finally {
      await redis.quit();
    }
    const revoked = await throughGateway(bearer(token));
    expect(revoked.response.status).toBe(401);
    expect(revoked.response.body.errors?.[0]?.extensions).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "revoked",
    });
    // Each subgraph checks revocations too: the token is refused even when sent around the gateway.
    const direct = await graphqlRequest(system.subgraphs.chat.url, "{ __typename }", {}, bearer(token));
    expect(direct.status).toBe(401);
  });

  it("should give nothing to a request that reaches a subgraph directly with a forged identity header", async () => {
    for (const service of SUBGRAPHS) {
      const requestId = `direct-${randomUUID()}`;
      const response = await graphqlRequest(
        system.subgraphs[service].url,
        "{ __typename }",
        {},
        {
          "x-request-id": requestId,
          "x-user-id": person.user.id,
          "x-viewer": JSON.stringify({ userId: person.user.id, role: "MODERATOR" }),
        },
      );
      expect(response.status).toBe(200);
      expect({ service, userIds: requestLines(service, requestId).map((line) => line.userId) }).toEqual({
        service,
        userIds: [null],
      });
    }
  });

  it("should refuse forged tokens sent straight to a subgraph with 401", async () => {
    const impostorKey = { ...generateSigningKeyJwk("x"), kid: "test-system" }; // the real kid, another key
    const forgers = [
      createAccessTokenIssuer({
        keys: [generateSigningKeyJwk("unknown")],
        issuer: "haiyvee",
        audience: "haiyvee-api",
        ttlSeconds: 900,
      }),
      createAccessTokenIssuer({
        keys: [impostorKey],
        issuer: "haiyvee",
        audience: "haiyvee-api",
        ttlSeconds: 900,
      }),
    ];
    const unsigned = [
      encode({ alg: "none", typ: "at+jwt" }),
      encode({
        sub: person.user.id,
        sid: randomUUID(),
        role: "MODERATOR",
        iss: "haiyvee",
        aud: "haiyvee-api",
        jti: randomUUID(),
        // Valid times, so the token is refused for its algorithm and not merely for missing claims.
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 600,
      }),
      "",
    ].join(".");
    const forged = [
      ...(await Promise.all(forgers.map(async (forger) => (await forger.issue(viewer())).token))),
      unsigned,
    ];

    for (const service of SUBGRAPHS) {
      for (const token of forged) {
        const response = await graphqlRequest(
          system.subgraphs[service].url,
          "{ __typename }",
          {},
          bearer(token),
        );
        expect({
          service,
          status: response.status,
          extensions: response.body.errors?.[0]?.extensions,
        }).toEqual({
          service,
          status: 401,
          extensions: expect.objectContaining({ code: "UNAUTHENTICATED", reason: "invalid" }),
        });
      }
    }
  });

  it("should let a subgraph verify a genuine token itself when called directly", async () => {
    const signedIn = viewer();
    const { token } = await system.accessTokens.issue(signedIn);
    for (const service of SUBGRAPHS) {
      const requestId = `direct-${randomUUID()}`;
      const response = await graphqlRequest(
        system.subgraphs[service].url,
        "{ __typename }",
        {},
        { ...bearer(token), "x-request-id": requestId },
      );
      expect(response.status).toBe(200);
      expect(requestLines(service, requestId).map((line) => line.userId)).toEqual([signedIn.userId]);
    }
  });
});
