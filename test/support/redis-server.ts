import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Redis from "ioredis";
import { freePort } from "./ports";
import { waitFor } from "./wait";

export { waitFor };

/**
 * Private `redis-server` processes for tests that must stop, kill or fail over a Redis: on
 * 127.0.0.1, on a free port, without persistence, each in a temporary directory of its own
 * (removed when it stops). A sentinel is the same binary with `--sentinel` and a config file.
 */
export interface RedisServer {
  port: number;
  /** The process's id (e.g. for `chrt`). */
  pid: number;
  /** The directory it runs in (a sentinel's config file, which it rewrites, is there). */
  dir: string;
  running(): boolean;
  /** A client to this very process (not through any sentinel), the same on every call; closed by `stop()`. */
  client(): Redis;
  /** SIGKILL (default) or SIGTERM, then waits for the exit; the directory goes too. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** The end of what it wrote (its log), for a failing test's message. */
  output(): string;
}

export interface RedisServerOptions {
  /** Extra command-line settings, e.g. `["--replicaof", "127.0.0.1", "6380"]`. */
  args?: string[];
  /** A config file's text (port, bind and dir are added); needed for `--sentinel`. */
  config?: string;
  sentinel?: boolean;
  /** Listen on this port (e.g. to start a Redis again where the stopped one was); default a free one. */
  port?: number;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), "hv-redis-"));
  const args: string[] = [];
  if (options.config !== undefined || options.sentinel) {
    const file = path.join(dir, options.sentinel ? "sentinel.conf" : "redis.conf");
    writeFileSync(file, `port ${port}\nbind 127.0.0.1\ndir ${dir}\n${options.config ?? ""}\n`);
    args.push(file);
    if (options.sentinel) args.push("--sentinel");
  }
  args.push("--port", String(port), "--bind", "127.0.0.1");
  if (!options.sentinel) args.push("--save", "", "--appendonly", "no", "--dir", dir);
  args.push(...(options.args ?? []));

  const child: ChildProcess = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString("utf8")).slice(-8_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  let direct: Redis | undefined;

  const server: RedisServer = {
    port,
    pid: child.pid!,
    dir,
    running,
    client() {
      if (!direct) {
        direct = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
        direct.on("error", () => undefined);
      }
      return direct;
    },
    async stop(signal = "SIGKILL") {
      direct?.disconnect();
      if (running()) child.kill(signal);
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => log,
  };

  try {
    await waitFor(`redis-server on port ${port} to answer`, async () => {
      if (!running()) throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}):\n${log}`);
      const probe = new Redis({
        host: "127.0.0.1",
        port,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on("error", () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === "PONG";
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    });
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
