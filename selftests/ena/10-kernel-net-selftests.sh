#!/usr/bin/env bash
# rfl-timeout: 3000
# The kernel's own driver selftests from the 6.12 tree,
# tools/testing/selftests/drivers/net/{ping,stats}.py, in HW mode: NETIF is
# function 0 ($ENA_DRIVER on the model) in the initial netns; the remote endpoint
# is function 1 in netns ena-b.
#
# Every test case's TAP line ("ok N stats.CASE # SKIP|XFAIL reason") is checked
# against the outcome listed below for the driver: a case that fails, skips or
# xfails without being listed, or whose reason differs, fails this test.
#   - ping.py: test_v4, test_v6, test_tcp pass on both drivers.
#   - stats.py check_pause, check_fec: XFAIL on both. ENA has no pause frames
#     and no FEC: the ENA admin interface has no such feature (no GET_FEATURE id
#     for them in ena_admin_defs.h) and the C driver has no get_pauseparam /
#     get_fecparam, so ethtool netlink answers EOPNOTSUPP, which stats.py
#     reports as XFAIL "... not supported by the device". rena does the same.
#   - stats.py pkt_byte_sum, qstat_by_ifindex, check_down (netdev netlink
#     qstats): pass on rena (netdev_stat_ops); SKIP on the 6.12 C ena, which
#     has no netdev_stat_ops (checked below: qstats-get answers EOPNOTSUPP).
# Then, on rena, the qstats are checked against the driver's other counters
# (after iperf3 traffic on every queue): each queue's values lie between two
# `ethtool -S` readings of the same counters (queue_N_rx_cnt, ...), the device
# totals between two /sys/class/net/$NETIF/statistics readings, and after
# `ethtool -L combined 1` the device totals still include the history of the
# queue that went away (get_base_stats) and never go backwards.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3
ena_setup_kselftest

# Expected outcome per case: NAME=pass, or NAME=skip:REASON / NAME=xfail:REASON.
ping_expect=(test_v4=pass test_v6=pass test_tcp=pass)
stats_expect=(
    "check_pause=xfail:pause not supported by the device"
    "check_fec=xfail:FEC not supported by the device"
)
if [ "$DRV" = rena ]; then
    stats_expect+=(pkt_byte_sum=pass qstat_by_ifindex=pass check_down=pass)
else
    stats_expect+=(
        "pkt_byte_sum=skip:qstats not supported by the device"
        "qstat_by_ifindex=skip:No ifindex supports qstats"
        "check_down=skip:qstats not supported by the device"
    )
fi

# ksft_cases OUT PREFIX EXPECT...: every TAP result line of OUT matches its
# expectation and every expected case ran exactly once.
ksft_cases() {
    local out=$1 pfx=$2 line name got want bad=0 n=0
    shift 2
    declare -A exp=() seen=()
    local e
    for e in "$@"; do exp[${e%%=*}]=${e#*=}; done
    while IFS= read -r line; do
        n=$((n + 1))
        name=$(echo "$line" | sed -E 's/^(not )?ok [0-9]+ ([^ ]+).*/\2/')
        name=${name#"$pfx".}
        case "$line" in
            "not ok "*) got=fail ;;
            *" # SKIP "*) got="skip:${line#*# SKIP }" ;;
            *" # XFAIL "*) got="xfail:${line#*# XFAIL }" ;;
            *" # "*) got="other:${line#* # }" ;;
            *) got=pass ;;
        esac
        want=${exp[$name]:-}
        if [ -z "$want" ]; then
            log "  unexpected case $pfx.$name: $got"; bad=1
        elif [ -n "${seen[$name]:-}" ]; then
            log "  case $pfx.$name reported twice"; bad=1
        elif [ "$got" != "$want" ]; then
            log "  $pfx.$name: got '$got', want '$want'"; bad=1
        else
            log "  $pfx.$name: $got (as expected on $DRV)"
        fi
        seen[$name]=1
    done < <(grep -E '^(not )?ok [0-9]+ ' "$out")
    for e in "${!exp[@]}"; do
        [ -n "${seen[$e]:-}" ] || { log "  case $pfx.$e did not run"; bad=1; }
    done
    [ "$n" -gt 0 ] || { log "  no TAP result lines in $out"; bad=1; }
    return $bad
}

failed=0
for t in ping.py stats.py; do
    log "running $t"
    # Streamed (a slow or stuck case shows where it is), and kept for the checks.
    (cd "$KSFT_DIR" && "$KSFT_PY" "$t") 2>&1 | tee "/tmp/ksft-$t.out" | sed 's/^/  /'
    st=${PIPESTATUS[0]}
    summary=$(grep -E '^# Totals' "/tmp/ksft-$t.out")
    log "$t: exit $st; $summary"
    [ $st = 0 ] || { log "$t exited $st"; failed=1; }
    if [ "$t" = ping.py ]; then
        ksft_cases "/tmp/ksft-$t.out" ping "${ping_expect[@]}" || failed=1
    else
        ksft_cases "/tmp/ksft-$t.out" stats "${stats_expect[@]}" || failed=1
    fi
done
[ $failed = 0 ] || fail "a kernel driver selftest failed or did not have its listed outcome (see above)"

# The qstats cross-checks, in python with the kernel tree's YNL library.
cat > /tmp/ena-qstats.py <<'EOF'
import errno, json, subprocess, sys
from lib.py import NetdevFamily, NlError

RX = {"rx-packets": "rx_cnt", "rx-bytes": "rx_bytes", "rx-alloc-fail": "rx_page_alloc_fail",
      "rx-csum-unnecessary": "rx_csum_good", "rx-csum-bad": "rx_csum_bad"}
TX = {"tx-packets": "tx_cnt", "tx-bytes": "tx_bytes", "tx-stop": "tx_queue_stop",
      "tx-wake": "tx_queue_wakeup"}
SYSFS = ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"]
nf = NetdevFamily()
bad = []

def ifindex(ifn):
    return int(open(f"/sys/class/net/{ifn}/ifindex").read())

def ethtool_s(ifn):
    out = subprocess.run(["ethtool", "-S", ifn], check=True, capture_output=True, text=True).stdout
    vals = {}
    for line in out.splitlines()[1:]:
        k, _, v = line.strip().partition(":")
        vals[k.strip()] = int(v)
    return vals

def sysfs(ifn):
    return {k: int(open(f"/sys/class/net/{ifn}/statistics/{k}").read()) for k in SYSFS}

def combined(ifn):
    out = subprocess.run(["ethtool", "-l", ifn], check=True, capture_output=True, text=True).stdout
    vals = [int(l.split()[1]) for l in out.splitlines() if l.startswith("Combined:")]
    return vals[0], vals[1]  # pre-set maximum, current

def between(what, lo, v, hi):
    if not lo <= v <= hi:
        bad.append(f"{what}: {v} not within [{lo}, {hi}]")

def check(ifn, prev_file, out_file):
    idx = ifindex(ifn)
    cmax, cur = combined(ifn)
    e1, s1 = ethtool_s(ifn), sysfs(ifn)
    dev = nf.qstats_get({"ifindex": idx}, dump=True)
    queues = nf.qstats_get({"ifindex": idx, "scope": "queue"}, dump=True)
    e2, s2 = ethtool_s(ifn), sysfs(ifn)
    if len(dev) != 1:
        bad.append(f"device scope: {len(dev)} entries, want 1")
        return
    dev = dev[0]
    want = set(RX) | set(TX) | {"ifindex"}
    if set(dev) != want:
        bad.append(f"device keys {sorted(dev)}, want {sorted(want)}")
        return
    # Per queue: exactly the live queues, each with exactly rena's keys,
    # each value between two ethtool -S readings of the same counter.
    for qt, keys in (("rx", RX), ("tx", TX)):
        qs = sorted((q for q in queues if q["queue-type"] == qt), key=lambda q: q["queue-id"])
        ids = [q["queue-id"] for q in qs]
        if ids != list(range(cur)):
            bad.append(f"{qt} queues {ids}, want 0..{cur - 1} (ethtool -l combined {cur})")
            continue
        for q in qs:
            i = q["queue-id"]
            if set(q) != set(keys) | {"ifindex", "queue-type", "queue-id"}:
                bad.append(f"{qt} queue {i} keys {sorted(q)}")
                continue
            for k, name in keys.items():
                en = f"queue_{i}_{name}"
                if en not in e1 or en not in e2:
                    bad.append(f"ethtool -S has no {en}")
                    continue
                between(f"{qt} queue {i} {k} vs {en}", e1[en], q[k], e2[en])
        print(f"{qt} queues: " + "; ".join(
            f"{q['queue-id']}: " + " ".join(f"{k}={q.get(k)}" for k in keys) for q in qs))
    # Device totals: packets/bytes between two rtnl (sysfs) readings.
    for k in SYSFS:
        between(f"device {k.replace('_', '-')} vs sysfs {k}", s1[k], dev[k.replace("_", "-")], s2[k])
    # With every queue live, the device totals are the queues' sums.
    if cur == cmax:
        for keys in (RX, TX):
            for k, name in keys.items():
                lo = sum(e1.get(f"queue_{i}_{name}", 0) for i in range(cur))
                hi = sum(e2.get(f"queue_{i}_{name}", 0) for i in range(cur))
                between(f"device {k} vs sum of ethtool -S queue_*_{name}", lo, dev[k], hi)
    # Never backwards (the base stats keep the history of queues gone).
    if prev_file:
        prev = json.load(open(prev_file))
        for k in want - {"ifindex"}:
            if dev[k] < prev[k]:
                bad.append(f"device {k} went backwards: {prev[k]} -> {dev[k]}")
    print("device: " + " ".join(f"{k}={dev[k]}" for k in sorted(want - {"ifindex"})))
    json.dump({"dev": dev, "queues": queues}, open(out_file + ".full", "w"))
    json.dump(dev, open(out_file, "w"))

def history(snap_file, first):
    # Queues at and above `first` carried traffic in both directions, so a
    # device total without their history would be seen short.
    queues = json.load(open(snap_file + ".full"))["queues"]
    for qt, k in (("rx", "rx-packets"), ("tx", "tx-packets")):
        n = sum(q[k] for q in queues if q["queue-type"] == qt and q["queue-id"] >= first)
        print(f"{qt} packets on queues >= {first}: {n}")
        if n == 0:
            bad.append(f"no {qt} traffic on queues >= {first}: cannot check the base stats")

def unsupported(ifn):
    try:
        nf.qstats_get({"ifindex": ifindex(ifn)}, dump=True)
        bad.append(f"qstats-get on {ifn} answered; the C driver is listed as having no qstats")
    except NlError as e:
        if e.error != errno.EOPNOTSUPP:
            bad.append(f"qstats-get on {ifn}: error {e.error}, want EOPNOTSUPP")
        else:
            print(f"qstats-get on {ifn}: EOPNOTSUPP (no netdev_stat_ops)")

mode = sys.argv[1]
if mode == "check":
    check(sys.argv[2], sys.argv[3] if sys.argv[3] != "-" else None, sys.argv[4])
elif mode == "history":
    history(sys.argv[2], int(sys.argv[3]))
elif mode == "unsupported":
    unsupported(sys.argv[2])
for b in bad:
    print("BAD: " + b)
sys.exit(1 if bad else 0)
EOF
# Python puts the script's own directory (/tmp) on sys.path, not the
# current one: the tree's lib.py is found through PYTHONPATH.
qstats() { (cd "$KSFT_DIR" && PYTHONPATH="$KSFT_DIR${PYTHONPATH:+:$PYTHONPATH}" "$KSFT_PY" /tmp/ena-qstats.py "$@"); }
# stats.py's check_down and ethtool -L take the link down and up again.
wait_carrier() {
    for _ in $(seq 150); do [ "$(cat "/sys/class/net/$NETIF/carrier")" = 1 ] && return 0; sleep 0.1; done
    fail "$NETIF has no carrier 15 s after $1"
}

if [ "$DRV" = ena ]; then
    qstats unsupported "$NETIF" || fail "the C ena's qstats are not what this test lists (see above)"
    ena_assert_model_clean
    pass
fi

# Traffic in both directions over several flows, so that RSS and the TX
# hash put packets on every queue.
ifq=$(ethtool -l "$NETIF" | awk '/^Combined:/ { n = $2 } END { print n }')
[ "${ifq:-0}" -ge 2 ] || fail "$NETIF has ${ifq:-no} combined channels; the check needs 2 or more"
wait_carrier "stats.py"
port=5301
for dir in fwd rev; do
    # One-off server (-1): it exits after this client's run.
    ip netns exec ena-b iperf3 -s -D -1 -p $port --logfile "/tmp/iperf-qstats-$port.log" ||
        fail "iperf3 server did not start"
    for _ in $(seq 100); do
        ip netns exec ena-b ss -Htln "sport = :$port" 2>/dev/null | grep -q . && break
        sleep 0.1
    done
    opts=(-c 10.77.0.2 -p $port -t 2 -P 8)
    [ $dir = rev ] && opts+=(-R)
    iperf3 "${opts[@]}" > /tmp/iperf-qstats-c.log 2>&1 ||
        { cat /tmp/iperf-qstats-c.log; fail "iperf3 ${opts[*]} failed"; }
    port=$((port + 1))
done

log "qstats with all $ifq queues live:"
qstats check "$NETIF" - /tmp/qs-0.json || fail "qstats disagree with ethtool -S / sysfs (see above)"
qstats history /tmp/qs-0.json 1 || fail "the traffic did not reach the queues above 0"
ethtool -L "$NETIF" combined 1 || fail "ethtool -L $NETIF combined 1 failed"
log "qstats with 1 queue live:"
qstats check "$NETIF" /tmp/qs-0.json /tmp/qs-1.json; st=$?
ethtool -L "$NETIF" combined "$ifq" || fail "ethtool -L $NETIF combined $ifq (restore) failed"
[ $st = 0 ] || fail "after ethtool -L combined 1, qstats lost history or disagree (see above)"
wait_carrier "ethtool -L combined $ifq"
log "qstats with $ifq queues live again:"
qstats check "$NETIF" /tmp/qs-1.json /tmp/qs-2.json || fail "after restoring $ifq queues, qstats disagree (see above)"
ena_assert_model_clean
pass
