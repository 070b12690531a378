/**
 * Counts the round trips clients make to Redis on keys containing `--match` (default the gateway's
 * budgets, `:gw:rl:`), by key prefix (one per gateway's EVENTS_PREFIX), command and the budget its
 * first matching key names, for `--seconds`
 * (or until Ctrl-C). MONITOR sees every client's commands; those a script runs ("lua") are left out.
 * Run it beside a bench, e.g. bench/chat-gateway.ts, and divide by the sends it reports:
 *   pnpm exec tsx bench/redis-trips.ts --seconds 60
 */
import { Redis } from "ioredis";
import { loadAverage } from "./support/service";

const flag = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : (process.argv[at + 1] ?? fallback);
};

async function main(): Promise<void> {
  const match = flag("match", ":gw:rl:");
  const seconds = Number(flag("seconds", "60"));
  const origin = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const monitor = await origin.monitor();
  const counts = new Map<string, number>();
  /** Commands naming the address budget and a sensitive one: the admission with its operation's budgets. */
  const merged = new Map<string, number>();
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    if (source === "lua") return;
    const keys = args.filter((arg) => arg.includes(match));
    const first = keys[0];
    if (first === undefined) return;
    const at = first.indexOf(match);
    const budget = first.slice(at + match.length).split(":")[0] ?? "?";
    const prefix = first.slice(0, at);
    const name = `${prefix} ${(args[0] ?? "").toLowerCase()} ${budget}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    if (budget === "edge-address" && keys.some((key) => key.includes("edge-send-message"))) {
      merged.set(prefix, (merged.get(prefix) ?? 0) + 1);
    }
  });
  const stop = () => {
    console.log(`redis round trips on keys with ${match} (load average ${loadAverage()}):`);
    for (const [name, count] of [...counts].sort()) console.log(`  ${name}: ${count}`);
    for (const [prefix, count] of merged) {
      console.log(`  ${prefix}: admissions spending edge-send-message too: ${count}`);
    }
    monitor.disconnect();
    origin.disconnect();
  };
  process.once("SIGINT", stop);
  setTimeout(stop, seconds * 1000).unref();
  await new Promise<void>((resolve) => monitor.once("end", () => resolve()));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
