#!/usr/bin/env bash
# The whole test suite: format and lint (Biome), types (tsc), the dependency rules (dependency-cruiser), then
# every Vitest test, the timing project after the others. Ends with the plain line "N passed, N failed" that CI
# reads; each check before Vitest counts as one test. Arguments go to both Vitest runs (e.g. a file or folder).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

passed=0
failed=0
failures="$(mktemp)"
# Each test file's whole duration, from both Vitest runs: written by test/support/durations-reporter.ts (a
# Vitest reporter) and printed, the slowest first, at the end.
export DISTRIBUTARY_TEST_DURATIONS
DISTRIBUTARY_TEST_DURATIONS="$(mktemp)"
check() {
  local name="$1"
  shift
  echo "── $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "✗ $name failed" | tee -a "$failures"; fi
}

check "format and lint (biome)" biome check --error-on-warnings .
check "types (tsc)" tsc --noEmit -p tsconfig.json
check "dependency rules (dependency-cruiser)" depcruise src views test load-tests bin --config .dependency-cruiser.cjs

# Vitest: the main project, files in parallel (three at least), beside its few files that keep a process of
# their own; then the timing project (wall-clock assertions on real sockets, the network lab) after it, so the
# load of the first run cannot fail it: its two lanes side by side, one file of each at a time, then its other
# files alone, one at a time
# (test/support/timing-lanes.ts says which files may run beside another, and why). Each run's JSON results
# go to $counts ("passed failed", a line a run) and are added up at the end; its wall time is printed.
counts="$(mktemp)"
vitest_project() {
  local label="$1" project="$2"
  shift 2
  local results started
  results="$(mktemp)"
  started=$SECONDS
  echo "── vitest: $label"
  vitest run --project "$project" --passWithNoTests --reporter=default --reporter=json --outputFile="$results" \
    --reporter=./test/support/durations-reporter.ts "$@"
  local vitest_status=$?
  echo "── vitest: $label took $((SECONDS - started)) s"
  local run_counts vp vf
  if run_counts="$(node -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    // A file that fails to load has no failed assertions of its own: count it as one failure.
    const brokenFiles = r.testResults.filter(
      (f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed"),
    ).length;
    // The names of what failed go to a list printed again just before the closing line.
    const cwd = process.cwd() + "/";
    const lines = [];
    for (const f of r.testResults) {
      const file = f.name.startsWith(cwd) ? f.name.slice(cwd.length) : f.name;
      const failedTests = f.assertionResults.filter((a) => a.status === "failed");
      if (f.status === "failed" && failedTests.length === 0) lines.push(`✗ ${file}: ${(f.message || "did not load").split("\n")[0]}`);
      for (const a of failedTests) lines.push(`✗ ${file} > ${a.fullName}: ${(a.failureMessages[0] || "").split("\n")[0]}`);
    }
    require("node:fs").appendFileSync(process.argv[2], lines.map((l) => l.slice(0, 400) + "\n").join(""));
    console.log(r.numPassedTests, r.numFailedTests + brokenFiles);
  ' "$results" "$failures" 2>/dev/null)"; then
    read -r vp vf <<<"$run_counts"
    [ "$vitest_status" -ne 0 ] && [ "$vf" -eq 0 ] && vf=1
    echo "$vp $vf" >>"$counts"
  else
    echo "✗ vitest ($label) produced no results" | tee -a "$failures"
    echo "0 1" >>"$counts"
  fi
  rm -f "$results"
}
# The main files share three worker processes (--isolate=false; minWorkers as many, or Vitest 3.2's pool ends
# an idle one with a task still on it: "Terminating worker thread"), beside main-apart, whose files share one
# process of their own, one after another (vitest.config.ts says which and why); its log prints after the main one.
apart_log="$(mktemp)"
vitest_project "main, files apart" main-apart --isolate=false --maxWorkers=1 --minWorkers=1 "$@" >"$apart_log" 2>&1 &
vitest_project main main --isolate=false --minWorkers=3 "$@"
wait
cat "$apart_log"
rm -f "$apart_log"
# The lane "light" prints when both lanes have ended, after the lane "labs".
light_log="$(mktemp)"
DISTRIBUTARY_TIMING_LANE=light vitest_project "timing, lane light" timing --no-file-parallelism "$@" >"$light_log" 2>&1 &
DISTRIBUTARY_TIMING_LANE=labs vitest_project "timing, lane labs (beside lane light)" timing --no-file-parallelism "$@"
wait
cat "$light_log"
rm -f "$light_log"
DISTRIBUTARY_TIMING_LANE=alone vitest_project "timing, files alone" timing --no-file-parallelism "$@"
while read -r vp vf; do
  passed=$((passed + vp))
  failed=$((failed + vf))
done <"$counts"
rm -f "$counts"

# Where the time went: the 15 slowest files of every Vitest run above (a timing file's time as its lane ran
# it). A check of its own: with no duration to report (the reporter not loaded, nothing run) it fails.
check "slowest test files (durations reporter)" node test/support/durations-reporter.ts "$DISTRIBUTARY_TEST_DURATIONS" 15
rm -f "$DISTRIBUTARY_TEST_DURATIONS"

if [ -s "$failures" ]; then
  echo "── what failed"
  cat "$failures"
fi
rm -f "$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
