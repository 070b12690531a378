/**
 * What each subgraph burns while nobody uses it: the four subgraphs started as `npm start` runs them
 * (one process each, on databases of this run), then measured idle.
 *
 *   pnpm exec tsx bench/subgraph-idle.ts [--services users,discovery,media,chat] [--seconds 20]
 *     [--warmup 5] [--from CHECKOUT] [--profile DIR]
 *
 * Per process: CPU-ms per second from /proc, split by thread (`/proc/PID/task/*`: the main thread,
 * V8's GC and compiler workers, libuv's pool), its wake-ups per second (voluntary context
 * switches), and the CPU of the PostgreSQL backends connected to its database. `--from` runs the
 * subgraphs' code of another checkout (a worktree of main for "before") on the same databases;
 * `--profile DIR` writes a CPU profile of each process (bench/support/profile-summary.ts reads it).
 */
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { generateSigningKeyJwk } from "@hv/kit";
import { Client } from "pg";
import { argument, flag } from "./support/args";
import {
  benchDatabase,
  dropUnlessKept,
  freePort,
  loadAverage,
  printHeader,
  ROOT,
  runBench,
  sleep,
  startChild,
  stopChild,
  subgraphsEnv,
} from "./support/service";

const SUBGRAPHS = ["users", "discovery", "media", "chat"] as const;
type Subgraph = (typeof SUBGRAPHS)[number];

interface ThreadSample {
  name: string;
  cpuTicks: number;
  wakeups: number;
}

/** Every thread of a process: its name, user + system ticks (USER_HZ 100) and voluntary context switches. */
function threadsOf(pid: number): Map<string, ThreadSample> {
  const threads = new Map<string, ThreadSample>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      threads.set(tid, {
        name: tid === String(pid) ? "main" : name,
        cpuTicks: Number(fields[11]) + Number(fields[12]),
        wakeups: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
      });
    } catch {
      // the thread ended between readdir and read
    }
  }
  return threads;
}

/** CPU ticks of processes (PostgreSQL backends), 0 for one that is gone. */
function ticksOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // ended
    }
  }
  return ticks;
}

async function backendPids(database: string): Promise<number[]> {
  const admin = new Client({
    connectionString: process.env.USERS_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
  });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1",
      [database],
    );
    return rows.map((row) => row.pid);
  } finally {
    await admin.end();
  }
}

/** `--name <value>`, or undefined when absent. */
async function main(): Promise<void> {
  const services = (argument("services")?.split(",") ?? [...SUBGRAPHS]) as Subgraph[];
  for (const name of services) if (!SUBGRAPHS.includes(name)) throw new Error(`--services: unknown ${name}`);
  const seconds = flag("seconds", 20);
  const warmup = flag("warmup", 5);
  const from = path.resolve(argument("from") ?? ROOT);
  const profileDir = argument("profile");
  const stamp = Date.now().toString(36);
  printHeader("subgraph-idle.ts");
  console.log(`subgraphs from ${from}`);
  const urls = {} as Record<Subgraph, string>;
  for (const name of SUBGRAPHS) urls[name] = await benchDatabase(name, `idle_${name}`, stamp);
  const ports = {} as Record<Subgraph | "files", number>;
  for (const name of [...SUBGRAPHS, "files"] as const) ports[name] = await freePort();
  const key = generateSigningKeyJwk("bench-idle");
  const env = subgraphsEnv({
    urls,
    ports,
    signingKeys: JSON.stringify([key]),
    eventsPrefix: `hvidle_${stamp}`,
    mediaDir: path.join(os.tmpdir(), `hv-bench-idle-${stamp}`),
  });
  const children = new Map<Subgraph, ChildProcess>();
  try {
    for (const name of services) {
      const profile = profileDir
        ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir, `${name}-${stamp}`)}`]
        : [];
      children.set(
        name,
        await startChild(
          path.join(from, "subgraphs", name, "src", "index.ts"),
          env,
          `http://127.0.0.1:${ports[name]}/readyz`,
          profile,
        ),
      );
    }
    await sleep(warmup * 1000);
    const backends = new Map<Subgraph, number[]>();
    for (const name of services) backends.set(name, await backendPids(new URL(urls[name]).pathname.slice(1)));
    const before = new Map([...children].map(([name, child]) => [name, threadsOf(child.pid!)]));
    const pgBefore = new Map(services.map((name) => [name, ticksOf(backends.get(name)!)]));
    const loadBefore = loadAverage();
    await sleep(seconds * 1000);
    console.log(`idle ${seconds} s after ${warmup} s, load average ${loadBefore} → ${loadAverage()}`);
    for (const [name, child] of children) {
      const after = threadsOf(child.pid!);
      const byName = new Map<string, { ms: number; wakeups: number }>();
      let total = 0;
      let wakeups = 0;
      for (const [tid, sample] of after) {
        const was = before.get(name)!.get(tid) ?? { cpuTicks: 0, wakeups: 0 };
        const ms = ((sample.cpuTicks - was.cpuTicks) * 10) / seconds;
        const woke = (sample.wakeups - was.wakeups) / seconds;
        const entry = byName.get(sample.name) ?? { ms: 0, wakeups: 0 };
        entry.ms += ms;
        entry.wakeups += woke;
        byName.set(sample.name, entry);
        total += ms;
        wakeups += woke;
      }
      const pg = ((ticksOf(backends.get(name)!) - pgBefore.get(name)!) * 10) / seconds;
      const threads = [...byName]
        .filter(([, entry]) => entry.ms > 0 || entry.wakeups >= 1)
        .sort((a, b) => b[1].ms - a[1].ms || b[1].wakeups - a[1].wakeups)
        .map(([thread, entry]) => `${thread} ${entry.ms.toFixed(1)} (${entry.wakeups.toFixed(0)}/s)`)
        .join(", ");
      console.log(
        `${name}: ${total.toFixed(1)} CPU-ms/s, ${wakeups.toFixed(0)} wake-ups/s; PostgreSQL ${pg.toFixed(1)} CPU-ms/s (${backends.get(name)!.length} backends); threads: ${threads}`,
      );
    }
  } finally {
    for (const child of children.values()) await stopChild(child);
    for (const name of SUBGRAPHS) await dropUnlessKept(urls[name], false);
  }
}

runBench(main);
