// Must stay the first import (tracing patches modules as they load).
import "./tracing";
import { loadUsersConfig, runMain } from "@hv/kit";
import { start } from "./server";

runMain("users", loadUsersConfig, start);
