#!/usr/bin/env bash
# npm test — everything CI checks: types, lint, formatting, the schema checks, the build (npm run
# build), then jest tier by tier (unit with no services, integration on the real PostgreSQL/Redis,
# end to end through the gateway and the built system in production mode). Needs `npm run setup`.
# Extra arguments go to every jest run.
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
echo "== lint"
pnpm --silent run lint
echo "== formatting"
pnpm --silent run format:check
echo "== schema checks"
pnpm --silent run schema:check
echo "== generated docs"
pnpm --silent run docs:check
echo "== build"
# The production-mode test (test/e2e/production-build.test.ts) runs these very files.
pnpm --silent run build
echo "== infra checks"
pnpm --silent run infra:check
pnpm --silent exec tsx scripts/infra/validate.mts
status=0
for tier in unit integration e2e; do
  echo "== jest: $tier"
  results=$(mktemp)
  start=$(date +%s)
  tier_status=0
  # --forceExit: a tier ends when its tests do, even if a client was left open (docs/schema-workflow.md).
  pnpm exec jest --ci --forceExit --selectProjects "$tier" --json --outputFile="$results" "$@" || tier_status=$?
  node -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    console.log(`jest ${process.argv[2]}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped in ${process.argv[3]}s`);
  ' "$results" "$tier" "$(( $(date +%s) - start ))" || true
  rm -f "$results"
  [ "$tier_status" -eq 0 ] || status=$tier_status
done
exit "$status"
