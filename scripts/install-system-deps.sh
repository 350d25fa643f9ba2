#!/usr/bin/env bash
# Debian/Ubuntu tools the tests and the demo use: kubectl (Debian's kubernetes-client when none is on PATH),
# prometheus and promtool (Debian's prometheus: rule checks, rule unit tests, throwaway Prometheus servers).
set -euo pipefail
need=()
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
