#!/usr/bin/env bash
# npm run lint — eslint over the workspace (eslint.config.mjs), with its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
status=0
pnpm exec eslint --cache --cache-location node_modules/.cache/eslint/ "$@" . || status=$?
echo "lint: $(( $(date +%s) - start ))s"
exit "$status"
