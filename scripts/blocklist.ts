import { parseArgs } from "node:util";
import { closeRedis, createLogger, createRedis, ENV_CATALOGUE, loadRedisTarget, readVar } from "@hv/kit";
import { BlocklistStore } from "@hv/gateway/src/protection";

/**
 * The gateway's IP blocklist, kept in Redis and followed by every replica at once (pub/sub, plus a
 * poll every GATEWAY_BLOCKLIST_REFRESH_SECONDS):
 *
 *   pnpm run blocklist -- add 203.0.113.0/24 --reason "credential stuffing"
 *   pnpm run blocklist -- add 2001:db8:1234::/48 --reason "scraper"
 *   pnpm run blocklist -- remove 203.0.113.0/24
 *   pnpm run blocklist -- list
 *
 * Reads REDIS_URL (and REDIS_SENTINELS, REDIS_SENTINEL_NAME when set) and EVENTS_PREFIX like the gateway (the list lives at `<EVENTS_PREFIX>:gw:blocklist`).
 */
const USAGE = `usage: pnpm run blocklist -- add <cidr> --reason <text> | remove <cidr> | list`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    args: process.argv.slice(2).filter((arg) => arg !== "--"),
    allowPositionals: true,
    options: { reason: { type: "string" }, prefix: { type: "string" } },
  });
  const [command, cidr, ...extra] = positionals;
  if (!command || extra.length > 0 || (command !== "list" && !cidr) || (command === "list" && cidr)) {
    console.error(USAGE);
    return 2;
  }
  const redisTarget = loadRedisTarget(process.env);
  const prefix = values.prefix ?? `${readVar(ENV_CATALOGUE, process.env, "EVENTS_PREFIX")}:gw`;
  const redis = createRedis(redisTarget, createLogger({ service: "blocklist", level: "warn" }));
  const store = new BlocklistStore(redis, prefix);
  try {
    switch (command) {
      case "add": {
        if (!values.reason?.trim()) {
          console.error("add needs --reason <text> (kept with the entry for whoever reads the list later)");
          return 2;
        }
        const entry = await store.add(cidr as string, values.reason.trim());
        console.log(`blocked ${entry.cidr} (${entry.reason})`);
        return 0;
      }
      case "remove": {
        const removed = await store.remove(cidr as string);
        console.log(removed ? `unblocked ${cidr}` : `${cidr} was not blocked`);
        return removed ? 0 : 1;
      }
      case "list": {
        const entries = await store.list();
        if (entries.length === 0) console.log("(the blocklist is empty)");
        for (const entry of entries) console.log(`${entry.cidr}\t${entry.addedAt}\t${entry.reason}`);
        return 0;
      }
      default:
        console.error(USAGE);
        return 2;
    }
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  } finally {
    await closeRedis(redis);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
