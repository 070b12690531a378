import { randomUUID } from "node:crypto";
import type { SqlClient } from "@hv/kit";
import { createChatDatabase, type ChatDb } from "../src/db";
import { createLoaders } from "../src/loaders";
import type { ChatServices } from "../src/modules/context";

describe("conversationByMatchId", () => {
  let db: ChatDb;
  let sql: SqlClient;
  let pool: ReturnType<typeof createChatDatabase>["pool"];

  beforeAll(() => {
    ({ db, sql, pool } = createChatDatabase(process.env.CHAT_DATABASE_URL ?? ""));
  });
  afterAll(async () => {
    await db.$disconnect();
  });

  it("should read a page of matches' conversations with one prepared statement", async () => {
    const [viewer, other] = [randomUUID(), randomUUID()];
    const [matchA, matchB, unknown] = [randomUUID(), randomUUID(), randomUUID()];
    const members = { create: [{ userId: viewer }, { userId: other }] };
    const a = await db.conversation.create({ data: { kind: "DIRECT", matchId: matchA, members } });
    const b = await db.conversation.create({ data: { kind: "DIRECT", matchId: matchB, members } });
    const statements: Array<string | undefined> = [];
    const recording: SqlClient = {
      query: (statement) => {
        statements.push(statement.name);
        return sql.query(statement);
      },
    };
    // The loader reads only `db` and `sql` of the process's services.
    const services = { db, sql: recording } as unknown as ChatServices;
    const loaders = createLoaders(services, viewer);
    const rows = await loaders.conversationByMatchId.loadMany([matchA, matchB, unknown]);
    expect(rows.map((row) => (row instanceof Error ? row : row?.id))).toEqual([a.id, b.id, undefined]);
    expect(statements).toEqual(["chat_conversations_by_match"]);
    // Nobody else's: the same matches asked by someone who is not a member.
    const outsider = createLoaders(services, randomUUID());
    expect(await outsider.conversationByMatchId.loadMany([matchA, matchB])).toEqual([null, null]);
    const { rows: prepared } = await pool.query<{ name: string }>("SELECT name FROM pg_prepared_statements");
    expect(prepared.map((row) => row.name)).toContain("chat_conversations_by_match");
  });
});
