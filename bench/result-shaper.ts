/**
 * The gateway's compiled result shaper (gateway/src/result-shaper.ts) alone, in one process: CPU µs
 * per shaping of a page of 50 people with scalar, enum and custom-scalar leaves (400 leaves, 300
 * of them not strings) and three photos each, from `process.cpuUsage()`, in interleaved rounds.
 *
 * With `--baseline FILE`, another commit's result-shaper.ts shapes the same answers in the same
 * rounds (a before/after in one process; the answers must be identical). FILE must sit in gateway/:
 *
 *   git show main:gateway/src/result-shaper.ts > gateway/baseline-shaper.ts   # delete after
 *   pnpm exec tsx bench/result-shaper.ts [--rounds 9] [--baseline gateway/baseline-shaper.ts] [--stringify]
 *
 * `--stringify` times each shaping with the `JSON.stringify` of its answer (what the gateway writes).
 */
import { resolve } from "node:path";
import { buildSchema, operationFromDocument } from "@apollo/federation-internals";
import { parse } from "graphql";
import { ResultShaper } from "@hv/gateway/src/result-shaper";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

type Shaper = Pick<ResultShaper, "shape">;

const rounds = flag("rounds", 9);
const baselineIndex = process.argv.indexOf("--baseline");
const baselineFile = baselineIndex < 0 ? undefined : process.argv[baselineIndex + 1];
const stringify = process.argv.includes("--stringify");

const schema = buildSchema(`
  scalar DateTime
  enum Role { ADMIN MEMBER }
  type Query { people(first: Int): [Person!]! }
  type Person { id: ID! name: String! age: Int distanceKm: Float verified: Boolean! role: Role! seen: DateTime photos: [Photo!]! }
  type Photo { id: ID! width: Int! height: Int! ready: Boolean! }
`);
const operation = operationFromDocument(
  schema,
  parse(
    `{ people(first: 50) { id name age distanceKm verified role seen photos { id width height ready } } }`,
  ),
);

/** A subgraph's answer for the page (a fresh object each time: shaping reads it only). */
function answer(): Record<string, unknown> {
  return {
    people: Array.from({ length: 50 }, (_, i) => ({
      id: String(i),
      name: `Person ${i}`,
      age: 20 + i,
      distanceKm: i * 0.7,
      verified: i % 2 === 0,
      role: i % 3 === 0 ? "ADMIN" : "MEMBER",
      seen: "2026-01-01T00:00:00Z",
      photos: [1, 2, 3].map((k) => ({ id: `${i}-${k}`, width: 640, height: 480, ready: true })),
    })),
  };
}

const inputs = Array.from({ length: 200 }, answer);

function cpuMicrosPerShaping(shaper: Shaper): number {
  const started = process.cpuUsage();
  for (let repeat = 0; repeat < 10; repeat += 1) {
    for (const input of inputs) {
      const shaped = shaper.shape(input, undefined);
      if (stringify) JSON.stringify(shaped);
    }
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / (inputs.length * 10);
}

async function main(): Promise<void> {
  printHeader("result-shaper.ts");
  const shapers: Array<[string, Shaper]> = [["this checkout", new ResultShaper(operation)]];
  if (baselineFile) {
    const baseline = (await import(resolve(baselineFile))) as { ResultShaper: typeof ResultShaper };
    shapers.push(["baseline", new baseline.ResultShaper(operation)]);
  }
  const expected = JSON.stringify(shapers[0]![1].shape(answer(), undefined));
  for (const [name, shaper] of shapers) {
    if (JSON.stringify(shaper.shape(answer(), undefined)) !== expected)
      throw new Error(`${name} shaped another answer`);
    cpuMicrosPerShaping(shaper);
  }
  const figures = new Map<string, number[]>(shapers.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (let i = 0; i < shapers.length; i += 1) {
      const [name, shaper] = shapers[(round + i) % shapers.length]!;
      figures.get(name)!.push(cpuMicrosPerShaping(shaper));
    }
  }
  console.log(
    `CPU µs per shaping${stringify ? " and JSON.stringify" : ""} of 50 people, median of ${rounds} interleaved rounds; load average ${loadAverage()}`,
  );
  for (const [name, values] of figures) {
    const median = [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(`  ${name.padEnd(14)} ${median.toFixed(1)}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
