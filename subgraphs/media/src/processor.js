// BullMQ loads a sandboxed processor with import() in a fresh child process, outside tsx and
// jest: this shim registers tsx there so the processor stays TypeScript, with no build step.
"use strict";
require("tsx/cjs/api").register();
module.exports = require("./processor.ts").default;
