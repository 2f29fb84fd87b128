#!/usr/bin/env bash
# ENA ($ENA_DRIVER on the model) against an independent peer: a virtio-net NIC
# of the same guest whose QEMU backend is the model's wire (-netdev stream).
# Ping v4 both ways without loss, and iperf3 TCP both directions: data moved
# and the receiving netdev counted at least the bytes iperf3 received; no
# bad req_ids on the ENA side; the model counts no guest/DMA error.
# Run with: qemu-test/ena-vm --ena=virtio-peer -- env ENA_DRIVER=ena selftests/run.sh ena/virtio-peer
. "$(dirname "$0")/../ena-lib"
require_cmd modprobe ip ping iperf3 python3 ethtool
[ "${ENA_MODE:-}" = virtio-peer ] || fail "needs qemu-test/ena-vm --ena=virtio-peer (ENA_MODE='${ENA_MODE:-}')"
[ "$(ena_bdfs | wc -l)" = 1 ] || fail "expected one ENA function"
ena_model_clean_mark
ena_load
ena_if=$(ena_ifname 0)
[ -n "$ena_if" ] || fail "no ENA netdev"
virt_if=""
for n in /sys/class/net/*; do
    [ "$(cat "$n/address")" = 52:54:00:e0:00:01 ] && virt_if=$(basename "$n")
done
[ -n "$virt_if" ] || fail "no virtio-net NIC with MAC 52:54:00:e0:00:01"
# ENA_NS is (ena-a ena-b): the ENA side is "0", the virtio-net side "1".
ENA_IF=("$ena_if" "$virt_if") V4=(10.78.0.1 10.78.0.2)
for ns in ena-a ena-b; do ip netns del "$ns" 2>/dev/null; ip netns add "$ns" || fail "ip netns add $ns failed"; done
ip link set "$ena_if" netns ena-a && ip link set "$virt_if" netns ena-b || fail "moving interfaces into netns failed"
for i in 0 1; do
    ip -n "${ENA_NS[$i]}" addr add "${V4[$i]}/24" dev "${ENA_IF[$i]}" || fail "adding ${V4[$i]} failed"
    ip -n "${ENA_NS[$i]}" link set "${ENA_IF[$i]}" up || fail "ip link set ${ENA_IF[$i]} up failed"
    ip -n "${ENA_NS[$i]}" link set lo up
done
ena_wait_carrier 0 10 || fail "no carrier on $ena_if"
ena_wait_carrier 1 10 || fail "no carrier on $virt_if"
ena_ping_clean 0 10.78.0.2 5
ena_ping_clean 1 10.78.0.1 5
log "ping both ways between ENA ($ena_if) and virtio-net ($virt_if): 5/5"
for dir in "" -R; do
    r=1; [ "$dir" = -R ] && r=0 # the receiving side: virtio-net, or ENA with -R
    rxb=$(ena_ns "$r" cat "/sys/class/net/${ENA_IF[$r]}/statistics/rx_bytes")
    ena_ns 1 iperf3 -s -D -1 -p 5401 || fail "iperf3 server did not start"
    sleep 0.5
    # shellcheck disable=SC2086 # $dir is empty or -R
    ena_ns 0 timeout 120 iperf3 -c 10.78.0.2 -p 5401 -t 3 $dir -J > /tmp/vp.json || { tail -20 /tmp/vp.json; fail "iperf3 $dir failed"; }
    out=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["end"]; print(int(d["sum_received"]["bytes"]), round(d["sum_received"]["bits_per_second"]/1e6,1))' /tmp/vp.json) || fail "cannot read iperf3's JSON"
    got=${out% *}
    d=$(( $(ena_ns "$r" cat "/sys/class/net/${ENA_IF[$r]}/statistics/rx_bytes") - rxb ))
    [ "$got" -gt 0 ] || fail "iperf3 $dir moved nothing"
    [ "$d" -ge "$got" ] || fail "iperf3 $dir: ${ENA_IF[$r]} counted $d bytes received, less than iperf3's $got"
    log "iperf3 ENA ${dir:+<-}${dir:-->} virtio: $got bytes, ${out#* } Mbit/s; ${ENA_IF[$r]} rx_bytes +$d"
done
for c in rx_bad_req_id tx_bad_req_id rx_csum_bad; do
    v=$(ena_stat_sum 0 "$c")
    [ "$v" = 0 ] || fail "$ena_if: $c (all queues) = $v"
done
ena_assert_model_clean
pass
