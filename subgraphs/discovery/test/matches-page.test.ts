import { randomUUID } from "node:crypto";
import { createDatabaseClients, type SqlClient } from "@hv/kit";
import type { DiscoveryContext } from "../src/context";
import { PrismaClient } from "../src/generated/prisma/client";
import { matchResolvers, orderedPair } from "../src/modules/matches";

describe("matches page", () => {
  let clients: ReturnType<typeof createDatabaseClients<PrismaClient>>;

  beforeAll(() => {
    clients = createDatabaseClients(PrismaClient, process.env.DISCOVERY_DATABASE_URL ?? "");
  });
  afterAll(async () => {
    await clients.prisma.$disconnect();
  });

  it("should read each page with one prepared statement, newest first, across pages", async () => {
    const viewer = randomUUID();
    const others = [randomUUID(), randomUUID(), randomUUID()];
    for (const [index, other] of others.entries()) {
      await clients.prisma.match.create({
        data: { ...orderedPair(viewer, other), createdAt: new Date(Date.UTC(2026, 0, 1 + index)) },
      });
    }
    const statements: Array<string | undefined> = [];
    const recording: SqlClient = {
      query: (statement) => {
        statements.push(statement.name);
        return clients.sql.query(statement);
      },
    };
    // The resolver reads only the viewer and `services.sql` of its context.
    const context = {
      viewer: { userId: viewer, sessionId: randomUUID(), role: "USER" },
      services: { sql: recording },
    } as unknown as DiscoveryContext;
    const first = await matchResolvers.Query.matches(undefined, { first: 2 }, context);
    const second = await matchResolvers.Query.matches(
      undefined,
      { first: 2, after: first.pageInfo.endCursor },
      context,
    );
    const people = [...first.edges, ...second.edges].map(({ node }) =>
      node.userAId === viewer ? node.userBId : node.userAId,
    );
    expect(people).toEqual([...others].reverse());
    expect([first.pageInfo.hasNextPage, second.pageInfo.hasNextPage]).toEqual([true, false]);
    // Each cursor is base64url of JSON.stringify's bytes for its match's time and id; the last is endCursor.
    for (const { cursor, node } of [...first.edges, ...second.edges]) {
      const json = JSON.stringify({ c: node.createdAt.toISOString(), i: node.id });
      expect(cursor).toBe(Buffer.from(json).toString("base64url"));
    }
    expect(first.pageInfo.endCursor).toBe(first.edges.at(-1)?.cursor);
    expect(statements).toEqual(["discovery_matches_page", "discovery_matches_page"]);
    const { rows } = await clients.pool.query<{ name: string }>("SELECT name FROM pg_prepared_statements");
    expect(rows.map((row) => row.name)).toContain("discovery_matches_page");
  });
});
