// Unit tests run with no services: every database and Redis URL points at a closed port.
const CLOSED = "127.0.0.1:1";
for (const name of ["USERS", "DISCOVERY", "CHAT", "MEDIA"]) {
  process.env[`${name}_DATABASE_URL`] = `postgresql://postgres@${CLOSED}/hv_${name.toLowerCase()}`;
}
process.env.REDIS_URL = `redis://${CLOSED}`;
