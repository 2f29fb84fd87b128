#!/usr/bin/env bash
# Kselftest-style runner, run inside the guest: selftests/run.sh SUITE|SUITE/TEST.sh...
# Runs every selftests/SUITE/*.sh in order (or just the named SUITE/TEST.sh,
# e.g. ena/11-mtu-jumbo.sh) and prints TAP version 13; each
# test's own output is shown as TAP diagnostics ("# ..."). Exits 0 only if
# every test passed.
set -u
top=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: selftests/run.sh SUITE|SUITE/TEST.sh..." >&2; exit 2; }

tests=()
for suite in "$@"; do
    if [ -f "$top/$suite" ] && [ "${suite%.sh}" != "$suite" ]; then
        tests+=("$top/$suite")
        continue
    fi
    [ -d "$top/$suite" ] || { echo "Bail out! no test suite or test '$suite' under $top" ; exit 2; }
    for t in "$top/$suite"/*.sh; do
        [ -e "$t" ] && tests+=("$t")
    done
done

echo "TAP version 13"
echo "1..${#tests[@]}"
n=0 failed=0
for t in "${tests[@]}"; do
    n=$((n + 1))
    name=$(basename "$(dirname "$t")")/$(basename "$t" .sh)
    echo "# $name"
    start=$(date +%s)
    bash "$t" 2>&1 | sed 's/^/# /'
    status=${PIPESTATUS[0]}
    secs=$(( $(date +%s) - start ))
    if [ "$status" = 0 ]; then
        echo "ok $n $name # ${secs}s"
    else
        echo "not ok $n $name # exit $status after ${secs}s"
        failed=$((failed + 1))
    fi
done
echo "# $((n - failed)) passed, $failed failed"
[ $failed = 0 ]
