import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createMediaDb, type MediaDb } from "@hv/media/src/db";
import { createMediaQueue, enqueueProcessing } from "@hv/media/src/queue";
import { sourceKey } from "@hv/media/src/storage";
import { LocalStorage } from "@hv/media/src/storage/local";
import { shortVideo } from "./media-support";

const ROOT = path.join(__dirname, "..", "..", "..");

interface WorkerProcess {
  child: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Media worker processes as production runs them (`node --import tsx worker-main.ts`), each in its
 * own process group so a test can kill one with everything it started (sandbox children, ffmpeg).
 */
describe("the media worker process", () => {
  let dir: string;
  let db: MediaDb;
  const prefix = `hvtest_worker_${randomUUID().slice(0, 8)}`;
  const queue = createMediaQueue(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", prefix);
  const running: WorkerProcess[] = [];

  /**
   * The real ffmpeg, started 20 s late (but answering `-version` at once for the start-up check):
   * a worker using it is surely in the middle of a job when the test acts, however fast the
   * machine transcodes the clip.
   */
  let slowFfmpeg: string;
  /** The real ffmpeg reading its input at the clip's own pace (`-re`): a 30 s clip takes 30 s. */
  let realtimeFfmpeg: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "hv-worker-test-"));
    db = createMediaDb(process.env.MEDIA_DATABASE_URL ?? "");
    slowFfmpeg = path.join(dir, "slow-ffmpeg.sh");
    const ffmpeg = process.env.FFMPEG_PATH || "ffmpeg";
    realtimeFfmpeg = path.join(dir, "realtime-ffmpeg.sh");
    await writeFile(
      realtimeFfmpeg,
      `#!/bin/sh\ncase "$*" in *-version*) exec ${JSON.stringify(ffmpeg)} "$@" ;; esac\nexec ${JSON.stringify(ffmpeg)} -re "$@"\n`,
      { mode: 0o755 },
    );
    await writeFile(
      slowFfmpeg,
      `#!/bin/sh\ncase "$*" in *-version*) ;; *) sleep 20 </dev/null >/dev/null 2>&1 ;; esac\nexec ${JSON.stringify(ffmpeg)} "$@"\n`,
      { mode: 0o755 },
    );
  });
  // A test that failed half-way leaves its workers running: they would take the next test's jobs.
  afterEach(async () => {
    const left = running.filter(
      (worker) => worker.child.exitCode === null && worker.child.signalCode === null,
    );
    for (const worker of left) if (worker.child.pid) process.kill(-worker.child.pid, "SIGKILL");
    await Promise.all(left.map((worker) => worker.exited));
  });
  afterAll(async () => {
    for (const worker of running) {
      if (worker.child.exitCode === null && worker.child.signalCode === null && worker.child.pid)
        process.kill(-worker.child.pid, "SIGKILL");
    }
    await Promise.all(running.map((worker) => worker.exited));
    await queue.obliterate({ force: true });
    await queue.close();
    await db.$disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  function startWorker(overrides: Record<string, string> = {}): WorkerProcess {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(ROOT, "subgraphs/media/src/worker-main.ts")],
      {
        cwd: ROOT,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          NODE_ENV: "test",
          EVENTS_PREFIX: prefix,
          MEDIA_LOCAL_DIR: dir,
          MEDIA_WORKER_PORT: "0",
          MEDIA_WORKER_LOCK_SECONDS: "2",
          LOG_LEVEL: "info",
          ...overrides,
        },
      },
    );
    const output: string[] = [];
    child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal })),
    );
    const worker = { child, output, exited };
    running.push(worker);
    return worker;
  }

  /** A VIDEO row whose source is in storage and whose job is queued: what completeUpload leaves. */
  async function queuedVideo(clip: Buffer): Promise<string> {
    const ownerId = randomUUID();
    const id = randomUUID();
    const key = sourceKey(ownerId, id);
    const storage = new LocalStorage({ dir, secret: "x".repeat(32), publicUrl: () => "http://127.0.0.1" });
    await mkdir(path.dirname(storage.pathOf(key)), { recursive: true });
    await writeFile(storage.pathOf(key), clip);
    await db.media.create({
      data: {
        id,
        ownerId,
        kind: "VIDEO",
        purpose: "CHAT_ATTACHMENT",
        contentType: "video/mp4",
        byteSize: clip.length,
        sourceKey: key,
        uploadedAt: new Date(),
      },
    });
    await enqueueProcessing(queue, id);
    return id;
  }

  /** Until the worker said it runs: its signal handlers are in place from then on. */
  async function untilRunning(worker: WorkerProcess): Promise<void> {
    for (
      let attempt = 0;
      attempt < 1200 && !worker.output.join("").includes("worker running");
      attempt += 1
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Until the worker logged a line matching `pattern` (bounded; the caller asserts). */
  async function untilLogged(worker: WorkerProcess, pattern: RegExp): Promise<void> {
    for (let attempt = 0; attempt < 400 && !pattern.test(worker.output.join("")); attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function waitForStatus(id: string, statuses: string[], tries = 1200): Promise<string> {
    for (let attempt = 0; attempt < tries; attempt += 1) {
      const row = await db.media.findUnique({ where: { id } });
      if (row && statuses.includes(row.status)) return row.status;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`media ${id} never reached ${statuses.join("/")}`);
  }

  it("should let a second worker finish the job of a worker killed in the middle of it", async () => {
    const clip = await shortVideo(6, "1280x720");
    const id = await queuedVideo(clip);
    const first = startWorker({ FFMPEG_PATH: slowFfmpeg });
    await waitForStatus(id, ["PROCESSING"]);
    process.kill(-(first.child.pid ?? 0), "SIGKILL"); // the worker, its sandboxed processor and ffmpeg
    expect((await first.exited).signal).toBe("SIGKILL");
    // It died mid-job: nothing finished the media, and the job is still held by the dead worker's lock.
    expect((await db.media.findUnique({ where: { id } }))?.status).toBe("PROCESSING");
    expect(await (await queue.getJob(id))?.getState()).toBe("active");

    const second = startWorker();
    expect(await waitForStatus(id, ["READY", "FAILED"])).toBe("READY");
    const row = await db.media.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({
      status: "READY",
      width: 1280,
      height: 720,
      failureReason: null,
      sourceKey: null,
    });
    expect((row.variants as Array<{ name: string }>).map((variant) => variant.name).sort()).toEqual([
      "poster.jpg",
      "video.mp4",
    ]);
    // The row is READY before the worker hears of the job's completion and logs it.
    await untilLogged(second, /"msg":"media job completed"/);
    expect(second.output.join("")).toMatch(/"msg":"media job completed"/);
    expect(first.output.join("")).not.toMatch(/"msg":"media job completed"/);

    // SIGTERM is a graceful stop: the running job is finished before the process exits.
    const next = await queuedVideo(clip);
    await untilRunning(second);
    await waitForStatus(next, ["PROCESSING", "READY"]);
    process.kill(second.child.pid ?? 0, "SIGTERM");
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect((await db.media.findUniqueOrThrow({ where: { id: next } })).status).toBe("READY");
  });

  /** Names (comm) of the live processes in process group `pgid`, from /proc. */
  async function processesInGroup(pgid: number): Promise<string[]> {
    const names: string[] = [];
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
      // pid (comm) state ppid pgrp …: comm may hold spaces, so split after its closing parenthesis.
      const close = stat.lastIndexOf(")");
      const [state, , pgrp] = stat.slice(close + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") names.push(stat.slice(stat.indexOf("(") + 1, close));
    }
    return names;
  }

  it("should leave no ffmpeg running when the worker alone is SIGKILLed in the middle of a transcode", async () => {
    const id = await queuedVideo(await shortVideo(30, "320x240"));
    const worker = startWorker({ FFMPEG_PATH: realtimeFfmpeg });
    const pgid = worker.child.pid ?? 0;
    // PROCESSING first: the start-up check's `ffmpeg -version` is not the transcode.
    await waitForStatus(id, ["PROCESSING"]);
    for (
      let attempt = 0;
      attempt < 1200 && !(await processesInGroup(pgid)).includes("ffmpeg");
      attempt += 1
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await processesInGroup(pgid)).toContain("ffmpeg");
    // Only the worker: its sandboxed processor and ffmpeg are left to notice on their own.
    process.kill(pgid, "SIGKILL");
    expect((await worker.exited).signal).toBe("SIGKILL");
    // The transcode had about 30 s to go; everything the worker started is gone well before.
    let left = await processesInGroup(pgid);
    for (let attempt = 0; attempt < 100 && left.length > 0; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      left = await processesInGroup(pgid);
    }
    expect(left).toEqual([]);
  });

  it("should fail a job that runs past MEDIA_PROCESSING_TIMEOUT_SECONDS with PROCESSING_TIMEOUT, without retrying it", async () => {
    const id = await queuedVideo(await shortVideo(6, "1280x720"));
    const worker = startWorker({ MEDIA_PROCESSING_TIMEOUT_SECONDS: "1", FFMPEG_PATH: slowFfmpeg });
    expect(await waitForStatus(id, ["READY", "FAILED"])).toBe("FAILED");
    expect(await db.media.findUniqueOrThrow({ where: { id } })).toMatchObject({
      failureReason: "PROCESSING_TIMEOUT",
      sourceKey: null,
    });
    const job = await queue.getJob(id);
    for (let attempt = 0; attempt < 400 && (await job?.getState()) !== "failed"; attempt += 1)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const finished = await queue.getJob(id);
    expect({ state: await finished?.getState(), attempts: finished?.attemptsMade }).toEqual({
      state: "failed",
      attempts: 1,
    });
    process.kill(worker.child.pid ?? 0, "SIGTERM");
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  });

  it("should hand a running job back to the queue when the drain time is over at SIGTERM, counting no attempt", async () => {
    const id = await queuedVideo(await shortVideo(6, "1280x720"));
    const first = startWorker({ MEDIA_WORKER_DRAIN_SECONDS: "1", FFMPEG_PATH: slowFfmpeg });
    await untilRunning(first);
    await waitForStatus(id, ["PROCESSING"]);
    process.kill(first.child.pid ?? 0, "SIGTERM");
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.output.join("")).toMatch(/handing them back to the queue/);
    const job = await queue.getJob(id);
    expect({
      state: await job?.getState(),
      attempts: job?.attemptsMade,
      stalled: job?.stalledCounter ?? 0,
    }).toEqual({ state: "waiting", attempts: 0, stalled: 0 });
    expect((await db.media.findUniqueOrThrow({ where: { id } })).status).toBe("PROCESSING");

    const second = startWorker();
    expect(await waitForStatus(id, ["READY", "FAILED"])).toBe("READY");
    process.kill(second.child.pid ?? 0, "SIGTERM");
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });

  it("should not start without a working ffmpeg, and should remove temp folders of dead processes at start", async () => {
    const missing = startWorker({ FFMPEG_PATH: path.join(dir, "no-such-ffmpeg") });
    expect((await missing.exited).code).toBe(1);
    expect(missing.output.join("")).toMatch(/FFMPEG_PATH=.*no-such-ffmpeg cannot run/);

    const tmp = await mkdtemp(path.join(os.tmpdir(), "hv-worker-tmp-"));
    await mkdir(path.join(tmp, "hv-media-999999999-0f0e-stale"));
    await mkdir(path.join(tmp, `hv-media-${process.pid}-0f0e-live`));
    await mkdir(path.join(tmp, "unrelated"));
    const worker = startWorker({ TMPDIR: tmp });
    for (
      let attempt = 0;
      attempt < 400 && !worker.output.join("").includes("media-worker worker running");
      attempt += 1
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await readdir(tmp)).filter((name) => !name.startsWith("tsx-")).sort()).toEqual([
      `hv-media-${process.pid}-0f0e-live`,
      "unrelated",
    ]); // tsx keeps its cache there
    process.kill(worker.child.pid ?? 0, "SIGTERM");
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    await rm(tmp, { recursive: true, force: true });
  });
});
