/**
 * The gateway's user cache (gateway/src/public-user-cache.ts): JS heap per user held warm, for
 * the app's event text (`...on User{displayName}`), and per user kept with every public User field
 * (what per-field storage answering any public text would keep), in-process, Users answered by a
 * stub (no network: only the cache's own memory is measured).
 *
 *   pnpm exec tsx --expose-gc bench/user-cache-memory.ts [--users 10000]
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Supergraph } from "@apollo/federation-internals";
import type { GraphQLDataSource } from "@apollo/gateway";
import { SUPERGRAPH_PATH } from "@hv/gateway";
import { PublicUserCache } from "@hv/gateway/src/public-user-cache";
import type { GatewayContext } from "@hv/gateway/src/subgraph-data-source";
import type { UserChanges } from "@hv/gateway/src/subscriptions/user-changes";

const DISPLAY_NAME = `query ChatMyEvents__users__2($representations:[_Any!]!){_entities(representations:$representations){...on User{displayName}}}`;
const ALL_PUBLIC = `query($representations:[_Any!]!){_entities(representations:$representations){...on User{id displayName bio pronouns age gender gendersOfInterest interests createdAt}}}`;

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

/** Answers every representation as Users would for a profile of typical length. */
const stub: GraphQLDataSource<GatewayContext> = {
  process: (options) => {
    const reps = (options.request.variables?.representations ?? []) as Array<{ id: string }>;
    const all = (options.request.query ?? "").includes("bio");
    const entities = reps.map((rep, i) =>
      all
        ? {
            id: rep.id,
            displayName: `Person ${i}`,
            bio: "Climbing on weekends, coffee always, looking for someone to share long walks with.",
            pronouns: "she/her",
            age: 29,
            gender: "WOMAN",
            gendersOfInterest: ["MAN", "WOMAN"],
            interests: ["climbing", "coffee", "hiking"],
            createdAt: new Date().toISOString(),
          }
        : { displayName: `Person ${i}` },
    );
    return Promise.resolve({ data: { _entities: entities } });
  },
};

const heapUsed = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
};

async function measure(query: string, users: number): Promise<number> {
  const changes: UserChanges = { live: true, onChange: () => undefined, stop: async () => undefined };
  const cache = new PublicUserCache({ keepMs: 300_000, maxUsers: 1_000_000, userChanges: changes });
  cache.setSupergraph({
    version: "1",
    schema: Supergraph.build(readFileSync(SUPERGRAPH_PATH, "utf8")).apiSchema().toGraphQLJSSchema(),
  });
  cache.wrap(stub);
  // The ids as the gateway holds them already (its sockets' viewers), made before the baseline.
  const ids = Array.from({ length: users }, () => randomUUID());
  await new Promise((resolve) => setTimeout(resolve, 100));
  const before = heapUsed();
  for (const id of ids) cache.hold(id, [query]);
  while (cache.stats.warmSettled < Math.ceil(users / 100) || cache.size() < users)
    await new Promise((resolve) => setTimeout(resolve, 60));
  const after = heapUsed();
  cache.stop();
  if (ids.length !== users) throw new Error("unreachable");
  return (after - before) / users;
}

async function main() {
  if (!(globalThis as { gc?: unknown }).gc) throw new Error("run with --expose-gc");
  const users = flag("users", 10_000);
  for (const [name, query] of [
    ["held, displayName text (today's per-text storage)", DISPLAY_NAME],
    ["held, every public User field (what per-field storage would keep)", ALL_PUBLIC],
  ] as const) {
    const bytes = await measure(query, users);
    console.log(`${name}: ${bytes.toFixed(0)} B JS heap per user (${users} users)`);
  }
}

void main();
