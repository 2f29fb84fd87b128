#!/usr/bin/env bash
# rfl-timeout: 1800
# Under load: iperf3 TCP runs both ways (two streams each) for the whole
# test while links flap: the model's link of one function, then the other,
# goes down for 2 s and comes back (AENQ link change: the carrier must
# follow both ways), the interface of each function is set down and up
# (`ip link`: queues destroyed and re-created), then rapid flaps (3 model
# link down/up on both functions 0.3 s apart, each one seen: the carrier
# went down 3 times on each; 3 ip link down/up).
# Afterwards both iperf3 sessions completed, the receivers' traffic never
# stalled (STRESS_STALL_S, 5 s, without data) outside the change windows (a flap and SETTLE seconds
# after it), the kernel log has no report, and both functions carry traffic.
# Next to iperf3 a 2 MiB random file crosses over TCP again and again
# in each direction: every transfer both ends completed arrived intact
# (stress-lib's checked streams), at least one each way.
. "$(dirname "$0")/ena-lib"
. "$(dirname "$0")/../stress-lib"
ena_require_pair
require_cmd iperf3 python3 ss
ena_setup_pair
SETTLE=${STRESS_SETTLE:-4}
# An admin down drops the IPv6 addresses; ena_setup_pair puts them back.
stress_restore() { ena_ctl link 0 up; ena_ctl link 1 up; ena_setup_pair; }

carrier() { ena_ns "$1" cat "/sys/class/net/${ENA_IF[$1]}/carrier" 2>/dev/null; }
wait_no_carrier() { # wait_no_carrier I SECS
    local k
    for ((k = 0; k < $2 * 10; k++)); do
        [ "$(carrier "$1")" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}
model_flap() { # model_flap I: the model's link down 2 s, then up
    stress_change_begin "model link $1 down 2 s, up"
    ena_ctl link "$1" down
    wait_no_carrier "$1" 5 || fail "carrier of ${ENA_IF[$1]} stayed on 5 s after the model's link went down"
    sleep 1.5
    [ "$(carrier "$1")" = 0 ] || fail "carrier of ${ENA_IF[$1]} came back while the model's link was down"
    ena_ctl link "$1" up
    ena_wait_carrier "$1" 15 || fail "carrier of ${ENA_IF[$1]} not back 15 s after the model's link came up"
    stress_change_end
}
admin_flap() { # admin_flap I: ip link set down, then up
    stress_change_begin "ip link set ${ENA_IF[$1]} down; up"
    ena_ns "$1" ip link set "${ENA_IF[$1]}" down || fail "ip link set ${ENA_IF[$1]} down failed under load"
    ena_ns "$1" ip link show "${ENA_IF[$1]}" | grep -q 'state DOWN' || fail "${ENA_IF[$1]} not DOWN after ip link set down"
    sleep 1
    ena_ns "$1" ip link set "${ENA_IF[$1]}" up || fail "ip link set ${ENA_IF[$1]} up failed under load"
    ena_wait_carrier "$1" 15 || fail "no carrier on ${ENA_IF[$1]} 15 s after ip link set up"
    stress_change_end
}
carrier_downs() { # carrier_downs I: the netdev's carrier_down_count
    local v
    v=$(ena_ns "$1" cat "/sys/class/net/${ENA_IF[$1]}/carrier_down_count") || fail "no carrier_down_count for ${ENA_IF[$1]}"
    echo "$v"
}
model_rapid() { # 3 quick model link flaps on both functions
    local n d0 d1
    stress_change_begin "3 rapid model link down/up on both functions"
    # Read after the begin, which waited for the previous flap to settle: a
    # late carrier drop of that one cannot count for these.
    d0=$(carrier_downs 0) d1=$(carrier_downs 1)
    # Each request waits for the model's answer: every flap is applied.
    for n in 1 2 3; do
        : "$(ena_ctl link 0 down)" "$(ena_ctl link 1 down)"; sleep 0.3
        : "$(ena_ctl link 0 up)" "$(ena_ctl link 1 up)"; sleep 0.3
    done
    sleep 0.5
    ena_wait_carrier 0 15 && ena_wait_carrier 1 15 || fail "carrier not back on both 15 s after rapid model flaps"
    stress_change_end
    # Every link-change event reached the driver: 3 carrier losses each.
    [ $(( $(carrier_downs 0) - d0 )) -ge 3 ] && [ $(( $(carrier_downs 1) - d1 )) -ge 3 ] ||
        fail "3 model link flaps on each function, but carrier_down_count went ${d0} -> $(carrier_downs 0) and ${d1} -> $(carrier_downs 1)"
}
admin_rapid() { # 3 quick ip link down/up on function 0
    local n
    stress_change_begin "3 rapid ip link set ${ENA_IF[0]} down; up"
    for n in 1 2 3; do
        ena_ns 0 ip link set "${ENA_IF[0]}" down || fail "ip link down #$n failed"
        ena_ns 0 ip link set "${ENA_IF[0]}" up || fail "ip link up #$n failed"
    done
    ena_wait_carrier 0 15 || fail "no carrier on ${ENA_IF[0]} 15 s after rapid ip link flaps"
    stress_change_end
}

changes=("model_flap 0" "model_flap 1" "admin_flap 0" "admin_flap 1" "model_rapid" "admin_rapid")
stress_kmsg_mark
log "iperf3 both ways in ${STRESS_SEG} s sessions; ${#changes[@]} flaps, each followed by $STRESS_SETTLED_KIB KiB of data each way after a settle of $SETTLE s"
stress_ena_traffic_start
stress_run_changes "$SETTLE" "${changes[@]}"
stress_ena_traffic_finish "$SETTLE"
stress_kmsg_check "link flaps under load"
stress_ena_in_service "after the flaps"
log "${#changes[@]} link flaps under iperf3 load: carrier followed, traffic resumed after each, sessions complete, log clean"
ena_assert_model_clean
pass
