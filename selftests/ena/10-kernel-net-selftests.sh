#!/usr/bin/env bash
# The kernel's own driver selftests from the 6.12 tree,
# tools/testing/selftests/drivers/net/{ping,stats}.py, in HW mode: NETIF is
# function 0 ($ENA_DRIVER on the model) in the initial netns; the remote endpoint
# is function 1 in netns ena-b.
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_setup_kselftest
failed=0
for t in ping.py stats.py; do
    (cd "$KSFT_DIR" && "$KSFT_PY" "$t") > "/tmp/ksft-$t.out" 2>&1
    st=$?
    sed 's/^/  /' "/tmp/ksft-$t.out"
    summary=$(grep -E '^# Totals' "/tmp/ksft-$t.out")
    log "$t: exit $st; $summary"
    [ $st = 0 ] || failed=1
done
[ $failed = 0 ] || fail "a kernel driver selftest failed (see above)"
pass
