// The users worker: push notifications and account mails (one process; see docs/accounts.md).
// Must stay the first import (tracing patches modules as they load).
import "./push/tracing";
import { runMain } from "@hv/kit";
import { loadPushConfig } from "./push/config";
import { startPushWorker } from "./push/worker";

runMain("push-worker", loadPushConfig, startPushWorker);
