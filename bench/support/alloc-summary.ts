/**
 * Where a V8 sampling allocation profile's bytes went (BENCH_ALLOC_PROFILE_DIR output of the
 * benches, bench/support/loop-probe.ts):
 *
 *   pnpm exec tsx bench/support/alloc-summary.ts FILE.heapprofile [--top 30] [--per MESSAGES] [--under TEXT]
 *
 * Prints bytes allocated (collected since included) by package, by allocating function, and by our
 * own nearest frame (the innermost function of this workspace on the stack, node_modules and node
 * left out: the call of ours that led to the allocation). `--per N` divides every figure by N
 * (e.g. the phase's stored messages) and prints bytes instead of KiB; `--under TEXT` keeps only the
 * allocations with a frame named with TEXT (`function file:line`) on their stack. Frames in a built bundle are
 * read through its source map (node:module SourceMap) when one lies beside it.
 */
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";
import { argument, flag } from "./args";
import { packageOf } from "./source-package";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

/** Source maps of the built bundles (dist/<service>/main.js.map), by the bundle's URL. */
const sourceMaps = new Map<string, SourceMap | undefined>();

/** The frame in our sources when it ran from a bundle with a source map beside it. */
function original(frame: CallFrame): CallFrame {
  if (!frame.url.endsWith(".js")) return frame;
  let map = sourceMaps.get(frame.url);
  if (!sourceMaps.has(frame.url)) {
    const file = `${frame.url.startsWith("file:") ? fileURLToPath(frame.url) : frame.url}.map`;
    map = existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, "utf8"))) : undefined;
    sourceMaps.set(frame.url, map);
  }
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
  if (!entry || !("originalSource" in entry)) return frame;
  return {
    functionName: frame.functionName,
    url: entry.originalSource,
    lineNumber: entry.originalLine,
    columnNumber: entry.originalColumn,
  };
}
interface AllocationNode {
  callFrame: CallFrame;
  selfSize: number;
  children: AllocationNode[];
}

const isOurs = (url: string) => packageOf(url).startsWith("ours:");

/** `name file:line`, the file shortened to its path inside the workspace or package. */
function frameName(frame: CallFrame): string {
  const file = frame.url
    .replace(/^.*node_modules\//, "")
    .replace(/^file:\/\/.*?\/(kit|gateway|subgraphs|bench)\//, "$1/");
  return `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error("usage: alloc-summary.ts FILE.heapprofile [--top 30] [--per MESSAGES]");
  const top = flag("top", 30);
  const per = Number(argument("per") ?? 0);
  const profile = JSON.parse(readFileSync(file, "utf8")) as { head: AllocationNode };
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byOurFrame = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, size: number) =>
    map.set(key, (map.get(key) ?? 0) + size);
  let total = 0;
  const under = argument("under");
  const walk = (node: AllocationNode, ourFrame: string, inside: boolean) => {
    const frame = original(node.callFrame);
    const ours = isOurs(frame.url) ? frameName(frame) : ourFrame;
    const kept = inside || under === undefined || frameName(frame).includes(under);
    if (node.selfSize > 0 && kept) {
      total += node.selfSize;
      add(byPackage, packageOf(frame.url), node.selfSize);
      add(byFunction, frameName(frame), node.selfSize);
      add(byOurFrame, ours, node.selfSize);
    }
    for (const child of node.children) walk(child, ours, kept);
  };
  walk(profile.head, "(no frame of ours)", false);
  const shown = (bytes: number) =>
    per > 0 ? `${(bytes / per).toFixed(0)} B` : `${(bytes / 1024).toFixed(0)} KiB`;
  const print = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(
        `  ${((bytes * 100) / total).toFixed(1).padStart(5)} %  ${shown(bytes).padStart(10)}  ${key}`,
      );
  };
  console.log(
    `${file}: ${(total / 2 ** 20).toFixed(1)} MiB sampled${per > 0 ? `, ${shown(total)} per unit` : ""}`,
  );
  print("by package (allocating function's)", byPackage);
  print("by allocating function", byFunction);
  print("by our nearest frame", byOurFrame);
}

main();
