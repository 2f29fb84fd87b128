#!/usr/bin/env bash
# Guest half of the ENA part of `make bench` (scripts/bench; not a test): the
# C ena and rena on the device model's pair backend, alternated in one boot
# (repetition k runs every row on ena, then on rena, then on veth; the order
# is reversed every other repetition so that drift hits both drivers), with a
# veth pair between two netns as the no-device ceiling. The drivers are
# switched with rmmod and ena-lib's ena_load (driver_override, modprobe ena /
# insmod rena.ko). Prints one line per measurement:
#   RESULT,<row>,<target>,<rep>,<value>
# Rows (unit; which direction is better):
#   tcp-1flow         iperf3 TCP stream, Gbit/s received; higher
#   tcp-<N>flows      iperf3 -P N, Gbit/s received; higher
#   udp64             iperf3 UDP 64-byte payloads at -b 0, packets/s received; higher
#   tcp-rr            TCP 1-byte request/response (python ping-pong), transactions/s;
#                     higher (its inverse is the round-trip latency)
#   irq-adaptive-on   IO-vector interrupts of both functions (/proc/interrupts,
#   irq-adaptive-off  the functions' MSI-X IRQs minus the management vector) per
#                     packet received by both netdevs, during a TCP stream paced
#                     at BENCH_ENA_IRQ_RATE, with `ethtool -C adaptive-rx on`, or
#                     off with the drivers' default rx-usecs 20 tx-usecs 64; lower
#   model-us-per-pkt  the model's CPU time (host) per packet it handled during
#   model-cores       the target's block, and its CPU time per wall second
#                     (ena/rena only, always measured: shows whether the model
#                     could be the bottleneck)
# Environment: BENCH_REPS (5), BENCH_SECS (5), BENCH_ENA_ROWS (regex on row
# names, default all), BENCH_ENA_TARGETS ("ena rena veth"), BENCH_ENA_FLOWS (N
# of tcp-<N>flows, default 2 x CPUs so that RSS spreads the flows over every
# queue), BENCH_ENA_IRQ_RATE (iperf3 -b of the interrupt rows, default 100M).
# (positional [REPS] [SECS] also work).
# Run: qemu-test/ena-vm --ena=pair --ena-queues 2 --cpus 2 -- qemu-test/ena-model/bench-guest.sh
set -u
# ena-lib wants a driver; use_target switches DRV between ena and rena.
export ENA_DRIVER=ena
# shellcheck source-path=SCRIPTDIR source=../../selftests/ena/ena-lib
. "$(dirname "$0")/../../selftests/ena/ena-lib"
ena_require_pair
require_cmd iperf3 python3 rmmod
reps=${BENCH_REPS:-${1:-5}} secs=${BENCH_SECS:-${2:-5}} rows_re=${BENCH_ENA_ROWS:-.}
targets=${BENCH_ENA_TARGETS:-ena rena veth}
ncpu=$(nproc)
flows=${BENCH_ENA_FLOWS:-$((2 * ncpu))}
irq_rate=${BENCH_ENA_IRQ_RATE:-100M}
ROWS=(tcp-1flow "tcp-${flows}flows" udp64 tcp-rr irq-adaptive-on irq-adaptive-off)
VETH_NS=(bench-va bench-vb)
VETH_V4=(10.78.0.1 10.78.0.2)
IPERF_PORT=5501

# TCP request/response: 1-byte ping-pong with TCP_NODELAY. The client retries
# its connection while the server (a slow python start under TCG) comes up;
# the server gives up if no client comes within 60 s.
cat > /tmp/rr.py <<'PY'
import socket, sys, time
mode, host, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 5601)); s.listen(1); s.settimeout(60); c, _ = s.accept()
    c.settimeout(None); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b: break
        c.sendall(b)
else:
    for attempt in range(200):
        try:
            c = socket.create_connection((host, 5601)); break
        except ConnectionRefusedError:
            if attempt == 199: raise
            time.sleep(0.1)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = 0; end = time.time() + secs
    while time.time() < end:
        c.sendall(b"x"); c.recv(1); n += 1
    print(n / secs)
PY

veth_setup() {
    local i
    for i in 0 1; do
        ip netns list | grep -qw "${VETH_NS[$i]}" || ip netns add "${VETH_NS[$i]}" || fail "ip netns add ${VETH_NS[$i]} failed"
    done
    if ! ip -n "${VETH_NS[0]}" link show bv0 >/dev/null 2>&1; then
        ip link add bv0 netns "${VETH_NS[0]}" type veth peer name bv1 netns "${VETH_NS[1]}" ||
            fail "cannot create the veth pair"
    fi
    for i in 0 1; do
        ip -n "${VETH_NS[$i]}" link set lo up
        ip -n "${VETH_NS[$i]}" addr replace "${VETH_V4[$i]}/24" dev "bv$i" || fail "adding ${VETH_V4[$i]} failed"
        ip -n "${VETH_NS[$i]}" link set "bv$i" up || fail "ip link set bv$i up failed"
    done
}

# Selects a target: the client runs in netns $NS_A, the server in $NS_B at $PEER.
use_target() {
    local other
    case "$1" in
        ena|rena)
            other=ena; [ "$1" = ena ] && other=rena
            if [ -d "/sys/bus/pci/drivers/$other" ]; then
                DRV=$other
                ena_unload || fail "rmmod $other failed"
            fi
            DRV=$1
            ena_setup_pair >&2
            NS_A=${ENA_NS[0]} NS_B=${ENA_NS[1]} PEER=${ENA_V4[1]} ;;
        veth)
            veth_setup
            NS_A=${VETH_NS[0]} NS_B=${VETH_NS[1]} PEER=${VETH_V4[1]} ;;
        *) fail "unknown target $1 (want ena, rena or veth)" ;;
    esac
    ip netns exec "$NS_A" ping -c 1 -W 5 "$PEER" >/dev/null || fail "$1: no ping from $NS_A to $PEER"
}

iperf() { # iperf ARGS... -> JSON of a client run against the target's server
    ip netns exec "$NS_A" iperf3 -c "$PEER" -p "$IPERF_PORT" -t "$secs" -J "$@"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Interrupts on the IO vectors of both model functions: the functions' MSI-X
# IRQs, named <ifname>-Tx-Rx-<q> by the C driver and rena-io by rena (the
# management vectors, ena-mgmnt@pci:... and rena-mgmt, are left out).
io_irqs() {
    local b f irqs=""
    for b in $(ena_bdfs); do
        for f in "/sys/bus/pci/devices/$b/msi_irqs/"*; do irqs+=" ${f##*/}"; done
    done
    awk -v irqs="$irqs" -v ncpu="$ncpu" '
        BEGIN { n = split(irqs, a, " "); for (i = 1; i <= n; i++) want[a[i] ":"] = 1 }
        ($1 in want) && /-Tx-Rx-|rena-io/ { m++; for (i = 2; i <= ncpu + 1; i++) s += $i }
        END { if (!m) exit 1; print s }' /proc/interrupts
}
rx_pkts() {
    local i s=0
    for i in 0 1; do
        s=$((s + $(ena_ns "$i" cat "/sys/class/net/${ENA_IF[$i]}/statistics/rx_packets")))
    done
    echo "$s"
}

# Runs one row on the current target (not the interrupt rows on veth) and
# prints its value.
run_row() {
    local out i0 i1 p0 p1 i srv
    case "$1" in
        tcp-1flow) iperf | json 'd["end"]["sum_received"]["bits_per_second"] / 1e9' ;;
        tcp-*flows) iperf -P "$flows" | json 'd["end"]["sum_received"]["bits_per_second"] / 1e9' ;;
        udp64) iperf -u -l 64 -b 0 |
            json 'round((d["end"]["sum"]["packets"] - d["end"]["sum"]["lost_packets"]) / d["end"]["sum"]["seconds"])' ;;
        tcp-rr)
            ip netns exec "$NS_B" python3 /tmp/rr.py server "$PEER" 0 & srv=$!
            out=$(ip netns exec "$NS_A" python3 /tmp/rr.py client "$PEER" "$secs")
            kill "$srv" 2>/dev/null
            wait "$srv" 2>/dev/null
            echo "$out" ;;
        irq-adaptive-*)
            for i in 0 1; do
                if [ "$1" = irq-adaptive-on ]; then
                    ena_ns "$i" ethtool -C "${ENA_IF[$i]}" adaptive-rx on
                else
                    ena_ns "$i" ethtool -C "${ENA_IF[$i]}" adaptive-rx off rx-usecs 20 tx-usecs 64
                fi || fail "$DRV: ethtool -C ${ENA_IF[$i]} for $1 failed"
            done
            i0=$(io_irqs) || fail "$DRV: no IO vectors of the model's functions in /proc/interrupts"
            p0=$(rx_pkts)
            out=$(iperf -b "$irq_rate" | json 'd["end"]["sum_received"]["bits_per_second"] / 1e6') ||
                fail "$DRV: iperf3 for $1 failed"
            i1=$(io_irqs) p1=$(rx_pkts)
            # Back to the default of both drivers.
            for i in 0 1; do ena_ns "$i" ethtool -C "${ENA_IF[$i]}" adaptive-rx on; done
            echo "bench: $DRV $1: $((i1 - i0)) IO interrupts, $((p1 - p0)) packets received, $out Mbit/s" >&2
            [ $((p1 - p0)) -gt 0 ] || fail "$DRV: no packets received during $1"
            awk -v i=$((i1 - i0)) -v p=$((p1 - p0)) 'BEGIN { printf "%.4f\n", i / p }' ;;
    esac
}

# The model's cumulative CPU time (s) and packet count, from its `status`.
model_cpu() {
    local n k
    n=$(grep -c 'model cpu' "$ENA_CTL.out" 2>/dev/null)
    echo status >> "$ENA_CTL" || fail "cannot write the model control file $ENA_CTL"
    for ((k = 0; k < 100; k++)); do
        [ "$(grep -c 'model cpu' "$ENA_CTL.out" 2>/dev/null)" -gt "${n:-0}" ] && break
        sleep 0.1
    done
    grep 'model cpu' "$ENA_CTL.out" | tail -1 | awk '{ print $4 + $7, $9 }'
}

echo "bench: $ncpu CPUs, $reps repetitions x $secs s, targets: $targets" >&2
for ((rep = 1; rep <= reps; rep++)); do
    order=$targets
    [ $((rep % 2)) = 0 ] && order=$(echo "$targets" | tr ' ' '\n' | tac | tr '\n' ' ')
    for t in $order; do
        use_target "$t"
        if [ "$t" != veth ]; then
            read -r cpu0 pk0 < <(model_cpu)
            w0=$(date +%s.%N)
        fi
        ip netns exec "$NS_B" iperf3 -s -D -p "$IPERF_PORT" --pidfile /tmp/bench-iperf.pid >/dev/null ||
            fail "$t: iperf3 server did not start"
        sleep 0.5
        for row in "${ROWS[@]}"; do
            [[ "$row" =~ $rows_re ]] || continue
            [ "$t" = veth ] && [[ "$row" == irq-* ]] && continue
            v=$(run_row "$row") || fail "$row on $t failed: $v"
            [ -n "$v" ] || fail "no result for $row on $t"
            echo "RESULT,$row,$t,$rep,$v"
            echo "bench: rep $rep $t $row: $v" >&2
        done
        kill "$(cat /tmp/bench-iperf.pid)" 2>/dev/null
        sleep 0.2
        if [ "$t" != veth ]; then
            read -r cpu1 pk1 < <(model_cpu)
            w1=$(date +%s.%N)
            awk -v c0="$cpu0" -v c1="$cpu1" -v p0="$pk0" -v p1="$pk1" -v w0="$w0" -v w1="$w1" \
                -v t="$t" -v rep="$rep" 'BEGIN {
                    if (p1 > p0) printf "RESULT,model-us-per-pkt,%s,%d,%.3f\n", t, rep, (c1 - c0) * 1e6 / (p1 - p0)
                    printf "RESULT,model-cores,%s,%d,%.3f\n", t, rep, (c1 - c0) / (w1 - w0) }'
        fi
    done
done
for d in ena rena; do [ -d "/sys/bus/pci/drivers/$d" ] && { DRV=$d; ena_unload; }; done
exit 0
