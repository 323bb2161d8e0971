#!/usr/bin/env bash
# Runs the portal's browser tests against a built taxgate binary.
#   tests/browser/run.sh target/debug/taxgate [--docs] [name-filter]
# Each test starts its own `taxgate demo --listen 127.0.0.1:0 --data-dir $(mktemp -d)`,
# reads `listening on http://ADDR` from its stdout and the outbox for captcha answers and
# SMS codes, drives headless /usr/bin/chromium, saves a screenshot of its last page under
# tests/browser/screenshots/ (the path is printed) and stops the gateway. `--docs` also
# writes docs/screenshots/{officer-selection,authorization,certificate-login}.png. Builds nothing; exits
# non-zero on any failure.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 PATH/TO/taxgate [--docs] [name-filter]" >&2
  exit 2
fi
bin=$(realpath "$1")
shift
[ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "chromium not found (apt-get install -y chromium)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/node_modules/playwright-core" ] || { echo "run 'npm ci' in $here first" >&2; exit 2; }
# The gateways are children of node; a killed run takes them along (own process group).
cleanup() { [ -n "${pid:-}" ] && kill -TERM -- "-$pid" 2>/dev/null || true; }
trap cleanup INT TERM
set -m
node "$here/portal.test.mjs" "$bin" "$@" &
pid=$!
set +e
wait "$pid"
rc=$?
set -e
exit "$rc"
