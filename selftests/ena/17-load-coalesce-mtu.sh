#!/usr/bin/env bash
# rfl-timeout: 1800
# Under load: iperf3 TCP runs both ways (two streams each) for the whole
# test, started at MTU 9000 (checked: the model delivered frames over
# 1514 B to each side), while the MTU
# of both ends moves 9000 -> 1500 -> 1400 -> 9000 -> 1500 and interrupt
# moderation changes on one function, then the other (`ethtool -C`:
# adaptive-rx off with static rx/tx-usecs, adaptive-rx back on). Each
# change reads back; afterwards every iperf3 session completed, the
# receivers' traffic never stalled (STRESS_STALL_S, 5 s, without data) outside the change windows (a change
# and SETTLE seconds after it), the kernel log has no report, and both
# functions carry traffic (and 1472-byte DF pings at the final MTU 1500).
# Function 1's moderation goes back after the test.
# Next to iperf3 a 2 MiB random file crosses over TCP again and again
# in each direction: every transfer both ends completed arrived intact
# (stress-lib's checked streams), at least one each way.
. "$(dirname "$0")/ena-lib"
. "$(dirname "$0")/../stress-lib"
ena_require_pair
require_cmd iperf3 python3 ss
ena_setup_pair
SETTLE=${STRESS_SETTLE:-4}

mtu_of() { ena_ns "$1" cat "/sys/class/net/${ENA_IF[$1]}/mtu"; }
# Interrupt moderation of function I as "ADAPTIVE-RX/RX-USECS/TX-USECS"
# (one ethtool -c).
coal() {
    ena_ns "$1" ethtool -c "${ENA_IF[$1]}" | awk '
        /^Adaptive RX:/ { a = $3 } $1 == "rx-usecs:" { r = $2 } $1 == "tx-usecs:" { t = $2 }
        END { print a "/" r "/" t }'
}
declare -A orig
for i in 0 1; do
    orig[$i]=$(coal "$i")
    [[ "${orig[$i]}" =~ ^(on|off)/[0-9]+/[0-9]+$ ]] ||
        fail "ethtool -c ${ENA_IF[$i]} shows no adaptive/rx-usecs/tx-usecs ('${orig[$i]}': moderation not advertised?)"
done
log "moderation (adaptive-rx/rx-usecs/tx-usecs): ${orig[0]} and ${orig[1]}"
stress_restore() {
    local i a r t
    for i in 0 1; do
        ena_ns "$i" ip link set "${ENA_IF[$i]}" mtu 1500 2>/dev/null
        IFS=/ read -r a r t <<< "${orig[$i]}"
        ena_ns "$i" ethtool -C "${ENA_IF[$i]}" adaptive-rx "$a" rx-usecs "$r" tx-usecs "$t" 2>/dev/null
    done
}

set_mtu() { # set_mtu MTU: both ends, one change window
    local i got
    stress_change_begin "MTU $1 on both ends"
    for i in 0 1; do
        ena_ns "$i" ip link set "${ENA_IF[$i]}" mtu "$1" || fail "ip link set ${ENA_IF[$i]} mtu $1 failed under load"
        got=$(mtu_of "$i")
        [ "$got" = "$1" ] || fail "${ENA_IF[$i]} MTU reads $got after setting $1"
    done
    for i in 0 1; do ena_wait_carrier "$i" 15 || fail "no carrier on ${ENA_IF[$i]} after MTU $1"; done
    stress_change_end
}
set_static() { # set_static I RX-USECS TX-USECS
    local got
    stress_change_begin "ethtool -C ${ENA_IF[$1]} adaptive-rx off rx-usecs $2 tx-usecs $3"
    ena_ns "$1" ethtool -C "${ENA_IF[$1]}" adaptive-rx off rx-usecs "$2" tx-usecs "$3" ||
        fail "ethtool -C ${ENA_IF[$1]} adaptive-rx off rx-usecs $2 tx-usecs $3 failed under load"
    got=$(coal "$1")
    [ "$got" = "off/$2/$3" ] || fail "${ENA_IF[$1]} moderation reads $got, want off/$2/$3"
    stress_change_end
}
set_adaptive() { # set_adaptive I
    local got
    stress_change_begin "ethtool -C ${ENA_IF[$1]} adaptive-rx on"
    ena_ns "$1" ethtool -C "${ENA_IF[$1]}" adaptive-rx on || fail "ethtool -C ${ENA_IF[$1]} adaptive-rx on failed under load"
    got=$(coal "$1")
    [ "${got%%/*}" = on ] || fail "${ENA_IF[$1]} moderation reads $got after adaptive-rx on"
    stress_change_end
}

changes=(
    "set_mtu 1500"
    "set_static 0 64 128"
    "set_mtu 1400"
    "set_static 1 8 16"
    "set_mtu 9000"
    "set_adaptive 0"
    "set_mtu 1500"
)
# Start jumbo: the connections' MSS then allows 9000-byte frames, and the
# later MTU changes shrink and grow the segments in flight.
for i in 0 1; do ena_ns "$i" ip link set "${ENA_IF[$i]}" mtu 9000 || fail "MTU 9000 refused on ${ENA_IF[$i]}"; done
for i in 0 1; do ena_wait_carrier "$i" 15 || fail "no carrier on ${ENA_IF[$i]} at MTU 9000"; done
stress_kmsg_mark
log "iperf3 both ways in ${STRESS_SEG} s sessions from MTU 9000; ${#changes[@]} changes, each followed by $STRESS_SETTLED_KIB KiB of data each way after a settle of $SETTLE s"
# Jumbo frames crossed each way: the model counts the frames it delivers
# that are longer than a 1500 MTU allows (1514 B). (Not the guest's view:
# the average frame size is pulled down by ACKs and partial segments, 1108
# to 4756 B seen, and the lean guest kernel has no INET_DIAG for ss's
# per-socket rcvmss.)
declare -A j0
for f in 0 1; do j0[$f]=$(ena_model_counter "$f" rx_jumbo); done
stress_ena_traffic_start
for f in 0 1; do
    j=$(( $(ena_model_counter "$f" rx_jumbo) - j0[$f] ))
    log "first $STRESS_SETTLED_KIB KiB each way at MTU 9000: the model delivered $j frames over 1514 B to function $f"
    [ "$j" -gt 0 ] || fail "no frame over 1514 B reached function $f at MTU 9000: the flows do not use jumbo frames"
done
stress_run_changes "$SETTLE" "${changes[@]}"
stress_ena_traffic_finish "$SETTLE"
stress_kmsg_check "MTU and moderation changes under load"
stress_ena_in_service "after the changes"
ena_ping_clean 0 "${ENA_V4[1]}" 3 -M do -s 1472
ena_ping_clean 1 "${ENA_V4[0]}" 3 -M do -s 1472
log "${#changes[@]} MTU/moderation changes under iperf3 load: traffic resumed after each, sessions complete, log clean"
# Put the moderation back now (not only on exit), so that the model check
# below covers it, and read it back.
stress_restore
for i in 0 1; do
    [ "$(coal "$i")" = "${orig[$i]}" ] || fail "${ENA_IF[$i]} moderation reads $(coal "$i") after restoring ${orig[$i]}"
done
ena_assert_model_clean
pass
