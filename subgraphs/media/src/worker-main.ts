// Must stay the first import (tracing patches modules as they load).
import "./worker-tracing";
import { runMain } from "@hv/kit";
import { loadMediaWorkerConfig } from "./config";
import { mediaWorkerStopDeadlineMs, startMediaWorker } from "./worker";

runMain("media-worker", loadMediaWorkerConfig, startMediaWorker, {
  stopDeadlineMs: mediaWorkerStopDeadlineMs,
});
