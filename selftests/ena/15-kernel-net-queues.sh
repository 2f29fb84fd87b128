#!/usr/bin/env bash
# The kernel's own tools/testing/selftests/drivers/net/queues.py from the
# 6.12 tree, set up like 10-kernel-net-selftests (NETIF = function 0 on
# $ENA_DRIVER, remote = function 1 in netns ena-b): the netdev netlink
# queue-get dump lists as many RX queues as sysfs shows (get_queues), and
# `ethtool -L combined N-1` then back to N changes that count both times
# (addremove_queues). Neither case may be skipped: a skip ("queue-get not
# supported") fails this test.
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_setup_kselftest
(cd "$KSFT_DIR" && "$KSFT_PY" queues.py) >/tmp/ksft-queues.out 2>&1
st=$?
sed 's/^/  /' /tmp/ksft-queues.out
summary=$(grep -E '^# Totals' /tmp/ksft-queues.out)
log "queues.py: exit $st; $summary"
[ $st = 0 ] || fail "queues.py failed (see above)"
grep -qE '^# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0' /tmp/ksft-queues.out \
    || fail "queues.py did not pass both cases without skips: $summary"
ethtool -l "$NETIF" | awk '/^Combined:/ { n = $2 } END { exit !(n >= 2) }' \
    || fail "$NETIF has fewer than 2 combined channels after queues.py"
ena_assert_model_clean
pass
