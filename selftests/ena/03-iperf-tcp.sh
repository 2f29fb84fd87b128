#!/usr/bin/env bash
# iperf3 TCP in both directions; bytes accounted on both ends: what the
# receiver's netdev counted covers what iperf3 says it received.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3
ena_setup_pair
secs=${ENA_IPERF_SECS:-5}
# One iperf3 run (server in ns 1, client in ns 0): iperf3 moved data and the
# receiving netdev's byte counter grew by at least as much.
iperf_run() { # iperf_run WHAT PORT RECEIVER(0|1) [IPERF3-OPTIONS...]
    local what=$1 port=$2 r=$3 rx0 rx1 got bytes bps
    shift 3
    ena_ns 1 iperf3 -s -D -1 -p "$port" --logfile "/tmp/iperf-srv-$port.log" || fail "iperf3 server did not start"
    sleep 0.5
    rx0=$(ena_ns "$r" cat "/sys/class/net/${ENA_IF[$r]}/statistics/rx_bytes")
    ena_ns 0 iperf3 -c "${ENA_V4[1]}" -p "$port" -t "$secs" "$@" -J > "/tmp/iperf-$port.json" ||
        { cat "/tmp/iperf-$port.json"; fail "iperf3 $what failed"; }
    rx1=$(ena_ns "$r" cat "/sys/class/net/${ENA_IF[$r]}/statistics/rx_bytes")
    got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(int(d["end"]["sum_received"]["bytes"]), d["end"]["sum_received"]["bits_per_second"])' "/tmp/iperf-$port.json") || fail "cannot parse iperf3 output"
    bytes=${got% *} bps=${got#* }
    [ "$bytes" -gt 0 ] || fail "iperf3 $what moved no data"
    [ $((rx1 - rx0)) -ge "$bytes" ] || fail "$what: receiving netdev counted $((rx1 - rx0)) bytes, less than iperf3's $bytes"
    log "$what: $bytes bytes, $(python3 -c "print(round($bps/1e6,1))") Mbit/s; netdev rx grew by $((rx1 - rx0))"
}
iperf_run "a -> b" 5201 1
iperf_run "b -> a (reverse)" 5202 0 -R
for i in 0 1; do
    for c in queue_0_tx_bad_req_id queue_0_rx_bad_req_id queue_0_tx_missed_tx queue_0_rx_csum_bad; do
        v=$(ena_stat "$i" "$c")
        [ "${v:-0}" = 0 ] || fail "${ENA_IF[$i]}: $c = $v"
    done
done
good=$(ena_stat 1 queue_0_rx_csum_good)
[ "${good:-0}" -gt 0 ] || log "note: no RX checksum-good on queue 0 (flows may have used queue 1)"
pass
