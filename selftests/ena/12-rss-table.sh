#!/usr/bin/env bash
# RSS indirection table and key changes (ethtool -X) move received flows:
# `weight 1 0` puts every RX packet of 16 parallel TCP flows on queue 0 and
# `weight 0 1` every one on queue 1 (per-queue ethtool -S RX counters of the
# receiver), `equal 2` spreads them over both again; after each change
# `ethtool -x` reads back exactly the table ethtool wrote (128 entries, entry
# i = i % 2 for `equal 2`). A new hash key (`hkey`) reads back and traffic
# still spreads with it.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3 python3
ena_setup_pair
dev=${ENA_IF[1]}
ch=$(ena_channels 1)
[ "$ch" = 2 ] || fail "$dev has $ch channels; this test wants exactly 2 (ena-vm's default --ena-queues 2)"

# The indirection table as one line of queue numbers.
read_table() { ena_ns 1 ethtool -x "$dev" | awk '/^ *[0-9]+: / { for (i = 2; i <= NF; i++) printf "%s ", $i }'; }
expect_table() { # expect_table WHAT EXPR-OF-i
    local t i=0 v want
    t=$(read_table)
    for v in $t; do
        want=$(( $2 )) # EXPR may use i, the entry's index
        [ "$v" = "$want" ] || fail "$1: ethtool -x entry $i is $v, want $want (table: $t)"
        i=$((i + 1))
    done
    [ "$i" = 128 ] || fail "$1: ethtool -x shows $i table entries, want 128 (ENA's table)"
}
port=5320
flows() { # flows: 16 TCP flows 0 -> 1 for 2 s; sets D[q] = RX packets on queue q
    local q before=() got
    for ((q = 0; q < ch; q++)); do before[q]=$(ena_stat 1 "queue_${q}_rx_cnt"); done
    port=$((port + 1))
    ena_ns 1 iperf3 -s -D -1 -p "$port" --logfile /tmp/iperf-rsst.log || fail "iperf3 server did not start"
    sleep 0.5
    ena_ns 0 timeout 60 iperf3 -c "${ENA_V4[1]}" -p "$port" -t 2 -P 16 -J >/tmp/iperf-rsst.json \
        || { tail -20 /tmp/iperf-rsst.json; fail "iperf3 -P 16 failed"; }
    got=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]; print(int(e["sum_received"]["bytes"]), sum(1 for s in e["streams"] if s["receiver"]["bytes"] > 0))' /tmp/iperf-rsst.json) ||
        fail "cannot read iperf3's received bytes"
    D=()
    for ((q = 0; q < ch; q++)); do D[q]=$(( $(ena_stat 1 "queue_${q}_rx_cnt") - before[q] )); done
    log "  iperf3: ${got% *} bytes received, ${got#* } of 16 streams carried data; RX packets: queue 0 +${D[0]}, queue 1 +${D[1]}"
    [ "${got#* }" = 16 ] || fail "only ${got#* } of the 16 iperf3 streams received data"
}

all_on_queue() { # all_on_queue Q WEIGHTS...: the table points only at Q; every flow lands there
    local q=$1 other=$((1 - $1))
    shift
    ena_ns 1 ethtool -X "$dev" weight "$@" || fail "ethtool -X $dev weight $* failed"
    expect_table "weight $*" "$q"
    log "weight $*: table all $q"
    flows
    [ "${D[q]}" -gt 100 ] || fail "weight $*: only ${D[q]} packets on queue $q"
    [ "${D[other]}" -le 2 ] || fail "weight $*: ${D[other]} packets still arrived on queue $other"
}
all_on_queue 0 1 0
all_on_queue 1 0 1

ena_ns 1 ethtool -X "$dev" equal 2 || fail "ethtool -X $dev equal 2 failed"
expect_table "equal 2" "i % 2"
log "equal 2: table 0 1 0 1 ..."
flows
{ [ "${D[0]}" -gt 100 ] && [ "${D[1]}" -gt 100 ]; } || fail "equal 2: 16 flows did not spread over both queues"

key=$(for i in $(seq 0 39); do printf '%02x:' $(( (i * 37 + 11) & 255 )); done)
key=${key%:}
ena_ns 1 ethtool -X "$dev" hkey "$key" || fail "ethtool -X $dev hkey failed"
got=$(ena_ns 1 ethtool -x "$dev" | sed -n '/^RSS hash key:/{n;p}')
[ "$got" = "$key" ] || fail "hash key reads back as '$got', want '$key'"
expect_table "after hkey" "i % 2"
log "hkey $key reads back, table unchanged"
flows
{ [ "${D[0]}" -gt 100 ] && [ "${D[1]}" -gt 100 ]; } || fail "new key: 16 flows did not spread over both queues"
ena_assert_model_clean
pass
