import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import WebSocket from "ws";
import { BlocklistStore, parseCidr } from "@hv/gateway/src/protection";
import { closeRedis, createLogger, createRedis, type Redis } from "@hv/kit";
import { eventually } from "../gateway/harness";
import { codes, post, randomIpv6, startLightGateway, type LightGateway } from "./support";

const ROOT = path.join(__dirname, "..", "..", "..");
const run = promisify(execFile);

/** `pnpm run blocklist -- …` as an operator runs it (tsx on scripts/blocklist.ts). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      path.join(ROOT, "node_modules", ".bin", "tsx"),
      [path.join(ROOT, "scripts", "blocklist.ts"), ...args],
      { cwd: ROOT },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("parseCidr", () => {
  it("should take IPv4 and IPv6 blocks and bare addresses, in canonical form", () => {
    expect(parseCidr("203.0.113.0/24").cidr).toBe("203.0.113.0/24");
    expect(parseCidr(" 203.0.113.9 ").cidr).toBe("203.0.113.9/32");
    expect(parseCidr("2001:DB8:0:0:0::/32").cidr).toBe("2001:db8::/32");
    expect(parseCidr("2001:db8::1").cidr).toBe("2001:db8::1/128");
  });
  it.each([
    "",
    "203.0.113.0/33",
    "2001:db8::/129",
    "203.0.113/24",
    "example.com",
    "10.0.0.0/8/8",
    "10.0.0.0/-1",
    "10.0.0.0/ 8",
  ])("should refuse %j", (text) => {
    expect(() => parseCidr(text)).toThrow();
  });
});

describe("the IP blocklist (two gateway replicas, the CLI, HTTP and WebSocket)", () => {
  let one: LightGateway;
  let two: LightGateway;
  let redis: Redis;
  let store: BlocklistStore;
  beforeAll(async () => {
    // A long poll: changes must arrive by pub/sub.
    one = await startLightGateway({ GATEWAY_BLOCKLIST_REFRESH_SECONDS: "3600" });
    two = await startLightGateway(
      { GATEWAY_BLOCKLIST_REFRESH_SECONDS: "3600" },
      { subgraph: one.subgraph, keyPrefix: one.keyPrefix },
    );
    redis = createRedis("redis://127.0.0.1:6379", createLogger({ service: "test", level: "silent" }));
    store = new BlocklistStore(redis, one.keyPrefix);
  });
  afterAll(async () => {
    await redis?.del(`${one.keyPrefix}:blocklist`);
    await two?.stop();
    await one?.stop();
    if (redis) await closeRedis(redis);
  });

  const ask = (gateway: LightGateway, ip: string) =>
    post(gateway.url, { query: `{ echo(text: "hi") }` }, { "x-forwarded-for": ip });
  const blocked = async (gateway: LightGateway, ip: string) => (await ask(gateway, ip)).status === 403;

  it("should block a CIDR added with the CLI on every replica at once, and unblock it on remove", async () => {
    const added = await cli([
      "add",
      "198.51.100.0/24",
      "--reason",
      "credential stuffing",
      "--prefix",
      one.keyPrefix,
    ]);
    expect(added).toMatchObject({ code: 0, stdout: expect.stringContaining("blocked 198.51.100.0/24") });
    await eventually(
      async () => (await blocked(one, "198.51.100.77")) && (await blocked(two, "198.51.100.3")),
      "both replicas to block",
    );
    const refused = await ask(two, "198.51.100.77");
    expect({
      status: refused.status,
      codes: codes(refused),
      reason: refused.body.errors?.[0]?.extensions?.reason,
    }).toEqual({
      status: 403,
      codes: ["FORBIDDEN"],
      reason: "blocked",
    });
    // Outside the block, and the gateway's own loopback: served.
    expect((await ask(one, "198.51.101.1")).body).toEqual({ data: { echo: "hi" } });
    expect((await post(one.url, { query: `{ echo(text: "hi") }` })).status).toBe(200);

    const listed = await cli(["list", "--prefix", one.keyPrefix]);
    expect(listed.stdout).toMatch(/198\.51\.100\.0\/24\t\S+\tcredential stuffing/);

    expect((await cli(["remove", "198.51.100.0/24", "--prefix", one.keyPrefix])).code).toBe(0);
    await eventually(
      async () => !(await blocked(one, "198.51.100.77")) && !(await blocked(two, "198.51.100.77")),
      "both replicas to unblock",
    );
  });

  it("should refuse bad CLI input with a message and a non-zero exit", async () => {
    const bad = await cli(["add", "198.51.100.0/40", "--reason", "x", "--prefix", one.keyPrefix]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/at most 32/);
    expect((await cli(["add", "198.51.100.0/24", "--prefix", one.keyPrefix])).stderr).toMatch(/--reason/);
    expect((await cli(["frobnicate"])).stderr).toMatch(/usage/);
    expect(await store.list()).toEqual([]);
  });

  it("should block an IPv6 range", async () => {
    const ip = randomIpv6();
    const block = `${ip.split(":").slice(0, 3).join(":")}::/48`;
    await store.add(block, "scraper");
    await eventually(() => blocked(one, ip), "the IPv6 block");
    expect(await blocked(one, randomIpv6())).toBe(false);
    await store.remove(block);
    await eventually(async () => !(await blocked(one, ip)), "the IPv6 unblock");
  });

  it("should refuse a WebSocket upgrade from a blocked address, and close open connections of an address blocked later", async () => {
    const ip = "198.51.100.200";
    const open = new WebSocket(one.wsUrl, "graphql-transport-ws", { headers: { "x-forwarded-for": ip } });
    const acked = new Promise<void>((resolve, reject) => {
      open.on("open", () => open.send(JSON.stringify({ type: "connection_init" })));
      open.on("message", (data: Buffer) => {
        if ((JSON.parse(data.toString()) as { type: string }).type === "connection_ack") resolve();
      });
      open.on("error", reject);
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      open.on("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    );
    await acked;

    await store.add("198.51.100.192/26", "abuse");
    expect(await closed).toEqual({ code: 4403, reason: "Forbidden: blocked" });

    const refused = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(one.wsUrl, "graphql-transport-ws", { headers: { "x-forwarded-for": ip } });
      socket.on("unexpected-response", (_req, res) => {
        resolve(res.statusCode ?? 0);
        socket.terminate();
      });
      socket.on("open", () => reject(new Error("the upgrade was accepted")));
      socket.on("error", () => undefined);
    });
    expect(refused).toBe(403);
    await store.remove("198.51.100.192/26");
  });
});
