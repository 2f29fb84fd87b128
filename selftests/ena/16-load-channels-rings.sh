#!/usr/bin/env bash
# rfl-timeout: 1800
# Under load: iperf3 TCP runs both ways (two streams each) for the whole
# test while `ethtool -L` (channel count: 1, then back to the maximum) and
# `ethtool -G` (ring sizes 256 and 512) change on one function, then on the
# other. Each change reads back; afterwards every iperf3 session completed,
# the receivers' traffic never stalled (STRESS_STALL_S, 5 s, without data) outside the change windows (a
# change and SETTLE seconds after it), the kernel log has no report, and
# both functions carry traffic. Ring sizes go back after the test.
# Next to iperf3 a 2 MiB random file crosses over TCP again and again
# in each direction: every transfer both ends completed arrived intact
# (stress-lib's checked streams), at least one each way.
. "$(dirname "$0")/ena-lib"
. "$(dirname "$0")/../stress-lib"
ena_require_pair
require_cmd iperf3 python3 ss
ena_setup_pair
SETTLE=${STRESS_SETTLE:-4}

chan() { ena_ns "$1" ethtool -l "${ENA_IF[$1]}" | awk '/^Combined:/ { print $2 }' | sed -n "$2p"; }
ring() { # ring I max|cur: "RX/TX" ring sizes (one ethtool -g)
    ena_ns "$1" ethtool -g "${ENA_IF[$1]}" | awk -v w="$2" '
        /^Pre-set/ { s = "max" } /^Current/ { s = "cur" }
        s == w && $1 == "RX:" { r = $2 } s == w && $1 == "TX:" { t = $2 } END { print r "/" t }'
}
declare -A orig
for i in 0 1; do
    orig[ch$i]=$(chan "$i" 2) orig[ring$i]=$(ring "$i" cur)
done
maxch=$(chan 0 1) maxring=$(ring 0 max)
log "channels ${orig[ch0]} (max $maxch), rings rx/tx ${orig[ring0]} (max $maxring)"
[ "${maxch:-0}" -ge 2 ] || fail "${ENA_IF[0]} has at most ${maxch:-0} channels: start the model with --ena-queues >= 2"
[ "${maxring%%/*}" -ge 1024 ] 2>/dev/null || fail "${ENA_IF[0]}: max RX ring '${maxring%%/*}' < 1024"
stress_restore() {
    local i
    for i in 0 1; do
        ena_ns "$i" ethtool -L "${ENA_IF[$i]}" combined "${orig[ch$i]}" 2>/dev/null
        ena_ns "$i" ethtool -G "${ENA_IF[$i]}" rx "${orig[ring$i]%/*}" tx "${orig[ring$i]#*/}" 2>/dev/null
    done
}

# One change under load: the command, then its read-back and carrier.
set_channels() { # set_channels I N
    local got
    stress_change_begin "ethtool -L ${ENA_IF[$1]} combined $2"
    ena_ns "$1" ethtool -L "${ENA_IF[$1]}" combined "$2" || fail "ethtool -L ${ENA_IF[$1]} combined $2 failed under load"
    got=$(chan "$1" 2)
    [ "$got" = "$2" ] || fail "${ENA_IF[$1]} has $got channels after -L combined $2"
    ena_assert_model_queues "$1" "$2"
    ena_wait_carrier "$1" 15 || fail "no carrier on ${ENA_IF[$1]} after -L combined $2"
    stress_change_end
}
set_rings() { # set_rings I RX TX
    local got
    stress_change_begin "ethtool -G ${ENA_IF[$1]} rx $2 tx $3"
    ena_ns "$1" ethtool -G "${ENA_IF[$1]}" rx "$2" tx "$3" || fail "ethtool -G ${ENA_IF[$1]} rx $2 tx $3 failed under load"
    got=$(ring "$1" cur)
    [ "$got" = "$2/$3" ] || fail "${ENA_IF[$1]} rings are rx/tx $got after -G rx $2 tx $3"
    ena_wait_carrier "$1" 15 || fail "no carrier on ${ENA_IF[$1]} after -G rx $2 tx $3"
    stress_change_end
}

changes=(
    "set_channels 0 1"
    "set_rings 0 256 256"
    "set_channels 1 1"
    "set_rings 1 512 512"
    "set_channels 0 $maxch"
    "set_channels 1 $maxch"
)
stress_kmsg_mark
log "iperf3 both ways in ${STRESS_SEG} s sessions; ${#changes[@]} changes, each followed by $STRESS_SETTLED_KIB KiB of data each way after a settle of $SETTLE s"
stress_ena_traffic_start
stress_run_changes "$SETTLE" "${changes[@]}"
stress_ena_traffic_finish "$SETTLE"
stress_kmsg_check "ethtool -L/-G under load"
stress_ena_in_service "after the changes"
log "${#changes[@]} channel/ring changes under iperf3 load: traffic resumed after each, sessions complete, log clean"
# Sizes and channels back now (not only on exit), read back, so that the
# model check below covers the restore too.
stress_restore
for i in 0 1; do
    [ "$(chan "$i" 2)" = "${orig[ch$i]}" ] && [ "$(ring "$i" cur)" = "${orig[ring$i]}" ] ||
        fail "${ENA_IF[$i]} has $(chan "$i" 2) channels, rings $(ring "$i" cur) after restoring ${orig[ch$i]}, ${orig[ring$i]}"
done
ena_assert_model_clean
pass
