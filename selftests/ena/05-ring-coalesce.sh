#!/usr/bin/env bash
# Ring sizes (ethtool -g/-G) and interrupt moderation (ethtool -c/-C, adaptive
# on/off) on $ENA_DRIVER with the model, on function 0:
# * -G rx 512 tx 512, then back to the sizes it had: ethtool -g reads back
#   each size and the model's queues were created with that depth; pings
#   pass without loss after each change.
# * -C adaptive-rx off rx-usecs 100 tx-usecs 200: ethtool -c reads all three
#   back; under bulk TCP into function 0 every unmask-register write the
#   model saw asks for rx 100 / tx 200 µs.
# * -C adaptive-rx on: read back; under the same load the driver's adaptive
#   moderation (lib/dim) asks the model for RX intervals other than the
#   static 100 µs in at least 10 unmask writes (not a share: vectors that
#   carry only ACKs keep the static value), at least one of them a value of
#   lib/dim's RX profile, so the interval moved off the static one it had
#   before; TX stays at the static 200 µs (adaptive is RX only).
# Everything is set back to what it was at the start.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd iperf3 python3
ena_setup_pair
ifn=${ENA_IF[0]}

ring() { # ring rx|tx: current ring size
    ena_ns 0 ethtool -g "$ifn" | awk -v k="${1^^}:" '/^Current/ { c = 1 } c && $1 == k { print $2 }'
}
coal() { # coal FIELD: a value of ethtool -c (rx-usecs, tx-usecs, adaptive-rx)
    if [ "$1" = adaptive-rx ]; then
        ena_ns 0 ethtool -c "$ifn" | sed -n 's/^Adaptive RX:[[:space:]]*\([a-z/]*\).*/\1/p'
    else
        ena_ns 0 ethtool -c "$ifn" | awk -v k="$1:" '$1 == k { print $2 }'
    fi
}
# Depths of function 0's TX and RX queues in the model (created by the driver).
model_depths() { # model_depths Tx|Rx: distinct depths, one line
    ena_model_status 0 | awk -v d="$1" '$1 == d && $2 == "sq" { print $5 }' | sort -u | tr '\n' ' '
}
check_rings() { # check_rings RX TX
    local r t
    r=$(ring rx) t=$(ring tx)
    [ "$r" = "$1" ] || fail "ethtool -g: RX ring is '$r', set $1"
    [ "$t" = "$2" ] || fail "ethtool -g: TX ring is '$t', set $2"
    ena_wait_carrier 0 10 || fail "no carrier after ethtool -G rx $1 tx $2"
    [ "$(model_depths Rx)" = "$1 " ] || fail "the model's RX queues of function 0 have depth(s) '$(model_depths Rx)', want $1"
    [ "$(model_depths Tx)" = "$2 " ] || fail "the model's TX queues of function 0 have depth(s) '$(model_depths Tx)', want $2"
    ena_ping_clean 0 "${ENA_V4[1]}" 5
    log "rings rx $1 tx $2: read back, device queues $1/$2 deep, pings 5/5"
}

rx0=$(ring rx) tx0=$(ring tx)
[[ "$rx0" =~ ^[0-9]+$ && "$tx0" =~ ^[0-9]+$ ]] || fail "ethtool -g gives no current ring sizes (rx '$rx0', tx '$tx0')"
ru0=$(coal rx-usecs) tu0=$(coal tx-usecs) ad0=$(coal adaptive-rx)
[[ "$ru0" =~ ^[0-9]+$ && "$tu0" =~ ^[0-9]+$ ]] || fail "ethtool -c gives no rx/tx-usecs (moderation not advertised?): '$ru0' '$tu0'"
case "$ad0" in on|off) ;; *) fail "ethtool -c shows no Adaptive RX state ('$ad0')" ;; esac
log "start: rings rx $rx0 tx $tx0; rx-usecs $ru0 tx-usecs $tu0 adaptive-rx $ad0"
trap 'ena_ns 0 ethtool -G "$ifn" rx "$rx0" tx "$tx0" 2>/dev/null; ena_ns 0 ethtool -C "$ifn" adaptive-rx "$ad0" rx-usecs "$ru0" tx-usecs "$tu0" 2>/dev/null' EXIT

ena_ns 0 ethtool -G "$ifn" rx 512 tx 512 || fail "ethtool -G rx 512 tx 512 failed"
check_rings 512 512
ena_ns 0 ethtool -G "$ifn" rx "$rx0" tx "$tx0" || fail "ethtool -G back to rx $rx0 tx $tx0 failed"
check_rings "$rx0" "$tx0"

# Interval requests of function 0's IO vectors summed: "DIR VALUE COUNT" lines.
intervals() { ena_model_intervals 0 | awk '{ c[$2 " " $3] += $4 } END { for (k in c) print k, c[k] }' | sort; }
port=5350
# load WHAT: bulk TCP into function 0 (server in ns 0) for 4 s; sets D to the
# interval requests made meanwhile ("DIR VALUE COUNT" lines).
load() {
    local before
    port=$((port + 1))
    before=$(intervals)
    ena_ns 0 iperf3 -s -D -1 -p "$port" --logfile /tmp/iperf-coal.log || fail "iperf3 server did not start"
    sleep 0.5
    ena_ns 1 timeout 120 iperf3 -c "${ENA_V4[0]}" -p "$port" -t 4 -J >/tmp/iperf-coal.json ||
        { tail -20 /tmp/iperf-coal.json; fail "$1: iperf3 into ${ENA_IF[0]} failed"; }
    got=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' /tmp/iperf-coal.json) ||
        fail "$1: cannot read iperf3's received bytes"
    [ "$got" -gt 0 ] || fail "$1: iperf3 moved no data"
    D=$(awk 'NR == FNR { b[$1 " " $2] = $3; next } $3 > b[$1 " " $2] { print $1, $2, $3 - b[$1 " " $2] }' \
        <(printf '%s\n' "$before") <(intervals))
    log "$1: $got bytes into ${ENA_IF[0]}; intervals asked (dir µs count): $(tr '\n' ';' <<<"$D")"
}
count() { awk -v d="$1" -v c="$2" '$1 == d && (c == "all" || (c ~ /^!/ ? $2 != substr(c, 2) : $2 == c)) { s += $3 } END { print s + 0 }' <<<"$D"; } # count DIR all|V|!V

ena_ns 0 ethtool -C "$ifn" adaptive-rx off rx-usecs 100 tx-usecs 200 || fail "ethtool -C adaptive-rx off rx-usecs 100 tx-usecs 200 failed"
[ "$(coal adaptive-rx)" = off ] || fail "Adaptive RX reads '$(coal adaptive-rx)' after adaptive-rx off"
[ "$(coal rx-usecs)" = 100 ] || fail "rx-usecs reads '$(coal rx-usecs)' after setting 100"
[ "$(coal tx-usecs)" = 200 ] || fail "tx-usecs reads '$(coal tx-usecs)' after setting 200"
ena_ping_clean 0 "${ENA_V4[1]}" 5
load "static 100/200"
n=$(count rx all)
[ "$n" -gt 0 ] || fail "static: the driver wrote no unmask register during bulk TCP"
[ "$(count rx '!100')" = 0 ] || fail "static rx-usecs 100: $(count rx '!100') of $n unmask writes asked for another RX interval"
[ "$(count tx '!200')" = 0 ] || fail "static tx-usecs 200: $(count tx '!200') of $n unmask writes asked for another TX interval"
log "static: all $n unmask writes asked for rx 100 µs, tx 200 µs"

ena_ns 0 ethtool -C "$ifn" adaptive-rx on || fail "ethtool -C adaptive-rx on failed"
[ "$(coal adaptive-rx)" = on ] || fail "Adaptive RX reads '$(coal adaptive-rx)' after adaptive-rx on"
ena_ping_clean 0 "${ENA_V4[1]}" 5
load "adaptive"
n=$(count rx all) m=$(count rx '!100')
[ "$n" -gt 0 ] || fail "adaptive: the driver wrote no unmask register during bulk TCP"
# Not a share of all writes: vectors that carried only TX completions (ACKs)
# keep asking for the static 100 µs (DIM samples only RX rounds), and which
# vector those are depends on the hashes.
[ "$m" -ge 10 ] ||
    fail "adaptive-rx on under bulk TCP: only $m of $n unmask writes asked for an RX interval other than the static 100 µs (adaptive moderation did not take over)"
# lib/dim's RX profile (EQE mode) in µs, which both drivers program at the
# model's 1 µs resolution.
dim=$(awk '$1 == "rx" && ($2 == 1 || $2 == 8 || $2 == 64 || $2 == 128 || $2 == 256) { s += $3 } END { print s + 0 }' <<<"$D")
[ "$dim" -ge 1 ] || fail "adaptive-rx on: no unmask write asked for an interval of lib/dim's RX profile (1, 8, 64, 128, 256 µs): $(tr '\n' ';' <<<"$D")"
[ "$(count tx '!200')" = 0 ] || fail "adaptive-rx on: $(count tx '!200') of $n unmask writes changed the TX interval from the static 200 µs"
log "adaptive: $m of $n unmask writes asked for RX intervals other than 100 µs; TX stayed 200 µs"

ena_ns 0 ethtool -C "$ifn" adaptive-rx "$ad0" rx-usecs "$ru0" tx-usecs "$tu0" || fail "ethtool -C back to the start values failed"
{ [ "$(coal adaptive-rx)" = "$ad0" ] && [ "$(coal rx-usecs)" = "$ru0" ] && [ "$(coal tx-usecs)" = "$tu0" ]; } ||
    fail "ethtool -c does not read back the start values ($ad0 $ru0 $tu0): $(coal adaptive-rx) $(coal rx-usecs) $(coal tx-usecs)"
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_assert_model_clean
pass
