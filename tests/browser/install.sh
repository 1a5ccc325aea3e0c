#!/usr/bin/env bash
# Installs what the browser tests need on a fresh machine: Debian's Chromium (no browser download
# by Playwright), CJK fonts so the Chinese pages render in screenshots, and playwright-core from
# package-lock.json, and axe-core (the accessibility checks every scenario runs on each page state it
# visits). Called by .ci/run before `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ] || ! fc-list : family 2>/dev/null | grep -i "noto sans cjk" >/dev/null; then
  echo "== Debian's chromium and CJK fonts for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "== node and npm for the browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

echo "== playwright-core and axe-core for the browser tests (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
