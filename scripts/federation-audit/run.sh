#!/usr/bin/env bash
# Runs the federation-gateway-audit (github.com/graphql-hive/federation-gateway-audit, checked out
# and `npm install`ed outside this repo) against our gateway; docs/federation-audit.md.
#   scripts/federation-audit/run.sh /path/to/federation-gateway-audit [suite-id]
# Writes <audit>/gateways/haiyvee/{run.sh,results.txt}; one suite only with a suite id.
set -euo pipefail
audit="$(cd "${1:?path to a federation-gateway-audit checkout}" && pwd)"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$audit/gateways/haiyvee"
# The audit needs Node >= 22 (Promise.withResolvers): the repo's Node (npm run setup) runs it.
export GATEWAY_TIMEOUT="${GATEWAY_TIMEOUT:-60000}"  # our gateway starts in ~5-10 s under tsx
export PATH="$(dirname "$(readlink -f "$repo/node_modules/.bin/node")"):$PATH"
mkdir -p "$dir"
cat > "$dir/run.sh" <<RUN
cd "$audit" && npm start --silent supergraph -- --cwd ./gateways/haiyvee --test \$1 >/dev/null
cd "$repo" && exec node_modules/.bin/node --import tsx scripts/federation-audit/gateway.ts "$dir/supergraph.graphql"
RUN
cd "$audit"
common=(--cwd ./gateways/haiyvee --run-script ./run.sh
  --graphql http://127.0.0.1:4000/graphql --healthcheck http://127.0.0.1:4000/readyz)
if [ -n "${2:-}" ]; then
  npm start --silent test-suite -- "${common[@]}" --test "$2"
else
  npm start --silent test -- "${common[@]}"
fi
