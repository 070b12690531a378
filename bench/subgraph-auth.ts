/**
 * A subgraph's token check per request (kit/src/auth/access-tokens.ts `bearerAuthenticator`, the
 * verified-token memory warm): with its revocation MGET to Redis, against the gateway's revocation
 * assertion (kit/src/auth/revocation-assertions.ts) believed instead, in one process, interleaved
 * rounds. CPU is this process's (the Redis client's side; Redis's own is not counted).
 *
 *   pnpm exec tsx bench/subgraph-auth.ts [--rounds 7] [--requests 5000] [--concurrency 1]
 */
import type { IncomingMessage } from "node:http";
import { randomBytes, randomUUID } from "node:crypto";
import {
  accessTokenDigest,
  bearerAuthenticator,
  createAccessTokenIssuer,
  createAccessTokenVerifier,
  generateSigningKeyJwk,
  publicSigningKeyJwk,
  REVOCATION_ASSERTION_HEADER,
  revocationAssertions,
  SessionRevocations,
} from "@hv/kit";
import { Redis } from "ioredis";
import { flag } from "./support/args";
import { loadAverage, printHeader } from "./support/service";

const rounds = flag("rounds", 7);
const requests = flag("requests", 5_000);
const concurrency = flag("concurrency", 1);

async function main(): Promise<void> {
  printHeader("subgraph-auth.ts");
  const key = generateSigningKeyJwk("bench-subgraph-auth");
  const issuer = createAccessTokenIssuer({ keys: [key], issuer: "hv", audience: "hv-api", ttlSeconds: 900 });
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const assertions = revocationAssertions(randomBytes(32).toString("base64url"));
  const verifier = createAccessTokenVerifier({
    jwks: { keys: [publicSigningKeyJwk(key)] },
    issuer: "hv",
    audience: "hv-api",
    revocations: new SessionRevocations(redis),
    revocationAssertions: assertions,
  });
  const authenticate = bearerAuthenticator(verifier);
  const tokens = await Promise.all(
    Array.from({ length: 50 }, () =>
      issuer.issue({ userId: randomUUID(), sessionId: randomUUID(), role: "USER" }),
    ),
  );
  const requestOf = (token: string, withAssertion: boolean) =>
    ({
      headers: {
        authorization: `Bearer ${token}`,
        ...(withAssertion
          ? { [REVOCATION_ASSERTION_HEADER]: assertions.sign(accessTokenDigest(token), Date.now()) }
          : {}),
      },
    }) as unknown as IncomingMessage;
  const variants = {
    "revocation MGET": tokens.map(({ token }) => requestOf(token, false)),
    "gateway's assertion": tokens.map(({ token }) => requestOf(token, true)),
  };
  const cpu: Record<string, number[]> = { "revocation MGET": [], "gateway's assertion": [] };
  const mgets: Record<string, number[]> = { "revocation MGET": [], "gateway's assertion": [] };
  const mgetCount = async () => {
    const stats = await redis.info("commandstats");
    return Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, seen] of Object.entries(variants)) {
      // Assertions are re-signed each round: they last 10 s.
      const fresh = name === "revocation MGET" ? seen : tokens.map(({ token }) => requestOf(token, true));
      const before = await mgetCount();
      const started = process.cpuUsage();
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < requests) {
            const request = fresh[next % fresh.length]!;
            next += 1;
            await authenticate(request.headers.authorization as string, request);
          }
        }),
      );
      const used = process.cpuUsage(started);
      cpu[name]!.push((used.user + used.system) / requests);
      mgets[name]!.push((await mgetCount()) - before - 0);
    }
  }
  for (const name of Object.keys(cpu)) {
    const sorted = cpu[name]!.slice(1).sort((a, b) => a - b);
    console.log(
      `${name.padEnd(20)} CPU µs/request median ${sorted[sorted.length >> 1]!.toFixed(1)} (rounds after the first: ${sorted.map((v) => v.toFixed(1)).join(", ")}); MGETs in Redis (all clients) per round: ${mgets[name]!.join(", ")}`,
    );
  }
  console.log(`${requests} requests a round, ${concurrency} at a time; load average ${loadAverage()}`);
  redis.disconnect();
}

void main();
