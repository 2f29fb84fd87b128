#!/usr/bin/env bash
# rmmod and reload (modprobe ena / insmod rena.ko) x50 (RFL_RELOAD_ROUNDS)
# with traffic on every load: a ping burst (every echo back, no corrupt or
# duplicate reply) and a TCP transfer between the two functions whose copy
# is compared byte for byte. After each rmmod the functions' IRQ vectors,
# netdevs (in every netns), DMA-API entries and the rest that
# selftests/leak-lib counts are back to their start values; after the last
# one kmemleak finds nothing allocated by the driver, and the model has no
# live queue left (while loaded it had some).
# A cycle takes ~66 s on a debug guest (3 rounds: 197 s), 50 about 55 min.
# rfl-timeout: 4800
. "$(dirname "$0")/ena-lib"
ENA_RESETS_EXPECTED=all # every probe and removal resets the device
. "$RFL_TOP/selftests/leak-lib"
ena_require_pair
require_cmd rmmod ping socat cmp
rounds=${RFL_RELOAD_ROUNDS:-50}
pings=20
mapfile -t bdfs < <(ena_bdfs)

# Live IO queues (SQ lines) of every function in a fresh model status
# (ena_ctl waits for the answer to this very request).
model_queues() {
    local s
    s=$(ena_ctl status)
    awk '/^  (Tx|Rx) sq / { n++ } END { print n + 0 }' <<<"$s"
}

# Start: no driver on the functions, $DRV out, the test netns empty.
ena_unbind_all
[ -d "/sys/module/$DRV" ] && { rmmod "$DRV" || fail "$DRV is loaded and does not unload"; }
for ns in "${ENA_NS[@]}"; do
    ip netns del "$ns" 2>/dev/null
    ip netns add "$ns" || fail "ip netns add $ns failed"
done
q0=$(model_queues)
[[ "$q0" =~ ^[0-9]+$ ]] || fail "the model's status: $q0"
leak_begin "$DRV" "${bdfs[@]}"
[ "$q0" = 0 ] || fail "the model has $q0 live queue(s) with no driver bound"

head -c 262144 /dev/urandom > /tmp/reload-src || fail "cannot make the test file"
start=$(date +%s)
for k in $(seq 1 "$rounds"); do
    ena_setup_pair
    leak_loaded
    out=$(ena_ns 0 ping -c $pings -i 0.01 -w 10 "${ENA_V4[1]}" 2>&1)
    echo "$out" | grep -q " $pings received" || { echo "$out" | tail -3; fail "round $k: ping burst: not all $pings echoes came back"; }
    echo "$out" | grep -qE 'wrong data|DUP!' && { echo "$out" | grep -E 'wrong data|DUP!' | head -3; fail "round $k: corrupt or duplicate echo replies"; }
    port=$((5400 + k))
    rm -f /tmp/reload-dst
    # ip netns exec execs timeout: $! is the listener's own process.
    ip netns exec "${ENA_NS[1]}" timeout 30 socat -u "TCP-LISTEN:$port,reuseaddr" OPEN:/tmp/reload-dst,creat,trunc &
    lpid=$!
    ena_ns 0 timeout 30 socat -u OPEN:/tmp/reload-src "TCP:${ENA_V4[1]}:$port,retry=250,interval=0.1" ||
        { kill "$lpid" 2>/dev/null; fail "round $k: TCP send failed"; }
    wait "$lpid" || fail "round $k: TCP receiver failed"
    cmp -s /tmp/reload-src /tmp/reload-dst || fail "round $k: the 256 KiB received over TCP differ from those sent"
    if [ "$k" = "$rounds" ]; then
        qk=$(model_queues)
        [[ "$qk" =~ ^[0-9]+$ ]] || fail "the model's status: $qk"
        [ "$qk" -gt 0 ] || fail "the model shows no live queue while $DRV is loaded and up: the queue check below would be void"
        leak_break keep-loaded && break
    fi
    ena_unload || fail "$DRV still loaded after rmmod #$k"
    leak_round "$k"
done
log "$rounds x load + ping burst + TCP 256 KiB + rmmod of $DRV: traffic intact every time ($(( $(date +%s) - start )) s)"
q=$(model_queues)
[[ "$q" =~ ^[0-9]+$ ]] || fail "the model's status: $q"
log "model: $qk live queue(s) while loaded, $q after the last rmmod (at the start: $q0)"
[ "$q" = "$q0" ] || LEAK_PROBS+=("the model still has $q live queue(s) after the last rmmod (start: $q0)")
leak_end
ena_assert_model_clean
pass
