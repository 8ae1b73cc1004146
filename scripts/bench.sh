#!/usr/bin/env bash
# `npm run bench`: benchmarks against the real Temporal dev server (started and
# stopped by the bench on free ports). Installs what the bench needs (Node >= 22,
# npm deps, the Temporal CLI; PostgreSQL, moto and Mailpit only for the real-lab
# benchmark and the sentinel's, --only=lab, --only=sentinel or --full), compiles bench/ with tsc into bench/.build, then runs it.
# Options: bash scripts/bench.sh --help
set -euo pipefail
source "$(dirname "$0")/toolchain.sh"
ensure_node
ensure_npm_deps
ensure_temporal
case " $* " in *" --full"*|*"--only="*lab*|*"--only "*lab*|*"--only="*sentinel*|*"--only "*sentinel*) ensure_postgres && ensure_moto && ensure_mailpit ;; esac
cd "$LIFEBOAT_ROOT"
export PATH="$LIFEBOAT_ROOT/node_modules/.bin:$PATH"
rm -rf bench/.build
tsc -p bench/tsconfig.json
exec node bench/.build/bench/run.js "$@"
