#!/usr/bin/env bash
# iperf3 TCP in both directions; bytes accounted on both ends: what the
# receiver's netdev counted covers what iperf3 says it received. RX checksum
# offload: the receiver's driver counted checksum-good (rx_csum_good summed
# over its queues) for at least 95% of the TCP/UDP packets the model verified
# on that function during the run, and nothing checksum-bad (driver and
# model); with "ethtool -K rx off" none at all; no bad req_ids or missed TX
# completions.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3 python3
ena_setup_pair
for i in 0 1; do ena_stats_mark "$i" tx_bad_req_id rx_bad_req_id tx_missed_tx rx_csum_bad; done
secs=${ENA_IPERF_SECS:-5}
# One iperf3 run (server in ns 1, client in ns 0): iperf3 moved data, the
# receiving netdev's byte counter grew by at least as much, and its driver
# marked the received packets checksum-good.
iperf_run() { # iperf_run WHAT PORT RECEIVER(0|1) [IPERF3-OPTIONS...]
    local what=$1 port=$2 r=$3 rx0 rx1 got bytes bps g0 g1 k0 k1 b0 b1 mb0 mb1
    shift 3
    ena_ns 1 iperf3 -s -D -1 -p "$port" --logfile "/tmp/iperf-srv-$port.log" || fail "iperf3 server did not start"
    sleep 0.5
    rx0=$(ena_ns "$r" cat "/sys/class/net/${ENA_IF[$r]}/statistics/rx_bytes")
    g0=$(ena_stat_sum "$r" rx_csum_good) b0=$(ena_stat_sum "$r" rx_csum_bad)
    k0=$(ena_model_counter "$r" rx_csum_checked) mb0=$(ena_model_counter "$r" rx_csum_bad)
    ena_ns 0 timeout 120 iperf3 -c "${ENA_V4[1]}" -p "$port" -t "$secs" "$@" -J > "/tmp/iperf-$port.json" ||
        { cat "/tmp/iperf-$port.json"; fail "iperf3 $what failed"; }
    sleep 0.5 # the last ACK/FIN of the test connections
    k1=$(ena_model_counter "$r" rx_csum_checked) mb1=$(ena_model_counter "$r" rx_csum_bad)
    g1=$(ena_stat_sum "$r" rx_csum_good) b1=$(ena_stat_sum "$r" rx_csum_bad)
    rx1=$(ena_ns "$r" cat "/sys/class/net/${ENA_IF[$r]}/statistics/rx_bytes")
    got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(int(d["end"]["sum_received"]["bytes"]), d["end"]["sum_received"]["bits_per_second"])' "/tmp/iperf-$port.json") || fail "cannot parse iperf3 output"
    bytes=${got% *} bps=${got#* }
    [ "$bytes" -gt 0 ] || fail "iperf3 $what moved no data"
    [ $((rx1 - rx0)) -ge "$bytes" ] || fail "$what: receiving netdev counted $((rx1 - rx0)) bytes, less than iperf3's $bytes"
    log "$what: $bytes bytes, $(python3 -c "print(round($bps/1e6,1))") Mbit/s; netdev rx grew by $((rx1 - rx0))"
    log "$what: ${ENA_IF[$r]} rx_csum_good +$((g1 - g0)), rx_csum_bad +$((b1 - b0)); model verified +$((k1 - k0)) checksums on function $r, bad +$((mb1 - mb0))"
    [ $((k1 - k0)) -gt 0 ] || fail "$what: the model verified no RX checksum on function $r"
    [ $((g1 - g0)) -gt 0 ] || fail "$what: ${ENA_IF[$r]} counted no rx_csum_good during TCP traffic"
    [ $(((g1 - g0) * 100)) -ge $(((k1 - k0) * 95)) ] ||
        fail "$what: ${ENA_IF[$r]} counted $((g1 - g0)) rx_csum_good, under 95% of the $((k1 - k0)) checksums the model verified"
    [ "$b1" = "$b0" ] || fail "$what: ${ENA_IF[$r]} counted $((b1 - b0)) rx_csum_bad"
    [ "$mb1" = "$mb0" ] || fail "$what: the model found $((mb1 - mb0)) bad checksums arriving at function $r"
}
iperf_run "a -> b" 5201 1
iperf_run "b -> a (reverse)" 5202 0 -R

# "ethtool -K rx off" on the receiver: the driver reports no checksum result
# (C's ena_rx_checksum returns first thing), so rx_csum_good stays put while
# TCP still flows and the stack checks the checksums itself.
ifr=${ENA_IF[1]}
ena_ns 1 ethtool -K "$ifr" rx off || fail "ethtool -K $ifr rx off failed"
trap 'ena_ns 1 ethtool -K "$ifr" rx on >/dev/null 2>&1' EXIT
[ "$(ena_ns 1 ethtool -k "$ifr" | awk '$1 == "rx-checksumming:" { print $2 }')" = off ] ||
    fail "rx-checksumming does not read off on $ifr after ethtool -K rx off"
ena_ns 1 iperf3 -s -D -1 -p 5203 --logfile /tmp/iperf-srv-5203.log || fail "iperf3 server did not start"
sleep 0.5
g0=$(ena_stat_sum 1 rx_csum_good) rx0=$(ena_ns 1 cat "/sys/class/net/$ifr/statistics/rx_packets")
ena_ns 0 timeout 120 iperf3 -c "${ENA_V4[1]}" -p 5203 -t 2 -J > /tmp/iperf-5203.json ||
    { cat /tmp/iperf-5203.json; fail "iperf3 with rx checksumming off failed"; }
g1=$(ena_stat_sum 1 rx_csum_good) rx1=$(ena_ns 1 cat "/sys/class/net/$ifr/statistics/rx_packets")
log "rx off: $ifr received $((rx1 - rx0)) packets, rx_csum_good +$((g1 - g0))"
[ $((rx1 - rx0)) -gt 100 ] || fail "rx off: $ifr received only $((rx1 - rx0)) packets during iperf3"
[ "$g1" = "$g0" ] || fail "rx-checksumming off, yet $ifr counted $((g1 - g0)) rx_csum_good (the driver still reports the device's checksum result)"
ena_ns 1 ethtool -K "$ifr" rx on || fail "ethtool -K $ifr rx on failed"
trap - EXIT
ena_assert_stats_unchanged "the iperf3 runs"
ena_assert_model_clean
pass
