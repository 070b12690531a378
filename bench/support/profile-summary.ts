/**
 * Where a V8 CPU profile's time went (the `--profile DIR` output of the benches):
 *
 *   pnpm exec tsx bench/support/profile-summary.ts FILE.cpuprofile [--top 40] [--since SECONDS] [--until SECONDS] [--timeline]
 *
 * Prints self time by package (node_modules package or our own workspace folder), self time by
 * function, and inclusive time by function (a function's time with everything it called, counted
 * once per sample even when it recurses). `--since`/`--until` keep only that window of the profile
 * (seconds from its start), e.g. only the load, not start-up and set-up.
 */
import { readFileSync } from "node:fs";
import { packageOf } from "./source-package";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error("usage: profile-summary.ts FILE.cpuprofile [--top N] [--since SECONDS]");
  const topIndex = process.argv.indexOf("--top");
  const top = topIndex < 0 ? 40 : Number(process.argv[topIndex + 1]);
  const sinceIndex = process.argv.indexOf("--since");
  const sinceUs = sinceIndex < 0 ? 0 : Number(process.argv[sinceIndex + 1]) * 1e6;
  const untilIndex = process.argv.indexOf("--until");
  const untilUs = untilIndex < 0 ? Infinity : Number(process.argv[untilIndex + 1]) * 1e6;
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (frame: CallFrame) =>
    `${frame.functionName || "(anonymous)"} ${frame.url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, "").replace(/^file:\/\/\/work\/[^/]+\//, "")}:${frame.lineNumber + 1}`;

  const selfByFunction = new Map<string, number>();
  const selfByPackage = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let clock = 0;
  profile.samples.forEach((sample, index) => {
    const delta = profile.timeDeltas[index + 1] ?? profile.timeDeltas[index] ?? 0;
    clock += profile.timeDeltas[index] ?? 0;
    if (clock < sinceUs || clock > untilUs) return;
    const node = byId.get(sample);
    if (!node) return;
    const name = node.callFrame.functionName;
    if (name === "(idle)") {
      idle += delta;
      return;
    }
    total += delta;
    const key = label(node.callFrame);
    selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + delta);
    const pkg = name === "(garbage collector)" ? "(garbage collector)" : packageOf(node.callFrame.url);
    selfByPackage.set(pkg, (selfByPackage.get(pkg) ?? 0) + delta);
    const seen = new Set<string>();
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      const k = label(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + delta);
    }
  });
  if (process.argv.includes("--timeline")) {
    // Busy ms per 5 s of the profile: where set-up, idle and load phases lie.
    const buckets: number[] = [];
    let at = 0;
    profile.samples.forEach((sample, index) => {
      at += profile.timeDeltas[index] ?? 0;
      if (byId.get(sample)?.callFrame.functionName === "(idle)") return;
      const bucket = Math.floor(at / 5e6);
      buckets[bucket] = (buckets[bucket] ?? 0) + (profile.timeDeltas[index + 1] ?? 0) / 1000;
    });
    console.log(
      `busy ms per 5 s: ${[...buckets].map((ms, i) => `${i * 5}s:${(ms ?? 0).toFixed(0)}`).join(" ")}`,
    );
  }
  const print = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(
        `${(us / 1000).toFixed(0).padStart(8)} ms ${((us / total) * 100).toFixed(1).padStart(5)}%  ${key}`,
      );
    }
  };
  console.log(
    `${file}: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s profiled; in the window busy ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms`,
  );
  print("self time by package", selfByPackage);
  print("self time by function", selfByFunction);
  print("inclusive time by function", inclusive);
}

main();
