/**
 * What a process kept between two heap snapshots (bench/support/loop-probe.ts writes them with
 * BENCH_HEAP_SNAPSHOT_DIR), by node type and constructor name, per item of what was added:
 *
 *   pnpm exec tsx bench/support/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [--per 2000] [--top 40]
 *
 * Self sizes only (a closure's context and its code are separate rows).
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Bytes and count per "type name" of every node in a snapshot. */
function tally(file: string): Map<string, { bytes: number; count: number }> {
  const parsed = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = parsed.snapshot.meta.node_fields;
  const types = parsed.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const totals = new Map<string, { bytes: number; count: number }>();
  for (let index = 0; index < parsed.nodes.length; index += width) {
    const type = types[parsed.nodes[index + typeAt]!]!;
    let name =
      type === "string" || type === "concatenated string" || type === "sliced string"
        ? ""
        : parsed.strings[parsed.nodes[index + nameAt]!]!;
    if (type === "code" || type === "hidden") name = name.slice(0, 40);
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type} ${name}`;
    const entry = totals.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += parsed.nodes[index + sizeAt]!;
    entry.count += 1;
    totals.set(key, entry);
  }
  return totals;
}

function numberFlag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

const [beforeFile, afterFile] = process.argv.slice(2);
if (!beforeFile || !afterFile)
  throw new Error("usage: heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [--per N]");
const per = numberFlag("per", 1);
const top = numberFlag("top", 40);
const before = tally(beforeFile);
const after = tally(afterFile);
const rows = [...after].map(([key, entry]) => {
  const was = before.get(key) ?? { bytes: 0, count: 0 };
  return { key, bytes: entry.bytes - was.bytes, count: entry.count - was.count };
});
const total = rows.reduce((sum, row) => sum + row.bytes, 0);
console.log(
  `added ${(total / 1024).toFixed(1)} KiB in all, ${(total / per).toFixed(0)} B per item (${per} items)`,
);
for (const row of rows.sort((a, b) => b.bytes - a.bytes).slice(0, top))
  console.log(
    `${(row.bytes / per).toFixed(0).padStart(7)} B ${(row.count / per).toFixed(2).padStart(7)} x  ${row.key}`,
  );
