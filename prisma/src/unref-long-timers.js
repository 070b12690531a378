// Preloaded into the Prisma CLI by src/index.ts (node -r). Prisma 6's WASM schema engine starts a
// 10 s timer (its migration-lock timeout) that it never clears, so every `migrate` command would sit
// idle for 10 s after finishing. Unref'd timers still fire while the process has work to do; they just
// don't keep an otherwise finished process alive.
"use strict";
const { setTimeout: originalSetTimeout } = globalThis;
globalThis.setTimeout = Object.assign(function setTimeout(callback, ms, ...args) {
  const timer = originalSetTimeout(callback, ms, ...args);
  if (ms >= 5000 && typeof timer?.unref === "function") timer.unref();
  return timer;
}, originalSetTimeout);
