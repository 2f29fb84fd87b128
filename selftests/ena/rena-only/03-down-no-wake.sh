#!/usr/bin/env bash
# While rena takes its data path down (ethtool -L here), no TX clean-up may
# wake a queue that `down` stopped. Before the fix (commit 2f31e10) a NAPI
# poll between `netif_tx_disable` and `napi_disable` woke it, packets were
# queued again, and BQL over-completed them after `up` (kernel BUG at
# lib/dynamic_queue_limits.c:99 in ena/16, one run in two). rena's test
# hook test_down_window_ms makes the race certain: `down` waits with the
# queues stopped and NAPI running, then polls every pair, and logs every
# queue whose wake counter moved meanwhile ("woken in the test window").
# A UDP flood from function 0 keeps calling start_xmit, so a queue still
# awake after the window hands rena packets while it has no live pair,
# which rena logs too ("while the data path is down").
# The flood's small socket buffer also makes its sender block in each
# window with its datagrams queued in the qdisc: if `up` only starts the
# queues without rescheduling the qdisc, the flood never resumes.
# Asserted, for two channel changes on function 0 under the flood: the hook
# ran in each `down` (its kernel log lines), neither line was logged, the
# channel count reads back, and the flood reaches function 1 again after
# each change; then pings pass both ways, the model counts no guest/DMA
# error, and the runner checks that the kernel log stays clean.
# rfl-timeout: 900
. "$(dirname "$0")/../ena-lib"
[ "${ENA_DRIVER:-}" = rena ] ||
    fail "rena only (ENA_DRIVER=${ENA_DRIVER:-unset}): test_down_window_ms is rena's test hook"
ena_require_pair
require_cmd ethtool ping python3 timeout
ena_setup_pair

param=/sys/module/rena/parameters/test_down_window_ms
[ -w "$param" ] || fail "no writable $param: rena built without its test hook?"
bdf=$(ena_bdfs | head -1)
max=$(ena_ns 0 ethtool -l "${ENA_IF[0]}" | awk '/^Combined:/ { print $2; exit }')
[ "${max:-0}" -ge 2 ] || fail "${ENA_IF[0]} has at most ${max:-0} channels: start the model with --ena-queues >= 2"
orig=$(ena_channels 0)
# Two changes, each a down and an up: away from the current count and back.
alt=$((orig == 1 ? 2 : 1))

v6conf=/proc/sys/net/ipv6/conf/${ENA_IF[0]}/disable_ipv6
flood=
restore() { # quick steps first: the runner kills a timed-out test 10 s after TERM
    { echo 0 > "$param"; } 2>/dev/null
    [ -z "$flood" ] || kill "$flood" 2>/dev/null
    ena_ns 0 sh -c "echo 0 > $v6conf" 2>/dev/null
    ip -n "${ENA_NS[0]}" addr replace "${ENA_V6[0]}/64" dev "${ENA_IF[0]}" nodad 2>/dev/null
    ena_ns 0 timeout 120 ethtool -L "${ENA_IF[0]}" combined "$orig" 2>/dev/null
}
trap restore EXIT
# No IPv6 on function 0 during the test (back on exit): the MLD reports it
# sends after every carrier change would run a queue's qdisc by chance and
# hide a stalled sender in half the runs.
ena_ns 0 sh -c "echo 1 > $v6conf" || fail "cannot switch IPv6 off on ${ENA_IF[0]} ($v6conf)"
# Marked before the flood: a drop logged before the first change would use
# up rena's once-per-up log line.
kmsg_mark
# 64-byte datagrams to the discard port, as fast as one CPU sends them
# (send errors are ignored: the flood must go on). A small socket buffer
# (about 20 datagrams in flight) makes the sender block in every `down`
# window, with its datagrams in the stopped queue's qdisc: `up` must then
# reschedule that qdisc (a wake, not a start), or the sender waits forever
# (a second bug this test found). Started without a shell function in
# between, so $! is the process to kill (timeout, which passes the signal
# on to python; it also ends a flood left behind).
ip netns exec "${ENA_NS[0]}" timeout 600 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
dst, data = (sys.argv[1], 9), bytes(64)
while True:
    try:
        s.sendto(data, dst)
    except OSError:
        pass
' "${ENA_V4[1]}" &
flood=$!
# Function 1's received packets (its netdev lives in its netns: one ip -n).
rx1() {
    [[ "$(ip -n "${ENA_NS[1]}" -s -o link show dev "${ENA_IF[1]}" 2>/dev/null)" =~ RX:[^\\]*\\\ +[0-9]+\ +([0-9]+) ]] &&
        echo "${BASH_REMATCH[1]}"
}
flood_arrives() { # flood_arrives WHAT: function 1 receives >= 100 packets within 30 s
    local start now end=$((SECONDS + 30))
    start=$(rx1) || fail "cannot read rx_packets of ${ENA_IF[1]}"
    while [ "$SECONDS" -lt "$end" ]; do
        rfl_alive "$flood" || fail "the UDP flood exited"
        now=$(rx1) || fail "cannot read rx_packets of ${ENA_IF[1]}"
        [ $((now - start)) -ge 100 ] && return 0
        rfl_nap 0.5
    done
    flood_state
    fail "the flood did not reach ${ENA_IF[1]} $1 (rx_packets $start -> ${now:-?} in 30 s; state above)"
}
# What a stalled flood leaves behind: the sender's wait channel, function
# 0's TX counters, neighbours, link counters and BQL, the model's queues.
flood_state() {
    local st l
    for st in /proc/[0-9]*/stat; do # the sender: timeout's child
        { read -r l < "$st"; } 2>/dev/null || continue
        l=${l##*) }
        set -- $l
        [ "$2" = "$flood" ] || continue
        st=${st%/stat}
        log "flood sender ${st#/proc/}: state $1, waiting in $(cat "$st/wchan" 2>/dev/null)"
    done
    ena_ns 0 ethtool -S "${ENA_IF[0]}" | grep -E 'tx_|wake|stop' | sed 's/^/# /'
    ip -n "${ENA_NS[0]}" neigh show | sed 's/^/# /'
    ip -n "${ENA_NS[0]}" -s link show dev "${ENA_IF[0]}" | sed 's/^/# /'
    ena_ns 0 sh -c 'for q in /sys/class/net/$1/queues/tx-*; do
        echo "# ${q##*/}: BQL inflight $(cat $q/byte_queue_limits/inflight) limit $(cat $q/byte_queue_limits/limit)"
    done' sh "${ENA_IF[0]}"
    ena_model_status 0 | sed 's/^/# /'
}
flood_arrives "before the changes"
echo 300 > "$param" || fail "cannot set $param"
for n in "$alt" "$orig"; do
    ena_ns 0 timeout 120 ethtool -L "${ENA_IF[0]}" combined "$n" ||
        fail "ethtool -L ${ENA_IF[0]} combined $n failed or took over 120 s"
    got=$(ena_channels 0)
    [ "$got" = "$n" ] || fail "${ENA_IF[0]}: combined reads $got after setting $n"
    ena_wait_carrier 0 15 || fail "no carrier on ${ENA_IF[0]} after combined $n"
    flood_arrives "after combined $n"
    log "combined $n: flood arriving again"
done
echo 0 > "$param"
kill "$flood" 2>/dev/null
wait "$flood" 2>/dev/null
flood=
since=$(kmsg_since)
windows=$(grep -cF "$bdf: down: test window over" <<< "$since")
[ "$windows" -eq 2 ] || fail "the test hook's window ran $windows times in 2 changes (want one per down, no other down)"
if grep -F "$bdf" <<< "$since" | grep -E "woken in the test window|while the data path is down"; then
    fail "a queue of ${ENA_IF[0]} was woken while rena took its data path down (lines above)"
fi
log "$windows down windows with NAPI polls: no queue woken, no transmit while down"

ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ping_clean 1 "${ENA_V4[0]}" 5
log "IPv4 ping both ways 5/5"
ena_assert_model_clean
pass
