/**
 * A request's client address as every process reads it (kit/src/ip.ts `clientIpResolver`, a
 * subgraph behind the gateway: the peer 127.0.0.1 and `X-Forwarded-For: <client>`), against
 * proxy-addr's compiled trust asked afresh for each request, in one process, interleaved rounds.
 *
 *   pnpm exec tsx bench/client-ip.ts [--rounds 7] [--requests 200000] [--trust loopback]
 */
import type { IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import { clientIpResolver, unmapIpv4 } from "@hv/kit";
import { argument, flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const rounds = flag("rounds", 7);
const requests = flag("requests", 200_000);
const trust = argument("trust") ?? "loopback";

printHeader("client-ip.ts");

/** kit's own proxy-addr (a dependency of kit, not of the benches). */
const proxyaddr = createRequire(require.resolve("@hv/kit/package.json"))("proxy-addr") as {
  (request: IncomingMessage, trust: (address: string, hop: number) => boolean): string;
  compile(entries: string[]): (address: string, hop: number) => boolean;
};

/** A few hundred phones behind the gateway, as the subgraphs see them. */
const requestsSeen = Array.from(
  { length: 500 },
  (_, index) =>
    ({
      headers: { "x-forwarded-for": `198.51.${index >> 8}.${index & 255}` },
      socket: { remoteAddress: index % 2 ? "::ffff:127.0.0.1" : "127.0.0.1" },
    }) as unknown as IncomingMessage,
);

const compiled = proxyaddr.compile(trust.split(",").map((entry) => entry.trim()));
const variants: Record<string, (request: IncomingMessage) => string> = {
  "proxy-addr each time": (request) => unmapIpv4(proxyaddr(request, compiled)),
  clientIpResolver: clientIpResolver(trust),
};
for (const [name, resolve] of Object.entries(variants)) {
  const a = resolve(requestsSeen[3]!);
  if (a !== variants["proxy-addr each time"]!(requestsSeen[3]!)) throw new Error(`${name} answers ${a}`);
}

const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
let sink = 0;
for (let round = 0; round < rounds; round += 1) {
  for (const [name, resolve] of Object.entries(variants)) {
    const started = process.cpuUsage();
    for (let i = 0; i < requests; i += 1) sink += resolve(requestsSeen[i % requestsSeen.length]!).length;
    const used = process.cpuUsage(started);
    cpu[name]!.push(((used.user + used.system) * 1000) / requests);
  }
}
for (const [name, values] of Object.entries(cpu)) {
  const sorted = values.slice(1).sort((a, b) => a - b);
  console.log(
    `${name.padEnd(22)} CPU ns/request median ${sorted[sorted.length >> 1]!.toFixed(0)} (rounds after the first: ${sorted.map((v) => v.toFixed(0)).join(", ")})`,
  );
}
console.log(`load average ${loadAverage()} (checksum ${sink})`);
