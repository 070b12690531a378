#!/usr/bin/env bash
# npm test — everything CI checks: types, the schema checks, the build (npm run build), then jest
# (unit, integration on the real PostgreSQL/Redis, end to end through the gateway, the built system
# in production mode). Needs `npm run setup` first.
set -euo pipefail
cd "$(dirname "$0")/.."

node scripts/node-meets-engines.cjs \
  || { echo "Node $(node --version) is older than package.json's engines field: run npm run setup first" >&2; exit 1; }
echo "== node $(node --version)"
echo "== generated resolver types"
pnpm --silent run codegen:check > /dev/null \
  || { echo "subgraphs/*/src/generated/resolvers-types.ts are stale: run pnpm run codegen and commit them" >&2; exit 1; }
echo "== typecheck"
pnpm --silent run typecheck
echo "== schema checks"
pnpm --silent run schema:check
echo "== generated docs"
pnpm --silent run docs:check
echo "== build"
# The production-mode test (test/e2e/production-build.test.ts) runs these very files.
pnpm --silent run build
echo "== infra checks"
pnpm --silent exec tsx scripts/infra/validate.mts
echo "== jest"
results=$(mktemp)
status=0
pnpm exec jest --ci --json --outputFile="$results" "$@" || status=$?
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' "$results" || true
rm -f "$results"
exit "$status"
