/**
 * `bench/chat-gateway.ts --target reference`: the minimal one-process chat server
 * (bench/reference-chat-server.ts) in place of users + chat + gateway, on a database of its own,
 * seeded with the bench's people and conversations.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { defaultDatabaseUrl, ensureDatabase } from "@hv/prisma";
import pg from "pg";
import { REFERENCE_TABLES } from "../reference-chat-server";
import { ROOT, sleep } from "./service";

/** The reference's database of this bench run (on Chat's server). */
export function referenceDatabaseUrl(stamp: string): string {
  const url = new URL(process.env.CHAT_DATABASE_URL ?? defaultDatabaseUrl("chat"));
  url.pathname = `/hv_bench_chat_${stamp}_reference`;
  return url.toString();
}

/** Its tables, with people ("Person n", n from 1) and conversations (member ids). */
export async function seedReference(
  databaseUrl: string,
  ids: readonly string[],
  conversations: ReadonlyArray<{ id: string; members: readonly string[] }>,
): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(REFERENCE_TABLES);
    await client.query(
      `INSERT INTO ref_users (id, display_name)
       SELECT id::uuid, 'Person ' || n FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)`,
      [ids],
    );
    await client.query(
      `INSERT INTO ref_conversations (id, member_ids)
       SELECT id::uuid, string_to_array(members, ',')::uuid[] FROM unnest($1::text[], $2::text[]) AS t(id, members)`,
      [conversations.map((c) => c.id), conversations.map((c) => c.members.join(","))],
    );
  } finally {
    await client.end();
  }
}

/** A GROUP conversation of `members` in Chat's tables (as the pairs are seeded); its id. */
export async function seedGroup(
  chatDb: { $executeRawUnsafe(query: string, ...values: unknown[]): Promise<unknown> },
  members: readonly string[],
): Promise<string> {
  const id = randomUUID();
  await chatDb.$executeRawUnsafe(
    `INSERT INTO conversations (id, kind, title) VALUES ($1::uuid, 'GROUP', 'bench')`,
    id,
  );
  await chatDb.$executeRawUnsafe(
    `INSERT INTO conversation_members (conversation_id, user_id, role)
     SELECT $1::uuid, u::uuid, 'MEMBER' FROM unnest($2::text[]) AS t(u)`,
    id,
    members,
  );
  return id;
}

/**
 * The reference server's process (node --import tsx, NODE_ENV=production), resolved once it
 * answers GET /readyz; with REFERENCE_CHECKS in `env`, the one with checks (bench/reference-checks.ts). `nodeArgs` go before the entry, as for the services (the bench's probe).
 */
export async function startReference(
  databaseUrl: string,
  env: Record<string, string>,
  port: number,
  nodeArgs: string[],
): Promise<ChildProcess> {
  await ensureDatabase(databaseUrl);
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      ...nodeArgs,
      path.join(ROOT, env.REFERENCE_CHECKS ? "bench/reference-checks.ts" : "bench/reference-chat-server.ts"),
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: "production",
        ...env,
        REFERENCE_DATABASE_URL: databaseUrl,
        REFERENCE_PORT: String(port),
      },
      stdio: ["ignore", process.env.BENCH_SERVICE_STDOUT === "inherit" ? "inherit" : "ignore", "inherit"],
    },
  );
  let exited: number | null | undefined;
  child.once("exit", (code) => (exited = code));
  for (let attempt = 0; ; attempt += 1) {
    if (exited !== undefined) throw new Error(`the reference server exited (${exited}) before it was ready`);
    const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
    if (response?.status === 200) return child;
    if (attempt > 1200) throw new Error("the reference server never became ready");
    await sleep(50);
  }
}
