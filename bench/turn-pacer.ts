/**
 * What TURN_PAUSE_MS does to two processes that talk over loopback: this process starts chains
 * of `--hops` sequential round trips (a 4-byte id written, echoed back by a child process) at
 * `--rates` chains per second (many chains in flight at the higher rates, as sends are in the
 * services), with the turn pacer off and on in both processes, alternating, `--rounds` times.
 * Prints per chain: both processes' CPU-ms (/proc, 10 ms ticks) and main-thread sleeps
 * (voluntary context switches), and the chain's p50/p99 in ms.
 *
 *   pnpm exec tsx bench/turn-pacer.ts [--pause-ms 1] [--rates 30,100,300,1000] [--hops 7] [--seconds 3] [--rounds 3]
 */
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import { startTurnPacer } from "@hv/kit";
import { argument, flag } from "./support/args";
import { cpuSecondsOf, loadAverage, printHeader } from "./support/service";

/** The echo end: a child process, paced when its first argument is a pause above 0. */
function echo(pauseMs: number): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", (data: Buffer) => socket.write(data));
  });
  server.listen(0, "127.0.0.1", () => {
    startTurnPacer(pauseMs);
    process.send!((server.address() as AddressInfo).port);
  });
  process.on("disconnect", () => process.exit(0));
}

function sleepsOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)![1]);
}

async function startEcho(pauseMs: number): Promise<{ child: ChildProcess; socket: net.Socket }> {
  const child = fork(process.argv[1]!, ["--echo", String(pauseMs)], { execArgv: process.execArgv });
  const port = await new Promise<number>((resolve) =>
    child.once("message", (port) => resolve(port as number)),
  );
  const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
  await new Promise((resolve) => socket.once("connect", resolve));
  return { child, socket };
}

async function run(pauseMs: number, rate: number, hops: number, seconds: number): Promise<string> {
  const { child, socket } = await startEcho(pauseMs);
  const pacer = startTurnPacer(pauseMs);
  const waiting = new Map<number, () => void>();
  let buffered: Buffer = Buffer.alloc(0);
  socket.on("data", (data: Buffer) => {
    buffered = buffered.length === 0 ? data : Buffer.concat([buffered, data]);
    let offset = 0;
    for (; offset + 4 <= buffered.length; offset += 4) {
      const id = buffered.readUInt32LE(offset);
      const resolve = waiting.get(id);
      waiting.delete(id);
      resolve?.();
    }
    buffered = buffered.subarray(offset);
  });
  let nextId = 0;
  const hop = () =>
    new Promise<void>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      const frame = Buffer.alloc(4);
      frame.writeUInt32LE(id);
      socket.write(frame);
    });
  const chain = async () => {
    const start = performance.now();
    for (let index = 0; index < hops; index += 1) await hop();
    return performance.now() - start;
  };
  await Promise.all(Array.from({ length: 20 }, chain)); // warm-up
  const before = {
    self: process.cpuUsage(),
    selfSleeps: sleepsOf(process.pid),
    child: cpuSecondsOf(child.pid!),
    childSleeps: sleepsOf(child.pid!),
  };
  const chains: Array<Promise<number>> = [];
  const total = rate * seconds;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
      while (chains.length < due) chains.push(chain());
      if (chains.length >= total) resolve();
      else setTimeout(tick, 1000 / rate);
    };
    tick();
  });
  const times = (await Promise.all(chains)).sort((a, b) => a - b);
  const self = process.cpuUsage(before.self);
  const selfMs = (self.user + self.system) / 1000;
  const childMs = (cpuSecondsOf(child.pid!) - before.child) * 1000;
  const selfSleeps = sleepsOf(process.pid) - before.selfSleeps;
  const childSleeps = sleepsOf(child.pid!) - before.childSleeps;
  pacer.stop();
  socket.destroy();
  child.disconnect();
  const per = (value: number) => (value / total).toFixed(2);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1);
  return `CPU-ms per chain ${per(selfMs + childMs)} (starter ${per(selfMs)}, echo ${per(childMs)}); sleeps per chain starter ${per(selfSleeps)}, echo ${per(childSleeps)}; chain p50 ${at(0.5)} / p99 ${at(0.99)} ms; load ${loadAverage()}`;
}

async function main(): Promise<void> {
  const echoIndex = process.argv.indexOf("--echo");
  if (echoIndex >= 0) return echo(Number(process.argv[echoIndex + 1]));
  const pauseMs = Number(argument("pause-ms") ?? "1");
  const rates = (argument("rates") ?? "30,100,300,1000").split(",").map(Number);
  const hops = flag("hops", 7);
  const seconds = flag("seconds", 3);
  const rounds = flag("rounds", 3);
  printHeader("turn-pacer.ts");
  for (let round = 1; round <= rounds; round += 1) {
    for (const rate of rates) {
      for (const pause of round % 2 === 1 ? [0, pauseMs] : [pauseMs, 0]) {
        console.log(
          `round ${round}, ${rate} chains/s, TURN_PAUSE_MS ${pause}: ${await run(pause, rate, hops, seconds)}`,
        );
      }
    }
  }
}

void main();
