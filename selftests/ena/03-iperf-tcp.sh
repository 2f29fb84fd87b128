#!/usr/bin/env bash
# iperf3 TCP in both directions; bytes accounted on both ends: what the
# receiver's netdev counted covers what iperf3 says it received.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3
ena_setup_pair
secs=${ENA_IPERF_SECS:-5}
ena_ns 1 iperf3 -s -D -1 -p 5201 --logfile /tmp/iperf-srv.log || fail "iperf3 server did not start"
sleep 0.5
rx0=$(ena_ns 1 cat "/sys/class/net/${ENA_IF[1]}/statistics/rx_bytes")
ena_ns 0 iperf3 -c "${ENA_V4[1]}" -p 5201 -t "$secs" -J > /tmp/iperf-fwd.json || { cat /tmp/iperf-fwd.json; fail "iperf3 a -> b failed"; }
rx1=$(ena_ns 1 cat "/sys/class/net/${ENA_IF[1]}/statistics/rx_bytes")
got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(int(d["end"]["sum_received"]["bytes"]), d["end"]["sum_received"]["bits_per_second"])' /tmp/iperf-fwd.json) || fail "cannot parse iperf3 output"
bytes=${got% *} bps=${got#* }
[ "$bytes" -gt 0 ] || fail "iperf3 moved no data"
[ $((rx1 - rx0)) -ge "$bytes" ] || fail "receiver netdev counted $((rx1 - rx0)) bytes, less than iperf3's $bytes"
log "a -> b: $bytes bytes, $(python3 -c "print(round($bps/1e6,1))") Mbit/s; netdev rx grew by $((rx1 - rx0))"

ena_ns 1 iperf3 -s -D -1 -p 5202 --logfile /tmp/iperf-srv2.log || fail "iperf3 server did not start"
sleep 0.5
rx0=$(ena_ns 0 cat "/sys/class/net/${ENA_IF[0]}/statistics/rx_bytes")
ena_ns 0 iperf3 -c "${ENA_V4[1]}" -p 5202 -t "$secs" -R -J > /tmp/iperf-rev.json || { cat /tmp/iperf-rev.json; fail "iperf3 b -> a (reverse) failed"; }
rx1=$(ena_ns 0 cat "/sys/class/net/${ENA_IF[0]}/statistics/rx_bytes")
got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(int(d["end"]["sum_received"]["bytes"]), d["end"]["sum_received"]["bits_per_second"])' /tmp/iperf-rev.json) || fail "cannot parse iperf3 output"
bytes=${got% *} bps=${got#* }
[ "$bytes" -gt 0 ] || fail "reverse iperf3 moved no data"
[ $((rx1 - rx0)) -ge "$bytes" ] || fail "netdev a counted $((rx1 - rx0)) bytes, less than iperf3's $bytes"
log "b -> a: $bytes bytes, $(python3 -c "print(round($bps/1e6,1))") Mbit/s; netdev rx grew by $((rx1 - rx0))"
for i in 0 1; do
    for c in queue_0_tx_bad_req_id queue_0_rx_bad_req_id queue_0_tx_missed_tx queue_0_rx_csum_bad; do
        v=$(ena_stat "$i" "$c")
        [ "${v:-0}" = 0 ] || fail "${ENA_IF[$i]}: $c = $v"
    done
done
good=$(ena_stat 1 queue_0_rx_csum_good)
[ "${good:-0}" -gt 0 ] || log "note: no RX checksum-good on queue 0 (flows may have used queue 1)"
pass
