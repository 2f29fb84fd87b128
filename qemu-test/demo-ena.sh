#!/usr/bin/env bash
# The rena part of `make demo` (run by qemu-test/demo-guest.sh under
# qemu-test/ena-vm --ena=pair): rena probes both functions of the ENA device
# model, the link comes up, ping both ways without loss, a short iperf3, an
# ethtool -S excerpt, then a fault injected in the model (a corrupted TX
# completion req_id) makes rena reset the device with reason 5, which the
# model records, and traffic resumes. Uses selftests/ena/ena-lib.
export ENA_DRIVER=rena
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../selftests/ena/ena-lib
. "$here/../selftests/ena/ena-lib"
# shellcheck source-path=SCRIPTDIR source=demo-lib.sh
. "$here/demo-lib.sh"
ena_require_pair
require_cmd iperf3 ping
secs=${DEMO_SECS:-3}

# Pings COUNT times from function I to the other one; shows ping's summary
# and dies unless every reply came back.
ping_ok() { # ping_ok I COUNT
    local out peer=${ENA_V4[$((1 - $1))]}
    out=$(ena_ns "$1" ping -c "$2" -i 0.2 -W 2 "$peer" 2>&1)
    echo "${ENA_IF[$1]} (${ENA_NS[$1]}) -> $peer: $(grep 'packets transmitted' <<< "$out")"
    grep -q ' 0% packet loss' <<< "$out" || die "ping ${ENA_NS[$1]} -> $peer lost packets"
}
# One ethtool -S counter of function I; a counter rena does not export is a
# failure, not a zero.
stat_of() { # stat_of I NAME
    local v
    v=$(ena_stat "$1" "$2")
    [ -n "$v" ] || die "ethtool -S ${ENA_IF[$1]} has no $2"
    echo "$v"
}

step "rena: the Rust ENA driver probes the device model's two functions (1d0f:ec20)"
for b in $(ena_bdfs); do
    echo "$b: bound to $(basename "$(readlink -f "/sys/bus/pci/devices/$b/driver" 2>/dev/null || echo none)")"
done
kmsg_mark
ena_setup_pair
log=$(kmsg_since)
show_match 'rena .*ENA v.*MAC' "rena logged no probe line" "$log"
[ "$(grep -cE 'rena .*ENA v.*MAC' <<< "$log")" = 2 ] || die "rena did not probe both functions"

step "link up (the model's link-change event), one netns per function"
show_match 'rena .*link up' "rena logged no link up" "$(kmsg_since)"
for i in 0 1; do
    ena_ns "$i" ip -br addr show dev "${ENA_IF[$i]}" | sed "s/^/${ENA_NS[$i]}: /"
done

step "ping both ways over the model's wire"
ping_ok 0 5
ping_ok 1 5

step "iperf3 TCP, ${secs} s, ${ENA_NS[0]} -> ${ENA_NS[1]}"
ena_ns 1 iperf3 -s -D -1 -p 5301 --logfile /tmp/demo-iperf-srv.log || die "iperf3 server did not start"
sleep 0.5
rx0=$(ena_ns 1 cat "/sys/class/net/${ENA_IF[1]}/statistics/rx_bytes")
out=$(ena_ns 0 iperf3 -c "${ENA_V4[1]}" -p 5301 -t "$secs" -f m 2>&1) || { echo "$out"; die "iperf3 failed"; }
rx1=$(ena_ns 1 cat "/sys/class/net/${ENA_IF[1]}/statistics/rx_bytes")
show_match 'sender|receiver' "iperf3 printed no summary" "$out"
mbit=$(awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") print $(i - 1) }' <<< "$out")
awk -v m="${mbit:-0}" 'BEGIN { exit !(m > 0) }' || die "iperf3's receiver got nothing"
echo "${ENA_IF[1]} rx_bytes grew by $((rx1 - rx0))"
[ $((rx1 - rx0)) -gt 1000000 ] || die "the receiving netdev counted under 1 MB"

step "ethtool -S ${ENA_IF[0]} (excerpt)"
show_match '^ +(tx_timeout|reset_cnt|reset_fail|queue_[0-9]+_(tx|rx)_(cnt|bytes|bad_req_id)): ' \
    "ethtool -S shows none of the expected counters" "$(ena_ns 0 ethtool -S "${ENA_IF[0]}")"
for i in 0 1; do
    for c in queue_0_tx_bad_req_id queue_0_rx_bad_req_id reset_fail; do
        [ "$(stat_of "$i" "$c")" = 0 ] || die "${ENA_IF[$i]}: $c is not 0 before any fault"
    done
done

step "device fault: the model corrupts function 0's next TX completion req_id (ENA_CTL: fault 0 corrupt-tx-req-id)"
r5_before=$(ena_model_counter 0 r5)
resets_before=$(stat_of 0 reset_cnt)
kmsg_mark
ena_ctl fault 0 corrupt-tx-req-id
# Traffic makes the model complete a packet with the bad req_id.
ena_ns 0 ping -c 3 -i 0.2 -W 1 "${ENA_V4[1]}" >/dev/null 2>&1
for _ in $(seq 200); do
    kmsg_since | grep -q 'rena .*Device reset completed successfully' && break
    sleep 0.1
done
show_match 'rena ' "rena logged nothing after the fault" "$(kmsg_since)"
kmsg_since | grep -q 'rena .*reset (reason 5)' || die "rena did not reset with reason 5 (invalid TX req_id)"
kmsg_since | grep -q 'rena .*Device reset completed successfully' || die "rena did not complete the reset"
r5_after=$(ena_model_counter 0 r5)
resets_after=$(stat_of 0 reset_cnt)
echo "the model saw resets with reason 5 (ENA_REGS_RESET_INV_TX_REQ_ID): $r5_before -> $r5_after"
echo "ethtool -S reset_cnt: $resets_before -> $resets_after, reset_fail: $(stat_of 0 reset_fail)"
[ "$r5_after" -gt "$r5_before" ] || die "the model saw no reset with reason 5"
[ "$resets_after" -gt "$resets_before" ] || die "rena's reset_cnt did not grow"
[ "$(stat_of 0 reset_fail)" = 0 ] || die "rena counted a failed reset"

step "traffic resumes after the reset"
ena_wait_carrier 0 15 || die "no carrier on ${ENA_IF[0]} after the reset"
ping_ok 0 5
ping_ok 1 5

step "rmmod rena"
ena_unload || die "rmmod rena failed"
echo "removed cleanly"
