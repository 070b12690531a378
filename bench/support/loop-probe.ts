/**
 * Loaded into a service process by a bench (`node --import tsx --import bench/support/loop-probe.ts`)
 * when it wants to see where that process's latency goes: an event-loop delay histogram
 * (perf_hooks.monitorEventLoopDelay, 10 ms resolution) and every garbage collection (a
 * PerformanceObserver on `gc` entries). On SIGUSR2 it writes what it saw since the previous SIGUSR2
 * to the file named by BENCH_PROBE_FILE (JSON, see ProbeReport) and starts over; the report ends
 * with the process's memory after a full collection (when node runs with --expose-gc). With
 * BENCH_HEAP_SNAPSHOT_DIR set (in the bench's environment, which every service inherits), the
 * first two reports (before and after the bench's connections) also write a heap snapshot there,
 * `<pid>-<report>.heapsnapshot`, to see what each connection keeps. With BENCH_REDUCE_MEMORY=1 each
 * report also reads RSS after a memory-reducing collection (it shrinks the young generation to its
 * minimum, so the next traffic scavenges more: not for the CPU figures that follow).
 * When `<BENCH_PROBE_FILE>.quiet` exists at a report, the histogram's timer stops until a report
 * finds it gone (a window whose CPU figure should not carry the probe's 100 wake-ups a second).
 * Every report counts the bytes the JS heap allocated in the window (v8.GCProfiler: the used heap
 * before each collection less the used heap after the one before; Buffers' backing stores are
 * outside it). With BENCH_ALLOC_PROFILE_DIR set, each report also writes V8's sampling allocation
 * profile of its window there, `<probe file's name>-<report>.heapprofile` (objects collected since included; open
 * it in Chrome DevTools' Memory tab or summarize it with bench/support/alloc-summary.ts).
 * Never imported by the services themselves.
 */
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Session } from "node:inspector";
import { GCProfiler, getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from "node:v8";
import { constants, monitorEventLoopDelay, performance, PerformanceObserver } from "node:perf_hooks";

export interface ProbeReport {
  /** Event-loop delay percentiles and maximum over the window, ms. */
  loopDelayMs: { p50: number; p99: number; max: number };
  /** Garbage collections in the window: minor (scavenge) and major (mark-compact, incremental). */
  gc: {
    minor: number;
    major: number;
    totalMs: number;
    maxMs: number;
    majorMaxMs: number;
    /** The young generation's size (V8's `new_space`, MiB) after the window's collections: smallest and largest seen. */
    newSpaceMb: { min: number; max: number };
    /** KiB the JS heap allocated in the window (collected since or not), from v8.GCProfiler. */
    allocatedKb: number;
  };
  /**
   * KiB, after a full collection when `--expose-gc` was given: `heapTotalKb` is the JS heap V8 has
   * committed (used or not, the young generation included), `newSpaceKb` the young generation's part.
   */
  memory: {
    rssKb: number;
    heapUsedKb: number;
    heapTotalKb: number;
    newSpaceKb: number;
    externalKb: number;
    collected: boolean;
    /**
     * RSS after a memory-reducing full collection as well (V8's "last resort": it gives the young
     * generation's and freed pages back to the system), when BENCH_REDUCE_MEMORY=1; else absent.
     */
    reducedRssKb?: number;
    /** How long that memory-reducing collection held the main thread, ms (BENCH_REDUCE_MEMORY=1). */
    reducedGcMs?: number;
  };
}

type GcCounts = ProbeReport["gc"];

/** The young generation's current size, MiB. */
function newSpaceMb(): number {
  const space = getHeapSpaceStatistics().find((each) => each.space_name === "new_space");
  return space ? space.space_size / 2 ** 20 : NaN;
}

/**
 * Bytes the JS heap allocated since the previous `take()`: V8 reports the used heap before and
 * after every collection (v8.GCProfiler), and between two collections the used heap grows only by
 * allocation.
 */
export class AllocationCounter {
  private profiler = new GCProfiler();
  private usedAtStart = 0;

  constructor() {
    this.restart();
  }

  private restart(): void {
    this.profiler.start();
    this.usedAtStart = getHeapStatistics().used_heap_size;
  }

  /** Bytes allocated since the previous take (or the start); starts a new window. */
  take(): number {
    const seen = this.profiler.stop();
    let allocated = 0;
    let used = this.usedAtStart;
    for (const collection of seen?.statistics ?? []) {
      allocated += collection.beforeGC.heapStatistics.usedHeapSize - used;
      used = collection.afterGC.heapStatistics.usedHeapSize;
    }
    allocated += getHeapStatistics().used_heap_size - used;
    this.profiler = new GCProfiler();
    this.restart();
    return allocated;
  }
}

/**
 * An event-loop delay histogram and a GC tally of THIS process, read and restarted by `take()`.
 * Collections that start before `ignoreUntil` (a forced full collection) are left out.
 */
export class LoopWindow {
  /** BENCH_LOOP_DELAY=off: no histogram, so no timer waking the process every 10 ms (its own cost shows in idle CPU). */
  private readonly histogram =
    process.env.BENCH_LOOP_DELAY === "off" ? undefined : monitorEventLoopDelay({ resolution: 10 });
  private gc: GcCounts = LoopWindow.noGc();
  private readonly allocation = new AllocationCounter();
  private ignoreUntil = 0;
  /** Whether the histogram's timer is stopped for the current window (`quiet`). */
  private paused = false;

  constructor() {
    this.histogram?.enable();
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (entry.startTime < this.ignoreUntil) continue;
        const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
        const major =
          kind === constants.NODE_PERFORMANCE_GC_MAJOR || kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL;
        if (major) {
          this.gc.major += 1;
          this.gc.majorMaxMs = Math.max(this.gc.majorMaxMs, entry.duration);
        } else this.gc.minor += 1;
        this.gc.totalMs += entry.duration;
        const newSpace = newSpaceMb();
        const first = this.gc.minor + this.gc.major === 1;
        this.gc.newSpaceMb.min = first ? newSpace : Math.min(this.gc.newSpaceMb.min, newSpace);
        this.gc.newSpaceMb.max = Math.max(this.gc.newSpaceMb.max, newSpace);
        this.gc.maxMs = Math.max(this.gc.maxMs, entry.duration);
      }
    });
    observer.observe({ entryTypes: ["gc"] });
  }

  private static noGc(): GcCounts {
    return {
      minor: 0,
      major: 0,
      totalMs: 0,
      maxMs: 0,
      majorMaxMs: 0,
      newSpaceMb: { min: 0, max: 0 },
      allocatedKb: 0,
    };
  }

  /** Stops (true) or restarts the histogram's 10 ms timer from now on; a stopped window reports no delay. */
  quiet(paused: boolean): void {
    if (!this.histogram || paused === this.paused) return;
    this.paused = paused;
    if (paused) this.histogram.disable();
    else this.histogram.enable();
  }

  /** Collections started before now are not counted (the caller just forced one). */
  ignoreCollectionsSoFar(): void {
    this.ignoreUntil = performance.now();
  }

  /** What was seen since the previous take (or the start); starts a new window. */
  take(): Pick<ProbeReport, "loopDelayMs" | "gc"> {
    const seen = {
      loopDelayMs:
        this.histogram && !this.paused
          ? {
              p50: this.histogram.percentile(50) / 1e6,
              p99: this.histogram.percentile(99) / 1e6,
              max: this.histogram.max / 1e6,
            }
          : { p50: NaN, p99: NaN, max: NaN },
      gc: { ...this.gc, allocatedKb: Math.round(this.allocation.take() / 1024) },
    };
    this.histogram?.reset();
    this.gc = LoopWindow.noGc();
    return seen;
  }
}

/**
 * V8's sampling allocation profiler in this process (objects collected since included), restarted
 * by `write()` after writing what it sampled to a file.
 */
class AllocationSampler {
  private readonly session = new Session();

  constructor() {
    this.session.connect();
    this.post("HeapProfiler.enable");
    this.start();
  }

  /** Inspector calls within a process answer before `post` returns. */
  private post(method: string, params?: object): unknown {
    let answer: unknown;
    let failure: Error | null = null;
    this.session.post(method, params, (error, result) => {
      failure = error;
      answer = result;
    });
    if (failure) throw failure;
    return answer;
  }

  private start(): void {
    this.post("HeapProfiler.startSampling", {
      includeObjectsCollectedByMinorGC: true,
      includeObjectsCollectedByMajorGC: true,
    });
  }

  write(file: string): void {
    const { profile } = this.post("HeapProfiler.stopSampling") as { profile: unknown };
    writeFileSync(file, JSON.stringify(profile));
    this.start();
  }
}

const file = process.env.BENCH_PROBE_FILE;
const snapshotDir = process.env.BENCH_HEAP_SNAPSHOT_DIR;
const allocationDir = process.env.BENCH_ALLOC_PROFILE_DIR;
let reports = 0;
if (file) {
  const window = new LoopWindow();
  const sampler = allocationDir ? new AllocationSampler() : undefined;
  process.on("SIGUSR2", () => {
    const collect = (globalThis as { gc?: () => void }).gc;
    collect?.();
    window.ignoreCollectionsSoFar();
    const usage = process.memoryUsage();
    reports += 1;
    if (snapshotDir && reports <= 2)
      writeHeapSnapshot(path.join(snapshotDir, `${process.pid}-${reports}.heapsnapshot`));
    if (allocationDir)
      sampler?.write(path.join(allocationDir, `${path.basename(file, ".json")}-${reports}.heapprofile`));
    const report: ProbeReport = {
      ...window.take(),
      memory: {
        rssKb: Math.round(usage.rss / 1024),
        heapUsedKb: Math.round(usage.heapUsed / 1024),
        heapTotalKb: Math.round(usage.heapTotal / 1024),
        newSpaceKb: Math.round(newSpaceMb() * 1024),
        externalKb: Math.round(usage.external / 1024),
        collected: collect !== undefined,
      },
    };
    const reduce = (globalThis as { gc?: (options: object) => void }).gc;
    if (process.env.BENCH_REDUCE_MEMORY === "1" && reduce) {
      const started = performance.now();
      reduce({ type: "major", execution: "sync", flavor: "last-resort" });
      report.memory.reducedGcMs = performance.now() - started;
      report.memory.reducedRssKb = Math.round(process.memoryUsage().rss / 1024);
    }
    writeFileSync(file, JSON.stringify(report));
    window.quiet(existsSync(`${file}.quiet`));
  });
}
