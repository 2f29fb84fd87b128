#!/usr/bin/env bash
# Injected device faults make $ENA_DRIVER reset the device the way it does
# on hardware, with the right reset reason, and traffic resumes each time:
# a corrupted TX completion req_id (reason 5) and a corrupted RX completion
# req_id (reason 4); an admin completion held back past the driver's 3 s
# admin timeout during an MTU change (reason 2).
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_setup_pair

# How many resets with reason R function 0 has seen (from the last status).
reason_count() {
    local l
    l=$(grep -A1 '^ena0: ' "$ENA_CTL.out" | grep 'reset reasons' | tail -1)
    echo "$l" | grep -o " r$1=[0-9]*" | sed 's/.*=//' | grep . || echo 0
}

reset_and_recover() { # reset_and_recover FAULT WANT_REASON [TRIGGER-CMD...]
    local before after
    kmsg_mark
    ena_ctl status
    before=$(reason_count "$2")
    local fault=$1 reason=$2
    shift 2
    # shellcheck disable=SC2086 # FAULT may carry its own arguments
    ena_ctl fault 0 $fault
    if [ $# -gt 0 ]; then
        "$@" >/dev/null 2>&1
    else
        # A few packets make the model use the faulty completion.
        ena_ns 0 ping -c 3 -i 0.2 -W 1 "${ENA_V4[1]}" >/dev/null 2>&1
        ena_ns 1 ping -c 3 -i 0.2 -W 1 "${ENA_V4[0]}" >/dev/null 2>&1
    fi
    set -- "$fault" "$reason"
    for _ in $(seq 200); do
        kmsg_since | grep -q 'Device reset completed successfully' && break; sleep 0.1
    done
    kmsg_since | grep -q 'Device reset completed successfully' || { kmsg_since | tail; fail "$1: the driver did not reset and recover"; }
    ena_ctl status
    after=$(reason_count "$2")
    [ "$after" -gt "$before" ] || fail "$1: the model saw no reset with reason $2 ($before before, $after after)"
    ena_wait_carrier 0 15 || fail "$1: no carrier after the reset"
    ena_ns 0 ping -c 3 -i 0.3 -W 2 "${ENA_V4[1]}" >/dev/null || fail "$1: no traffic after the reset"
    log "$1 -> driver reset with reason $2 (reason-$2 resets: $before -> $after), traffic resumed"
}
reset_and_recover corrupt-tx-req-id 5
reset_and_recover corrupt-rx-req-id 4
reset_and_recover "admin-delay 5000" 2 ena_ns 0 ip link set "${ENA_IF[0]}" mtu 1400
ena_ns 0 ip link set "${ENA_IF[0]}" mtu 1500 || fail "MTU back to 1500 failed after recovery"
pass
