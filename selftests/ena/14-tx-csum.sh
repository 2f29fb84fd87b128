#!/usr/bin/env bash
# TX checksum offload: with tx-checksumming on (ethtool -k) and TSO off, TCP
# (a 4 MiB file through socat) and UDP (iperf3) packets are handed to the
# device with CHECKSUM_PARTIAL: the model's counters show L4 checksum offload
# requested in partial mode for at least as many packets as the sender's
# netdev sent, the model verified their checksums on the receiving function
# with none bad, the receiver saw no checksum errors (driver csum_bad,
# TcpInCsumErrors, UdpInCsumErrors) and the file arrives intact (sha256).
# With tx-checksumming off, no offload is requested (counter unchanged) and
# the data still arrives intact. TSO must be on by default (the model offers
# it) and is then checked to be counted apart: the model segments
# super-frames.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3 socat sha256sum nstat python3
ena_setup_pair
tx=${ENA_IF[0]} rx=${ENA_IF[1]}

feat() { ena_ns 0 ethtool -k "$tx" | awk -v f="$1:" '$1 == f { print $2 }'; }
[ -n "$(feat tx-checksumming)" ] || fail "ethtool -k $tx shows no tx-checksumming"
# The model offers TSO (v4 and v6): the driver must have turned it on.
tso0=$(feat tcp-segmentation-offload)
[ "$tso0" = on ] || fail "tcp-segmentation-offload is '${tso0:-absent}' at the start on $tx, though the model offers TSO"
trap 'ena_ns 0 ethtool -K "$tx" tx on tso on >/dev/null 2>&1' EXIT
ena_ns 0 ethtool -K "$tx" tx on >/dev/null 2>&1
[ "$(feat tx-checksumming)" = on ] || fail "tx-checksumming is '$(feat tx-checksumming)' on $tx and cannot be turned on"
ena_ns 0 ethtool -K "$tx" tso off >/dev/null 2>&1
[ "$(feat tcp-segmentation-offload)" = off ] || fail "cannot turn TSO off on $tx"
log "$tx: tx-checksumming on, TSO off (was on)"

dd if=/dev/urandom of=/tmp/csum-src bs=1M count=4 status=none || fail "cannot make the test file"
want=$(sha256sum </tmp/csum-src)
port=5340
send_file() { # send_file WHAT: TCP 0 -> 1 with socat, checks the copy
    port=$((port + 1))
    rm -f /tmp/csum-dst
    ena_ns 1 timeout 60 socat -u "TCP-LISTEN:$port,reuseaddr" OPEN:/tmp/csum-dst,creat,trunc &
    local lpid=$!
    # The listener may not be up yet (a slow guest): the sender retries.
    ena_ns 0 timeout 60 socat -u OPEN:/tmp/csum-src "TCP:${ENA_V4[1]}:$port,retry=250,interval=0.1" || fail "$1: socat send failed"
    wait "$lpid" || fail "$1: socat receiver failed"
    [ "$(sha256sum </tmp/csum-dst)" = "$want" ] || fail "$1: the received file differs from the sent one"
}
csum_errors() { # TcpInCsumErrors + UdpInCsumErrors + driver rx_csum_bad (all queues) of the receiver
    local n d
    # -a: absolute values, -z: zeros too, so both counters must be listed.
    n=$(ena_ns 1 nstat -az TcpInCsumErrors UdpInCsumErrors |
        awk '$1 == "TcpInCsumErrors" || $1 == "UdpInCsumErrors" { k++; s += $2 } END { if (k == 2) print s }')
    [ -n "$n" ] || fail "nstat -az in ${ENA_NS[1]} does not list both TcpInCsumErrors and UdpInCsumErrors"
    d=$(ena_stat_sum 1 rx_csum_bad)
    echo $((n + d))
}

run_traffic() { # run_traffic WHAT: file over TCP, then 2 s of UDP; sets P (packets sent by function 0)
    local p0
    p0=$(ena_ns 0 cat "/sys/class/net/$tx/statistics/tx_packets")
    send_file "$1"
    port=$((port + 1))
    ena_ns 1 iperf3 -s -D -1 -p "$port" --logfile /tmp/iperf-csum.log || fail "iperf3 server did not start"
    sleep 0.5
    ena_ns 0 timeout 60 iperf3 -u -c "${ENA_V4[1]}" -p "$port" -t 2 -b 20M -l 1200 -J >/tmp/iperf-csum.json \
        || { tail -5 /tmp/iperf-csum.json; fail "$1: iperf3 UDP failed"; }
    U=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]["sum"]; print(e["packets"] - e["lost_packets"])' /tmp/iperf-csum.json) \
        || fail "$1: cannot read iperf3's UDP result"
    [ "$U" -gt 0 ] || fail "$1: no UDP datagram arrived"
    P=$(( $(ena_ns 0 cat "/sys/class/net/$tx/statistics/tx_packets") - p0 ))
}

e0=$(csum_errors)
c0=$(ena_model_counter 0 tx_csum) p0=$(ena_model_counter 0 tx_csum_partial)
k0=$(ena_model_counter 1 rx_csum_checked) b0=$(ena_model_counter 1 rx_csum_bad)
run_traffic "offload on"
c=$(( $(ena_model_counter 0 tx_csum) - c0 )) p=$(( $(ena_model_counter 0 tx_csum_partial) - p0 ))
k=$(( $(ena_model_counter 1 rx_csum_checked) - k0 )) b=$(( $(ena_model_counter 1 rx_csum_bad) - b0 ))
e=$(( $(csum_errors) - e0 ))
log "offload on: $tx sent $P packets; model: L4 csum offload asked for $c ($p partial), receiver side verified $k, bad $b; $U UDP datagrams arrived; receiver csum errors +$e"
[ "$p" -gt 0 ] || fail "no packet was handed to the device with a partial checksum to complete"
# Everything function 0 sent was TCP or UDP but a few ARP/ND packets.
[ "$p" -ge $((P - 10)) ] || fail "only $p of $P sent packets asked for checksum offload"
[ "$k" -ge "$p" ] || fail "the model verified $k received checksums, fewer than the $p offloaded"
[ "$b" = 0 ] || fail "$b packets arrived with a bad checksum"
[ "$e" = 0 ] || fail "the receiver counted $e checksum errors"

ena_ns 0 ethtool -K "$tx" tx off >/dev/null 2>&1
[ "$(feat tx-checksumming)" = off ] || fail "cannot turn tx-checksumming off on $tx"
c0=$(ena_model_counter 0 tx_csum)
e0=$(csum_errors)
run_traffic "offload off"
c=$(( $(ena_model_counter 0 tx_csum) - c0 ))
e=$(( $(csum_errors) - e0 ))
log "offload off: $tx sent $P packets; model: checksum offload asked for $c; receiver csum errors +$e"
[ "$c" = 0 ] || fail "tx-checksumming off, yet $c packets asked the device for checksum offload"
[ "$e" = 0 ] || fail "the receiver counted $e checksum errors with software checksums"
ena_ns 0 ethtool -K "$tx" tx on >/dev/null 2>&1
[ "$(feat tx-checksumming)" = on ] || fail "cannot turn tx-checksumming back on on $tx"

ena_ns 0 ethtool -K "$tx" tso on >/dev/null 2>&1
[ "$(feat tcp-segmentation-offload)" = on ] || fail "cannot turn TSO back on on $tx"
t0=$(ena_model_counter 0 tso_pkts) s0=$(ena_model_counter 0 tso_segs)
send_file "TSO on"
t=$(( $(ena_model_counter 0 tso_pkts) - t0 )) s=$(( $(ena_model_counter 0 tso_segs) - s0 ))
log "TSO on: the model segmented $t super-frames into $s segments; file intact"
{ [ "$t" -gt 0 ] && [ "$s" -gt "$t" ]; } || fail "TSO on, yet the model segmented $t frames into $s segments"
ena_assert_model_clean
pass
