#!/usr/bin/env bash
# Guest side of the ENA model benchmark (not a test): C ena on the model,
# pair backend, two netns. Medians of N runs (default 5) of: iperf3 TCP
# stream Gbit/s, iperf3 UDP 64-byte packets/s, TCP request/response rate
# (python ping-pong, 1-byte messages), then the model's CPU time per packet.
# Run: qemu-test/ena-vm --ena=pair -- qemu-test/ena-model/bench-guest.sh [N] [SECS]
# (ENA_DRIVER=rena in the environment benchmarks rena instead.)
ENA_DRIVER=${ENA_DRIVER:-ena}
. "$(dirname "$0")/../../selftests/ena/ena-lib"
ena_require_pair
require_cmd iperf3 python3
ena_setup_pair
n=${1:-5} secs=${2:-5}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
spread() { sort -g | awk '{ a[NR] = $1 } END { printf "min %s max %s", a[1], a[NR] }'; }
ena_ns 1 iperf3 -s -D -p 5501 >/dev/null || fail "iperf3 server"
sleep 0.5
tcp=() udp=() rr=()
for ((k = 0; k < n; k++)); do
    tcp+=("$(ena_ns 0 iperf3 -c "${ENA_V4[1]}" -p 5501 -t "$secs" -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)')")
    udp+=("$(ena_ns 0 iperf3 -c "${ENA_V4[1]}" -p 5501 -t "$secs" -u -l 64 -b 0 -J | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print(round((e["packets"]-e["lost_packets"])/e["seconds"]))')")
done
cat > /tmp/rr.py <<'PY'
import socket, sys, time
mode, host, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 5601)); s.listen(1); c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b: break
        c.sendall(b)
else:
    c = socket.create_connection((host, 5601)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = 0; end = time.time() + secs
    while time.time() < end:
        c.sendall(b"x"); c.recv(1); n += 1
    print(n / secs)
PY
for ((k = 0; k < n; k++)); do
    ena_ns 1 python3 /tmp/rr.py server "${ENA_V4[1]}" 0 & srv=$!
    sleep 1
    rr+=("$(ena_ns 0 python3 /tmp/rr.py client "${ENA_V4[1]}" "$secs")")
    wait "$srv" 2>/dev/null
done
echo "BENCH tcp_stream_gbps median $(printf '%s\n' "${tcp[@]}" | median) ($(printf '%s\n' "${tcp[@]}" | spread)) runs=$n secs=$secs"
echo "BENCH udp64_pps median $(printf '%s\n' "${udp[@]}" | median) ($(printf '%s\n' "${udp[@]}" | spread))"
echo "BENCH tcp_rr_per_s median $(printf '%s\n' "${rr[@]}" | median) ($(printf '%s\n' "${rr[@]}" | spread))"
ena_ctl status
grep 'model cpu' "$ENA_CTL.out" | tail -1 | sed 's/^/BENCH /'
pass
