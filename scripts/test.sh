#!/usr/bin/env bash
# `npm test`: installs what is missing (Node >= 22, npm deps, the Temporal CLI,
# PostgreSQL 15), builds, type-checks, then runs every test against the real
# Temporal dev server and real PostgreSQL.
set -euo pipefail
source "$(dirname "$0")/toolchain.sh"
ensure_all
# Only the tests drive a browser: the demo does not need Chromium.
ensure_chromium
cd "$LIFEBOAT_ROOT"
export PATH="$LIFEBOAT_ROOT/node_modules/.bin:$PATH"
tsc -p tsconfig.test.json
exec vitest run "$@"
