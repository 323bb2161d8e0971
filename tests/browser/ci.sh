#!/usr/bin/env bash
# The portal's browser tests as CI runs them, on a fresh Debian machine, after
# `cargo test` built target/debug/taxgate. From the repository root:
#   tests/browser/ci.sh [path/to/taxgate]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/debug/taxgate}
[ -x "$bin" ] || { echo "no taxgate binary at $bin (run cargo build / cargo test first)" >&2; exit 2; }
bin=$(realpath "$bin")

# Debian's Chromium, a CJK font for readable screenshots, Node.js + npm.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

cd "$root/tests/browser"
npm ci --no-audit --no-fund
./run.sh "$bin"
