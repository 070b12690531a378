// Docker HEALTHCHECK for one process: GET http://127.0.0.1:<port><path>, healthy on 2xx.
//   node infra/docker/healthcheck.cjs <PORT_VARIABLE> <default port> [/readyz]
// The port comes from the same variable the process reads (kit/src/config.ts), so a changed port
// does not break the check. No dependencies: runs on the runtime image's node alone.
"use strict";
const [variable, fallback, path = "/readyz"] = process.argv.slice(2);
const port = Number(process.env[variable] || fallback);
if (!variable || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`usage: healthcheck.cjs <PORT_VARIABLE> <default port> [path]; got port ${port}`);
  process.exit(2);
}
fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2500) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  (error) => {
    console.error(String(error && error.message ? error.message : error));
    process.exit(1);
  },
);
