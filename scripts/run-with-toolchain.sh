#!/usr/bin/env bash
# Runs a command with the project's toolchain (Node >= 22, npm dependencies) on PATH.
set -euo pipefail
source "$(dirname "$0")/toolchain.sh"
ensure_node
ensure_npm_deps
export PATH="$LIFEBOAT_ROOT/node_modules/.bin:$PATH"
exec "$@"
