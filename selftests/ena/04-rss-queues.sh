#!/usr/bin/env bash
# RSS: parallel TCP flows land on at least 2 RX queues (per-queue ethtool -S
# counters), and `ethtool -L` changes the channel count while the link is up.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3
ena_setup_pair
ch=$(ena_ns 1 ethtool -l "${ENA_IF[1]}" | awk '/^Combined:/ { print $2 }' | tail -1)
[ "${ch:-0}" -ge 2 ] || fail "${ENA_IF[1]} has ${ch:-0} channels; start the model with --ena-queues >= 2"
before=()
for ((q = 0; q < ch; q++)); do before[$q]=$(ena_stat 1 "queue_${q}_rx_cnt"); done
ena_ns 1 iperf3 -s -D -1 -p 5301 --logfile /tmp/iperf-rss.log || fail "iperf3 server did not start"
sleep 0.5
ena_ns 0 iperf3 -c "${ENA_V4[1]}" -p 5301 -t 3 -P 8 >/tmp/iperf-rss.out || { cat /tmp/iperf-rss.out; fail "iperf3 -P 8 failed"; }
used=0
for ((q = 0; q < ch; q++)); do
    d=$(( $(ena_stat 1 "queue_${q}_rx_cnt") - ${before[$q]} ))
    log "RX queue $q: $d packets"
    [ "$d" -gt 100 ] && used=$((used + 1))
done
[ "$used" -ge 2 ] || fail "8 flows used only $used RX queue(s) (RSS spreading)"
ena_ns 0 ethtool -L "${ENA_IF[0]}" combined 1 || fail "ethtool -L combined 1 failed"
ena_ns 0 ping -c 2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic after ethtool -L combined 1"
ena_ns 0 ethtool -L "${ENA_IF[0]}" combined "$ch" || fail "ethtool -L combined $ch failed"
ena_wait_carrier 0 10 || fail "no carrier after ethtool -L"
ena_ns 0 ping -c 2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic after ethtool -L combined $ch"
log "ethtool -L 1 and back to $ch while up: traffic flows"
pass
