/**
 * What one loopback socket write costs here, both ends: this process writes small frames to a
 * reader in a child process (it reads and drops them), one write per timer turn every
 * `--interval-ms` (so the reader sleeps between writes and each write wakes it, as in the
 * services), one frame per write, or `--batch` frames corked into one write, or none (the turns
 * alone, the baseline to subtract). Rounds alternate the ways; each prints the writer's and the
 * reader's CPU-µs (/proc) per turn.
 *
 *   pnpm exec tsx bench/loopback-writes.ts [--turns 5000] [--interval-ms 1] [--batch 2] [--bytes 300] [--rounds 4]
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { flag } from "./support/args";
import { cpuSecondsOf, loadAverage, printHeader } from "./support/service";

const READER = `
const net = require("node:net");
const server = net.createServer((socket) => socket.on("data", () => undefined));
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
`;

async function main(): Promise<void> {
  const turns = flag("turns", 5_000);
  const intervalMs = flag("interval-ms", 1);
  const batch = flag("batch", 2);
  const bytes = flag("bytes", 300);
  const rounds = flag("rounds", 4);
  printHeader("loopback-writes.ts");
  const reader = spawn(process.execPath, ["-e", READER], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve) =>
    reader.stdout.once("data", (data: Buffer) => resolve(Number(String(data).trim()))),
  );
  const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
  await new Promise((resolve) => socket.once("connect", resolve));
  const frame = Buffer.alloc(bytes, 0x61);

  /** `turns` timer turns, `perWrite` frames corked into one write each (none: the turns alone): CPU-µs per turn of each end. */
  const run = async (perWrite: number) => {
    const self = process.cpuUsage();
    const readerBefore = cpuSecondsOf(reader.pid!);
    for (let i = 0; i < turns; i += 1) {
      if (perWrite > 1) socket.cork();
      for (let j = 0; j < perWrite; j += 1) socket.write(frame);
      if (perWrite > 1) socket.uncork();
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    const used = process.cpuUsage(self);
    const writerUs = used.user + used.system;
    const readerUs = (cpuSecondsOf(reader.pid!) - readerBefore) * 1e6;
    return { writerUs: writerUs / turns, readerUs: readerUs / turns };
  };

  await run(1); // warm-up
  const ways = [0, 1, batch];
  for (let round = 1; round <= rounds; round += 1) {
    for (const perWrite of round % 2 === 1 ? ways : [...ways].reverse()) {
      const { writerUs, readerUs } = await run(perWrite);
      console.log(
        `round ${round}, ${perWrite === 0 ? "no write" : `one write of ${perWrite} frame(s) of ${bytes} B`} per turn: CPU-µs per turn writer ${writerUs.toFixed(1)} + reader ${readerUs.toFixed(1)} = ${(writerUs + readerUs).toFixed(1)}; load average ${loadAverage()}`,
      );
    }
  }
  socket.destroy();
  reader.kill();
}

void main();
