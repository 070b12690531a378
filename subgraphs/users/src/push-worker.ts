import { runMain } from "@hv/kit";
import { loadPushConfig } from "./push/config";
import { startPushWorker } from "./push/worker";

runMain("push-worker", loadPushConfig, startPushWorker);
