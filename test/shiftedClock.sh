#!/usr/bin/env bash
# The suite again with the clock moved 400 days ahead, part of README's test command: a test that dates its
# traces on a fixed day (or leans on today's date in any other way) falls out of the 14-day windows here,
# today, instead of on the day its date ages out. Debian's faketime shifts the clock of every process the
# run starts (vitest, the built CLI, the fake provider, PostgreSQL, Chromium) by the same offset.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v faketime >/dev/null 2>&1; then
  echo "test set-up: installing Debian's faketime package for the shifted-clock run"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq faketime \
    || { echo "test set-up: could not install faketime; run \`apt-get install faketime\`" >&2; exit 1; }
fi
echo "the suite again, the clock moved 400 days ahead (to $(faketime -f '+400d' date -u +%F))"
exec faketime -f '+400d' npx vitest run "$@"
