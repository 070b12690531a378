/**
 * Used by scripts/setup.sh. Exits 0 when the PostgreSQL server of USERS_DATABASE_URL (or the local
 * default) can create the postgis extension, 1 otherwise. With --server-major, prints the server's
 * major version instead (to name the apt package postgresql-<major>-postgis-3).
 */
import { databaseUrl, postgisStatus } from "../src/index";

postgisStatus(databaseUrl("users")).then(
  ({ available, serverMajor }) => {
    if (process.argv.includes("--server-major")) console.log(serverMajor);
    else process.exitCode = available ? 0 : 1;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
