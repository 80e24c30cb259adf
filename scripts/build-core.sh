#!/usr/bin/env bash
# Builds the three WebAssembly modules from src/core/assembly and the layout file their hosts import — when a
# source is newer than what was built, or with --force. The one place the `asc` invocations live: set-up and
# `npm run build:core` both call it.
#   packet core (index.ts → core.wasm), 2022-7 merge and reorder buffer (merge.ts → merge.wasm),
#   2022-1 FEC decoder (fec.ts → fec.wasm), each with its own memory; then src/core/build/layout.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

force=false
[ "${1:-}" = "--force" ] && force=true

stale() {
  $force || [ ! -f "$1" ] || [ -n "$(find src/core/assembly src/core/asconfig.json scripts/core-layout.ts -newer "$1" -print -quit)" ]
}

build_wasm() {
  local entry="$1" name="$2"
  shift 2
  if stale "src/core/build/$name.wasm"; then
    echo "build-core: building src/core/build/$name.wasm" >&2
    asc "$entry" --config src/core/asconfig.json --target release \
      --outFile "src/core/build/$name.wasm" --textFile "src/core/build/$name.wat" "$@"
  fi
}
build_wasm src/core/assembly/index.ts core
build_wasm src/core/assembly/merge.ts merge --initialMemory 67
build_wasm src/core/assembly/fec.ts fec --initialMemory 36

if stale src/core/build/layout.ts; then
  echo "build-core: writing src/core/build/layout.ts" >&2
  node scripts/core-layout.ts
fi
