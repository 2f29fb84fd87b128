#!/usr/bin/env bash
# Injected device faults make $ENA_DRIVER reset the device the way it does
# on hardware, with the right reset reason (counted by the model, before and
# after from fresh status answers), and traffic resumes each time (pings
# both ways without loss once carrier is back): a corrupted TX completion
# req_id (reason 5) and a corrupted RX completion req_id (reason 4); an
# admin completion held back past the driver's 3 s admin timeout during an
# MTU change (reason 2). Only function 0 is faulted: function 1 is never
# reset. The model counts no guest/DMA error on either function: a reset
# must not make the driver write a bad register or DMA outside its mappings.
. "$(dirname "$0")/ena-lib"
ENA_RESETS_EXPECTED=0 # faults reset function 0 (function 1 never)
ena_require_pair
ena_setup_pair

reset_and_recover() { # reset_and_recover FAULT WANT_REASON [TRIGGER-CMD...]
    local fault=$1 reason=$2 before after o1
    shift 2
    kmsg_mark
    before=$(ena_model_counter 0 "r$reason") o1=$(ena_model_counter 1 resets)
    # shellcheck disable=SC2086 # FAULT may carry its own arguments
    ena_ctl fault 0 $fault
    if [ $# -gt 0 ]; then
        "$@" >/dev/null 2>&1
    else
        # A few packets make the model use the faulty completion; these
        # pings may well be lost (that is the fault), so not checked.
        ena_ns 0 ping -c 3 -i 0.2 -W 1 "${ENA_V4[1]}" >/dev/null 2>&1
        ena_ns 1 ping -c 3 -i 0.2 -W 1 "${ENA_V4[0]}" >/dev/null 2>&1
    fi
    ena_wait_reset_done "$fault: the driver did not reset and recover"
    after=$(ena_model_counter 0 "r$reason")
    [ "$after" -gt "$before" ] || fail "$fault: the model saw no reset with reason $reason ($before before, $after after)"
    [ "$(ena_model_counter 1 resets)" = "$o1" ] || fail "$fault: function 1 (not faulted) was reset too"
    ena_wait_carrier 0 15 || fail "$fault: no carrier after the reset"
    ena_ping_clean 0 "${ENA_V4[1]}" 5
    ena_ping_clean 1 "${ENA_V4[0]}" 5
    log "$fault -> driver reset with reason $reason (reason-$reason resets: $before -> $after), 5/5 pings both ways"
}
reset_and_recover corrupt-tx-req-id 5
reset_and_recover corrupt-rx-req-id 4
reset_and_recover "admin-delay 5000" 2 ena_ns 0 ip link set "${ENA_IF[0]}" mtu 1400
ena_ns 0 ip link set "${ENA_IF[0]}" mtu 1500 || fail "MTU back to 1500 failed after recovery"
[ "$(ena_ns 0 cat "/sys/class/net/${ENA_IF[0]}/mtu")" = 1500 ] || fail "MTU is not 1500 after setting it back"
ena_ping_clean 0 "${ENA_V4[1]}" 3 -s 1472 -M do
ena_assert_model_clean
pass
