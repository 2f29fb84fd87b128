#!/usr/bin/env bash
# Kselftest-style runner, run inside the guest: selftests/run.sh SUITE|SUITE/TEST.sh...
# (selftests/run.sh --limits SUITE... only prints "LIMIT TEST" per test, for
# the host's scripts/check to budget a guest run.)
# Runs every selftests/SUITE/*.sh in order (or just the named SUITE/TEST.sh,
# e.g. ena/11-mtu-jumbo.sh; or an absolute path to a suite directory or a
# test) and prints TAP version 13; each
# test's own output is shown as TAP diagnostics ("# ..."). Exits 0 only if
# every test passed.
#
# Per-test timeout: a test is stopped (its whole process group) after
# RFL_TEST_TIMEOUT seconds (default 900), or after N seconds if the test has
# a header line "# rfl-timeout: N"; it is then "not ok ... timeout after N s"
# and the next test runs.
#
# Each test is bracketed in the kernel log by "rfl-test: begin SUITE/TEST"
# and "rfl-test: end SUITE/TEST STATUS" lines (written to /dev/kmsg):
# qemu-test/scan-kernel-log names the test a kernel report happened in, and
# closes any rfl_expect_begin window the test left open (selftests/lib.sh).
# The whole script is one block, read before any of it runs: editing this
# file while a run is in progress cannot change or break that run.
{
set -u
top=$(cd "$(dirname "$0")" && pwd)
list_limits=0
[ "${1:-}" = --limits ] && { list_limits=1; shift; }
[ $# -gt 0 ] || { echo "usage: selftests/run.sh [--limits] SUITE|SUITE/TEST.sh..." >&2; exit 2; }
default_timeout=${RFL_TEST_TIMEOUT:-900}
[[ "$default_timeout" =~ ^[1-9][0-9]*$ ]] || { echo "Bail out! RFL_TEST_TIMEOUT must be seconds, not '$default_timeout'"; exit 2; }

tests=() test_envs=() envs=()
# The current VAR=VALUE items, quoted for eval (a value may hold spaces).
quoted_envs() { [ ${#envs[@]} = 0 ] || printf '%q ' "${envs[@]}"; }
for suite in "$@"; do
    # VAR=VALUE: the environment of the tests named after it (e.g. both
    # drivers in one boot: ENA_DRIVER=rena ena/02-link-ping.sh ENA_DRIVER=ena
    # ena/02-link-ping.sh); a later VAR=VALUE for the same VAR replaces it.
    if [[ "$suite" =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]]; then
        kept=()
        for e in "${envs[@]}"; do [ "${e%%=*}" = "${BASH_REMATCH[1]}" ] || kept+=("$e"); done
        envs=("${kept[@]}" "$suite")
        continue
    fi
    # SUITE is under selftests/, or an absolute path (the runner's own tests).
    dir=$top/$suite
    [ "${suite#/}" = "$suite" ] || dir=$suite
    if [ -f "$dir" ] && [ "${suite%.sh}" != "$suite" ]; then
        tests+=("$dir") test_envs+=("$(quoted_envs)")
        continue
    fi
    [ -d "$dir" ] || { echo "Bail out! no test suite or test '$suite' under $top" ; exit 2; }
    for t in "$dir"/*.sh; do
        [ -e "$t" ] && tests+=("$t") test_envs+=("$(quoted_envs)")
    done
done

# RFL_KMSG: where the markers go (the runner's host test points it at a file).
kmsg() { echo "$*" >> "${RFL_KMSG:-/dev/kmsg}" 2>/dev/null || true; }

# The test's own timeout: "# rfl-timeout: N" among its first 20 lines.
test_timeout() {
    local n
    n=$(head -n 20 "$1" | sed -n 's/^# rfl-timeout: *\([0-9][0-9]*\) *$/\1/p' | head -1)
    echo "${n:-$default_timeout}"
}

if [ "$list_limits" = 1 ]; then
    for t in "${tests[@]}"; do echo "$(test_timeout "$t") $t"; done
    exit 0
fi

echo "TAP version 13"
echo "1..${#tests[@]}"
n=0 failed=0
for i in "${!tests[@]}"; do
    t=${tests[i]}
    n=$((n + 1))
    name=$(basename "$(dirname "$t")")/$(basename "$t" .sh)
    # Tests given an environment on the command line are named with it.
    eval "tenv=(${test_envs[i]})"
    [ ${#tenv[@]} = 0 ] || name="$name ${tenv[*]}"
    limit=$(test_timeout "$t")
    echo "# $name"
    kmsg "rfl-test: begin $name"
    start=$(date +%s)
    # timeout runs the test in its own process group and signals all of it;
    # -k: SIGKILL 10 s after SIGTERM if the test ignores it.
    timeout -k 10 "$limit" env "${tenv[@]}" bash "$t" 2>&1 | sed -u 's/^/# /'
    status=${PIPESTATUS[0]}
    secs=$(( $(date +%s) - start ))
    kmsg "rfl-test: end $name $status"
    if [ "$status" = 0 ]; then
        echo "ok $n $name # ${secs}s"
    elif { [ "$status" = 124 ] || [ "$status" = 137 ]; } && [ "$secs" -ge "$limit" ]; then
        echo "not ok $n $name # timeout after $limit s"
        failed=$((failed + 1))
    else
        echo "not ok $n $name # exit $status after ${secs}s"
        failed=$((failed + 1))
    fi
done
echo "# $((n - failed)) passed, $failed failed"
# Exit inside the block: bash reads what follows it only after running it,
# from a file that may have been edited meanwhile.
[ $failed = 0 ] && exit 0
exit 1
}
