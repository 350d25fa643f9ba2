#!/usr/bin/env bash
# Lets the postgres user reach a checkout:   scripts/grant-postgres-access.sh [CHECKOUT]   (default: this one)
# When the tests run as root they run the throwaway PostgreSQL servers as postgres, and those servers'
# archive_command runs this checkout's Python (`python -m drills.wal_archive`). A checkout under a private home
# (/root is 0700; Debian and Ubuntu create homes 0700/0750) is out of postgres's reach. This grants exactly what
# is missing, with ACLs for that one user, and says what it changed: traverse (x, not list) on each directory
# down to the checkout that postgres cannot enter, and read (rX, also as the default for new files) on the
# checkout only when something in it is unreadable. Nothing changes for a non-root user (the servers run as
# that user) or when postgres already has access. Undo with `setfacl -x u:postgres DIR` on the directories named.
set -euo pipefail
checkout=$(cd "${1:-$(dirname "$0")/..}" && pwd -P)

[ "$(id -u)" -eq 0 ] || exit 0
id postgres >/dev/null 2>&1 || { echo "grant-postgres-access: no postgres user (install postgresql first)" >&2; exit 1; }
as_postgres() { runuser -u postgres -- "$@"; }

acl() {
  command -v setfacl >/dev/null || { echo "grant-postgres-access: setfacl is missing (Debian package acl)" >&2; exit 1; }
  setfacl "$@"
}

# From / down: whether postgres can enter a directory depends on the ones above it.
dirs=()
dir=$checkout
while [ "$dir" != / ]; do dirs=("$dir" "${dirs[@]}"); dir=$(dirname "$dir"); done
for dir in "${dirs[@]}"; do
  as_postgres test -x "$dir" && continue
  acl -m u:postgres:x "$dir"
  echo "grant-postgres-access: gave the postgres user traverse access (x, no listing) to $dir with an ACL"
done
# Anything in the checkout (the venv included) postgres cannot read.
if [ -n "$(as_postgres find "$checkout" -path "$checkout/.git" -prune -o ! -readable -print -quit 2>&1)" ]; then
  acl -R -m u:postgres:rX "$checkout"
  find "$checkout" -type d -exec setfacl -m d:u:postgres:rX {} +
  echo "grant-postgres-access: gave the postgres user read access (rX) to $checkout with ACLs"
fi
