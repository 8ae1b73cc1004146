#!/usr/bin/env bash
# `npm run demo`: installs what is missing, brings the lab up, starts a worker,
# runs a planned regional evacuation and then a failback, each approved by a second
# person, and leaves the lab up.
set -euo pipefail
source "$(dirname "$0")/toolchain.sh"
ensure_all
exec node "$LIFEBOAT_ROOT/dist/cli/lifeboat.js" demo "$@"
