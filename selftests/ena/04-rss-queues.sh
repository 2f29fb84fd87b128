#!/usr/bin/env bash
# RSS: 8 parallel TCP flows land on at least 2 RX queues (per-queue ethtool -S
# counters; iperf3 moved data and the receiver's netdev counted it), and
# `ethtool -L` changes the channel count while the link is up: the count
# reads back, the device has that many TX and RX queues (the model's
# status), and pings pass without loss at 1 channel and back at N.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3 python3
ena_setup_pair
ch=$(ena_channels 1)
[ "$ch" -ge 2 ] || fail "${ENA_IF[1]} has $ch channels; start the model with --ena-queues >= 2"
before=()
for ((q = 0; q < ch; q++)); do before[q]=$(ena_stat 1 "queue_${q}_rx_cnt"); done
rxb=$(ena_ns 1 cat "/sys/class/net/${ENA_IF[1]}/statistics/rx_bytes")
ena_ns 1 iperf3 -s -D -1 -p 5301 --logfile /tmp/iperf-rss.log || fail "iperf3 server did not start"
sleep 0.5
ena_ns 0 timeout 120 iperf3 -c "${ENA_V4[1]}" -p 5301 -t 3 -P 8 -J >/tmp/iperf-rss.json ||
    { tail -20 /tmp/iperf-rss.json; fail "iperf3 -P 8 failed"; }
got=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' /tmp/iperf-rss.json) ||
    fail "cannot read the received bytes from iperf3's JSON"
drxb=$(( $(ena_ns 1 cat "/sys/class/net/${ENA_IF[1]}/statistics/rx_bytes") - rxb ))
log "iperf3 -P 8: $got bytes received; receiver netdev +$drxb bytes"
[ "$got" -gt 0 ] || fail "iperf3 -P 8 moved no data"
[ "$drxb" -ge "$got" ] || fail "receiver netdev counted $drxb bytes < the $got iperf3 received"
used=0
for ((q = 0; q < ch; q++)); do
    d=$(( $(ena_stat 1 "queue_${q}_rx_cnt") - before[q] ))
    log "RX queue $q: $d packets"
    [ "$d" -gt 100 ] && used=$((used + 1))
done
[ "$used" -ge 2 ] || fail "8 flows used only $used RX queue(s) (RSS spreading)"

ena_ns 0 ethtool -L "${ENA_IF[0]}" combined 1 || fail "ethtool -L combined 1 failed"
[ "$(ena_channels 0)" = 1 ] || fail "${ENA_IF[0]} shows $(ena_channels 0) channels after ethtool -L combined 1"
ena_assert_model_queues 0 1
ena_wait_carrier 0 10 || fail "no carrier after ethtool -L combined 1"
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ns 0 ethtool -L "${ENA_IF[0]}" combined "$ch" || fail "ethtool -L combined $ch failed"
[ "$(ena_channels 0)" = "$ch" ] || fail "${ENA_IF[0]} shows $(ena_channels 0) channels after ethtool -L combined $ch"
ena_assert_model_queues 0 "$ch"
ena_wait_carrier 0 10 || fail "no carrier after ethtool -L"
ena_ping_clean 0 "${ENA_V4[1]}" 5
log "ethtool -L 1 and back to $ch while up: read back, as many device queues, pings 5/5 each time"
ena_assert_model_clean
pass
