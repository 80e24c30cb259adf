#!/usr/bin/env bash
# The seeded fault schedule over a three-node fleet (test/lab/fleet-chaos.test.ts), as long as asked:
#   npm run chaos -- [--seed N] [--minutes M] [--report FILE]
# Needs root (network namespaces, nftables) and PostgreSQL, as the lab does. The same seed and length replay the
# same faults at the same moments.
set -euo pipefail
cd "$(dirname "$0")/.."
seed=20261128
minutes=20
report=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
    --minutes) minutes="${2:?--minutes needs a number}"; shift 2 ;;
    --report) report="${2:?--report needs a file}"; shift 2 ;;
    *) echo "chaos: unknown argument '$1' (use --seed N --minutes M --report FILE)" >&2; exit 2 ;;
  esac
done
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "chaos: --seed must be a whole number, not '$seed'" >&2; exit 2; }
[[ "$minutes" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "chaos: --minutes must be a number, not '$minutes'" >&2; exit 2; }
export PATH="$PWD/node_modules/.bin:$PATH"
[ -z "$report" ] || report="$(realpath -m "$report")"
DISTRIBUTARY_CHAOS_SEED="$seed" DISTRIBUTARY_CHAOS_MINUTES="$minutes" DISTRIBUTARY_CHAOS_REPORT="$report" \
  exec vitest run --project timing test/lab/fleet-chaos.test.ts
