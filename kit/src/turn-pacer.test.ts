import diagnosticsChannel from "node:diagnostics_channel";
import net, { type AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";
import { startTurnPacer, TURN_PAUSE_CHANNEL, type TurnPacer } from "./turn-pacer";

/**
 * A client on a thread of its own (it keeps sending while this thread is paused): it sends "a",
 * and once answered, "b", "c" and "d" as three writes 5 ms apart.
 */
const CLIENT = `
const net = require("node:net");
const { workerData, parentPort } = require("node:worker_threads");
const socket = net.connect(workerData.port, "127.0.0.1", () => socket.write("a"));
socket.once("data", () => {
  socket.write("b");
  setTimeout(() => socket.write("c"), 5);
  setTimeout(() => { socket.write("d"); socket.end(); parentPort.postMessage("sent"); }, 10);
});
`;

describe("startTurnPacer", () => {
  let server: net.Server;
  let pacer: TurnPacer | undefined;

  afterEach(async () => {
    pacer?.stop();
    pacer = undefined;
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  /** Runs the client against a server that notes the pacer's turn of each byte it reads. */
  const exchange = async (current: () => TurnPacer) => {
    const turnOf = new Map<string, number>();
    const closed = new Promise<void>((resolve) => {
      server = net.createServer((socket) => {
        socket.on("data", (chunk: Buffer) => {
          for (const letter of chunk.toString()) turnOf.set(letter, current().stats.turns);
          if (chunk.includes("a")) socket.write("ok");
        });
        socket.on("close", () => resolve());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const worker = new Worker(CLIENT, {
      eval: true,
      workerData: { port: (server.address() as AddressInfo).port },
    });
    await closed;
    await worker.terminate();
    return turnOf;
  };

  it("should handle in one turn the I/O that arrives during a pause, once busy", async () => {
    const published: number[] = [];
    const onPause = (message: unknown) => published.push((message as { ms: number }).ms);
    diagnosticsChannel.subscribe(TURN_PAUSE_CHANNEL, onPause);
    pacer = startTurnPacer(1_000);
    // A window (100 ms) with a turn per 1,000 ms: busy from then on.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const turnOf = await exchange(() => pacer!);
    pacer.stop();
    diagnosticsChannel.unsubscribe(TURN_PAUSE_CHANNEL, onPause);
    const [a, b, c, d] = ["a", "b", "c", "d"].map((letter) => turnOf.get(letter));
    expect(b).toBe(c);
    expect(c).toBe(d);
    expect(b).toBeGreaterThan(a!);
    expect(pacer.stats.pauses).toBeGreaterThan(0);
    expect(published).toHaveLength(pacer.stats.pauses);
  });

  it("should not pause while turns come less often than one per pause", async () => {
    server = net.createServer();
    pacer = startTurnPacer(1);
    for (let turn = 0; turn < 10; turn += 1) await new Promise((resolve) => setTimeout(resolve, 30));
    expect(pacer.stats.turns).toBeGreaterThanOrEqual(10);
    expect(pacer.stats.pauses).toBe(0);
  });

  it("should pause nothing and count nothing when off", async () => {
    const turnOf = await exchange(() => (pacer ??= startTurnPacer(0)));
    expect(turnOf.size).toBe(4);
    expect(pacer!.stats).toEqual({ turns: 0, pauses: 0, pausedMs: 0 });
  });

  it("should not pause after a turn that ran as long as the pause", async () => {
    server = net.createServer();
    pacer = startTurnPacer(20);
    await new Promise((resolve) => setImmediate(resolve)); // the pacer has seen a turn
    const before = { ...pacer.stats };
    const after = await new Promise<typeof before>((resolve) =>
      setTimeout(() => {
        const start = performance.now();
        while (performance.now() - start < 25); // a turn longer than the pause
        // Runs in this turn's check phase, after the pacer's own immediate.
        setImmediate(() => resolve({ ...pacer!.stats }));
      }, 1),
    );
    expect(after.turns).toBeGreaterThan(before.turns);
    expect(after.pauses - before.pauses).toBeLessThan(after.turns - before.turns);
  });
});
