#!/usr/bin/env bash
# Jumbo frames: the device max MTU (the model's 9000) is accepted on both
# ends and one above it is refused (MTU unchanged); with MTU 9000, 8972-byte
# pings with DF set go through both ways without loss as 9000-byte frames
# (receiver byte counters), IPv6 too, and iperf3 TCP runs with frames larger than 1500 bytes (average
# RX frame size) and the receiver's netdev byte counter covers every byte
# iperf3 received, and counted checksum-good for at least 95% of the
# checksums the model verified (a jumbo frame's result is in its last
# descriptor); no checksum or req_id errors. Back at 1500, DF pings of
# 1472 bytes pass both ways without loss and 1473 bytes are refused.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3 ping python3
ena_setup_pair

# netdev counter (sysfs statistics) of function I
nstat_of() { ena_ns "$1" cat "/sys/class/net/${ENA_IF[$1]}/statistics/$2"; }
mtu_of() { ena_ns "$1" cat "/sys/class/net/${ENA_IF[$1]}/mtu"; }
set_mtu() { # set_mtu MTU: both ends
    local i
    for i in 0 1; do
        ena_ns "$i" ip link set "${ENA_IF[$i]}" mtu "$1" || fail "ip link set ${ENA_IF[$i]} mtu $1 was refused"
        [ "$(mtu_of "$i")" = "$1" ] || fail "${ENA_IF[$i]} MTU reads $(mtu_of "$i") after setting $1"
    done
    for i in 0 1; do
        ena_wait_carrier "$i" 15 || fail "no carrier on ${ENA_IF[$i]} after MTU $1"
    done
}
trap 'for i in 0 1; do ena_ns $i ip link set "${ENA_IF[$i]}" mtu 1500 2>/dev/null; done' EXIT

max=$(ena_ns 0 ip -d link show "${ENA_IF[0]}" | grep -o 'maxmtu [0-9]*' | awk '{ print $2 }')
log "${ENA_IF[0]}: maxmtu ${max:-?}"
[ -n "$max" ] || fail "ip -d link shows no maxmtu for ${ENA_IF[0]}"
[ "$max" -ge 9000 ] || fail "maxmtu $max < 9000: the driver did not take the device's max MTU (model default 9000)"

# Above the device maximum: refused, MTU unchanged.
if ena_ns 0 ip link set "${ENA_IF[0]}" mtu $((max + 1)) 2>/dev/null; then
    fail "MTU $((max + 1)) (above the device max $max) was accepted"
fi
[ "$(mtu_of 0)" = 1500 ] || fail "MTU is $(mtu_of 0) after a refused change (want 1500)"
log "MTU $((max + 1)) refused, MTU still 1500"

set_mtu 9000
for dir in "0 1" "1 0"; do
    read -r a b <<<"$dir"
    rx0=$(nstat_of "$b" rx_bytes)
    ena_ping_clean "$a" "${ENA_V4[$b]}" 3 -M do -s 8972
    d=$(( $(nstat_of "$b" rx_bytes) - rx0 ))
    log "DF ping 8972 B ${ENA_IF[$a]} -> ${ENA_IF[$b]}: ok, receiver rx_bytes +$d"
    [ "$d" -ge $((3 * 9000)) ] || fail "receiver counted only $d bytes for 3 9000-byte requests"
done
# IPv6 9000-byte packets (8952 + 8 ICMPv6 + 40 IPv6 header) both ways.
ena_ping_clean 0 "${ENA_V6[1]}" 3 -M do -s 8952
ena_ping_clean 1 "${ENA_V6[0]}" 3 -M do -s 8952

# TCP with the large MTU, 0 -> 1. A 9000-byte frame spans several RX
# buffers, and the device writes the checksum result only in the last
# descriptor's completion: the driver must read it from there.
rxb=$(nstat_of 1 rx_bytes) rxp=$(nstat_of 1 rx_packets)
g0=$(ena_stat_sum 1 rx_csum_good) k0=$(ena_model_counter 1 rx_csum_checked)
# (rena-only/01's malformed completion earlier in a boot counts rx_bad_desc_num.)
ena_stats_mark 1 rx_csum_bad rx_bad_req_id rx_bad_desc_num
ena_ns 1 iperf3 -s -D -1 -p 5311 --logfile /tmp/iperf-jumbo.log || fail "iperf3 server did not start"
sleep 0.5
ena_ns 0 timeout 60 iperf3 -c "${ENA_V4[1]}" -p 5311 -t 3 -J >/tmp/iperf-jumbo.json \
    || { tail -20 /tmp/iperf-jumbo.json; fail "iperf3 TCP at MTU 9000 failed"; }
got=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' /tmp/iperf-jumbo.json) \
    || fail "cannot read the received bytes from iperf3's JSON"
drxb=$(( $(nstat_of 1 rx_bytes) - rxb )) drxp=$(( $(nstat_of 1 rx_packets) - rxp ))
k1=$(ena_model_counter 1 rx_csum_checked) g1=$(ena_stat_sum 1 rx_csum_good)
[ "$drxp" -gt 0 ] || fail "receiver counted no packets during iperf3"
avg=$((drxb / drxp))
log "iperf3 TCP at MTU 9000: $got bytes received; receiver netdev +$drxb B in $drxp frames (avg $avg B)"
[ "$got" -gt 0 ] || fail "iperf3 received nothing"
[ "$drxb" -ge "$got" ] || fail "receiver netdev counted $drxb bytes < the $got iperf3 received"
[ "$avg" -gt 2000 ] || fail "average RX frame $avg bytes: frames were not jumbo"
log "receiver rx_csum_good +$((g1 - g0)); the model verified +$((k1 - k0)) checksums for function 1"
[ $((k1 - k0)) -gt 0 ] || fail "the model verified no RX checksum for function 1 during iperf3"
[ $(( (g1 - g0) * 100 )) -ge $(( (k1 - k0) * 95 )) ] ||
    fail "receiver counted $((g1 - g0)) rx_csum_good for the $((k1 - k0)) jumbo-frame checksums the model verified (under 95%)"
ena_assert_stats_unchanged "the jumbo traffic"

# Back to 1500: 1472-byte DF pings pass, 1473 bytes do not.
set_mtu 1500
ena_ping_clean 0 "${ENA_V4[1]}" 3 -M do -s 1472
ena_ping_clean 1 "${ENA_V4[0]}" 3 -M do -s 1472
if ena_ns 0 ping -Mdo -s 1473 -c 1 -W 2 "${ENA_V4[1]}" >/tmp/ping-1473.out 2>&1; then
    fail "ping -Mdo -s 1473 went through at MTU 1500"
fi
# Refused by the local stack for its size, not lost for some other reason.
grep -qi 'message too long' /tmp/ping-1473.out ||
    fail "ping -Mdo -s 1473 failed, but not as too long for MTU 1500: $(tail -2 /tmp/ping-1473.out)"
log "back at MTU 1500: 1472-byte DF pings pass, 1473 refused"
ena_assert_model_clean
pass
