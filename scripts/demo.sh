#!/usr/bin/env bash
# The whole shipline pipeline on a local sandbox: real registry (token auth), real sshd as the Compose
# host, the built action bundles run the way the Actions runner runs them. Idempotent; run it twice.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/setup-parts.sh
[ -f dist/ship/index.js ] || npm run build
rm -rf build/demo
./node_modules/.bin/tsc -p tsconfig.demo.json --outDir build/demo
node build/demo/testkit/demo-cli.js
