import { runMain } from "@hv/kit";
import { loadMediaWorkerConfig } from "./config";
import { startMediaWorker } from "./worker";

runMain("media-worker", loadMediaWorkerConfig, startMediaWorker);
