import { loadUsersConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("users", loadUsersConfig, start);
