import { randomUUID } from "node:crypto";
import { SUBGRAPH_NAMES } from "@hv/kit";
import { graphqlRequest, startSystem, type RunningSystem } from "../support/system";
import { seedPerson, testDatabases, type TestDatabases } from "../support/seed";

const PROFILE_AND_CONVERSATION = /* GraphQL */ `
  query ProfileAndConversation($userId: ID!, $conversationId: ID!) {
    user(id: $userId) {
      id
      displayName
      bio
      isDiscoverable
      photos {
        id
        kind
        status
        width
        height
      }
    }
    conversation(id: $conversationId) {
      id
      kind
      memberCount
    }
  }
`;

describe("the supergraph through the gateway", () => {
  let system: RunningSystem;
  let dbs: TestDatabases;

  beforeAll(async () => {
    dbs = testDatabases();
    system = await startSystem();
  });
  afterAll(async () => {
    await system?.stop();
    await dbs?.close();
  });

  /** Conversations are for their members only: the seeded person asks, signed in. */
  async function signedInAs(userId: string): Promise<Record<string, string>> {
    const { token } = await system.accessTokens.issue({ userId, sessionId: randomUUID(), role: "USER" });
    return { authorization: `Bearer ${token}` };
  }

  it("should answer one query with data from all four subgraphs", async () => {
    const { user, photo, conversation } = await seedPerson(dbs, "Ada");

    const response = await graphqlRequest(
      system.gatewayUrl,
      PROFILE_AND_CONVERSATION,
      { userId: user.id, conversationId: conversation.id },
      await signedInAs(user.id),
    );

    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data).toEqual({
      user: {
        id: user.id,
        displayName: "Ada", // users
        bio: "likes long walks",
        isDiscoverable: true, // discovery
        photos: [{ id: photo.id, kind: "IMAGE", status: "READY", width: 640, height: 800 }], // media
      },
      conversation: { id: conversation.id, kind: "DIRECT", memberCount: 2 }, // chat
    });
  });

  it("should carry the request id to every subgraph and into their log lines", async () => {
    const { user, conversation } = await seedPerson(dbs, "Grace");
    const requestId = `test-${randomUUID()}`;

    const response = await graphqlRequest(
      system.gatewayUrl,
      PROFILE_AND_CONVERSATION,
      { userId: user.id, conversationId: conversation.id },
      { "x-request-id": requestId, ...(await signedInAs(user.id)) },
    );

    expect(response.body.errors).toBeUndefined();
    expect(response.headers.get("x-request-id")).toBe(requestId);
    for (const service of ["gateway", ...SUBGRAPH_NAMES] as const) {
      const lines = system.logs[service].filter((line) => line.requestId === requestId);
      expect({ service, logged: lines.some((line) => line.msg === "graphql request") }).toEqual({
        service,
        logged: true,
      });
    }
  });

  it("should replace a malformed request id instead of logging it", async () => {
    const forged = 'forged" level="error';
    const response = await graphqlRequest(
      system.gatewayUrl,
      "{ __typename }",
      {},
      { "x-request-id": forged },
    );

    const issued = response.headers.get("x-request-id");
    expect(issued).toMatch(/^[0-9a-f-]{36}$/);
    expect(system.logs.gateway.some((line) => line.requestId === forged)).toBe(false);
    expect(system.logs.gateway.some((line) => line.requestId === issued)).toBe(true);
  });

  it("should return null for unknown ids and a typed error for malformed ones", async () => {
    const unknown = await graphqlRequest(
      system.gatewayUrl,
      PROFILE_AND_CONVERSATION,
      { userId: randomUUID(), conversationId: randomUUID() },
      await signedInAs(randomUUID()),
    );
    expect(unknown.body.errors).toBeUndefined();
    expect(unknown.body.data).toEqual({ user: null, conversation: null });

    const malformed = await graphqlRequest(system.gatewayUrl, `query { user(id: "1 OR 1=1") { id } }`);
    expect(malformed.body.data).toEqual({ user: null });
    expect(malformed.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(malformed.body.errors?.[0]?.message).toBe("id must be a UUID");
  });

  it("should report health and readiness on every process", async () => {
    for (const service of [system.gateway, ...Object.values(system.subgraphs)]) {
      const base = service.url.replace(/\/graphql$/, "");
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect({ service: service.name, status: ready.status }).toEqual({ service: service.name, status: 200 });
    }
    const usersReady = (await (
      await fetch(system.subgraphs.users.url.replace(/\/graphql$/, "/readyz"))
    ).json()) as {
      checks: Record<string, string>;
    };
    expect(usersReady.checks).toEqual({ database: "ok", redis: "ok" });
  });
});
