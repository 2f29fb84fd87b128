#!/usr/bin/env bash
# The kernel's own driver selftests from the 6.12 tree,
# tools/testing/selftests/drivers/net/{ping,stats}.py, in HW mode: NETIF is
# function 0 ($ENA_DRIVER on the model) in the initial netns; the remote endpoint
# is function 1 in netns ena-b.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd socat ping
py=/usr/bin/python3
[ -x "$py" ] || fail "missing /usr/bin/python3"
"$py" -c 'import yaml' 2>/dev/null || fail "python3-yaml missing for $py (make setup installs it)"
kdir=$("$RFL_TOP/scripts/kdir" 2>/dev/null)
[ -d "$kdir/tools/testing/selftests/drivers/net" ] || kdir=$(ls -d /root/.cache/rfl-drivers/kernel/*/ 2>/dev/null | head -1)
tdir=$kdir/tools/testing/selftests/drivers/net
[ -f "$tdir/ping.py" ] || fail "kernel selftests not found (looked in '$tdir')"
ena_load
# Function 0 back in the initial netns, function 1 in ena-b.
ip netns del ena-a 2>/dev/null
ip netns list | grep -qw ena-b || ip netns add ena-b
sleep 0.5
local_if=$(ena_ifname 0)
[ -n "$local_if" ] || fail "function 0 has no netdev in the initial netns"
remote_if=$(ip netns exec ena-b sh -c 'for n in /sys/class/net/*; do [ -e "$n/device" ] && basename "$n"; done' | head -1)
if [ -z "$remote_if" ]; then
    remote_if=$(ena_ifname 1)
    ip link set "$remote_if" netns ena-b || fail "moving $remote_if into ena-b failed"
fi
ip addr replace 10.77.0.1/24 dev "$local_if"
ip addr replace fd77::1/64 dev "$local_if" nodad
ip link set "$local_if" up
ip -n ena-b addr replace 10.77.0.2/24 dev "$remote_if"
ip -n ena-b addr replace fd77::2/64 dev "$remote_if" nodad
ip -n ena-b link set "$remote_if" up
ip -n ena-b link set lo up
for _ in $(seq 100); do [ "$(cat "/sys/class/net/$local_if/carrier")" = 1 ] && break; sleep 0.1; done
export NETIF=$local_if LOCAL_V4=10.77.0.1 REMOTE_V4=10.77.0.2 LOCAL_V6=fd77::1 REMOTE_V6=fd77::2
export REMOTE_TYPE=netns REMOTE_ARGS=ena-b
failed=0
for t in ping.py stats.py; do
    (cd "$tdir" && "$py" "$t") > "/tmp/ksft-$t.out" 2>&1
    st=$?
    sed 's/^/  /' "/tmp/ksft-$t.out"
    summary=$(grep -E '^# Totals' "/tmp/ksft-$t.out")
    log "$t: exit $st; $summary"
    [ $st = 0 ] || failed=1
done
[ $failed = 0 ] || fail "a kernel driver selftest failed (see above)"
pass
