#!/bin/sh
# Two fleet nodes stopped and started together 50 times (or START_LOOP times), against a throwaway PostgreSQL:
# fails if any start loses a channel a node took (docs/testing.md, Starts).
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
START_LOOP="${START_LOOP:-50}" exec npx vitest run --project timing test/fleet/start-loop.timing.test.ts
