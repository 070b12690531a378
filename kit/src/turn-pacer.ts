import diagnosticsChannel from "node:diagnostics_channel";
import { performance } from "node:perf_hooks";

/** Longest pause `TURN_PAUSE_MS` accepts. */
export const MAX_TURN_PAUSE_MS = 20;

/** The diagnostics channel each pause is published on (`{ ms }`), for benches and probes. */
export const TURN_PAUSE_CHANNEL = "hv.turn-pause";

/** How often the pacer decides whether to pause at all, ms of loop time. */
const WINDOW_MS = 100;

export interface TurnPacerStats {
  /** Event-loop turns seen (one per wake-up of the loop). */
  turns: number;
  /** Turns followed by a pause. */
  pauses: number;
  /** Time spent paused, ms. */
  pausedMs: number;
}

export interface TurnPacer {
  readonly stats: TurnPacerStats;
  stop(): void;
}

/**
 * Paces the event loop while it is busy: after each turn that took less than `pauseMs`, the main
 * thread sleeps (Atomics.wait) for the rest of `pauseMs`, so the next poll returns together the
 * I/O that arrived meanwhile. Busy: in the last window (~100 ms) the loop ran at least one turn
 * per `pauseMs` of the time it was not paused; otherwise (a pause would catch less than one more
 * event) no turn pauses. An event after a quiet spell is handled as soon as it arrives; a turn
 * that ran `pauseMs` or longer pays no pause; timers and I/O wait at most `pauseMs` more. Runs in
 * the check phase from an unreferenced immediate: it neither keeps the process alive nor stops
 * the loop from sleeping in its poll. `pauseMs` 0: nothing is scheduled.
 */
export function startTurnPacer(pauseMs: number): TurnPacer {
  const stats: TurnPacerStats = { turns: 0, pauses: 0, pausedMs: 0 };
  if (!(pauseMs > 0)) return { stats, stop() {} };
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const channel = diagnosticsChannel.channel(TURN_PAUSE_CHANNEL);
  const timing = performance.nodeTiming;
  let stopped = false;
  // When the previous turn's pause ended, and the loop's idle time (its poll's sleeps) then.
  let lastEnd = performance.now();
  let lastIdle = timing.idleTime;
  // The current window: when it began, its turns and its time paused; whether this window paces.
  let windowStart = lastEnd;
  let windowTurns = 0;
  let windowPaused = 0;
  let busy = false;
  const check = () => {
    if (stopped) return;
    stats.turns += 1;
    windowTurns += 1;
    const now = performance.now();
    const idle = timing.idleTime;
    if (now - windowStart >= WINDOW_MS) {
      busy = windowTurns * pauseMs >= now - windowStart - windowPaused;
      windowStart = now;
      windowTurns = 0;
      windowPaused = 0;
    }
    const pause = busy ? pauseMs - (now - lastEnd - (idle - lastIdle)) : 0;
    if (pause > 0) {
      Atomics.wait(cell, 0, 0, pause);
      stats.pauses += 1;
      const end = performance.now();
      stats.pausedMs += end - now;
      windowPaused += end - now;
      if (channel.hasSubscribers) channel.publish({ ms: end - now });
      lastEnd = end;
    } else {
      lastEnd = now;
    }
    lastIdle = idle;
    setImmediate(check).unref();
  };
  setImmediate(check).unref();
  return {
    stats,
    stop() {
      stopped = true;
    },
  };
}
