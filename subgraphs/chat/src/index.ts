import { loadChatConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("chat", (env) => loadChatConfig(env), start);
