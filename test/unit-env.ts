import { SUBGRAPHS } from "@hv/kit/src/subgraphs";

// Unit tests run with no services: every database and Redis URL points at a closed port.
const CLOSED = "127.0.0.1:1";
for (const subgraph of SUBGRAPHS) {
  process.env[subgraph.databaseUrlVar] = `postgresql://postgres@${CLOSED}/hv_${subgraph.name}`;
}
process.env.REDIS_URL = `redis://${CLOSED}`;
