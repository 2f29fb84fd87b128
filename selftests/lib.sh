# shellcheck shell=bash
# Helpers for the guest selftests (sourced by each test script).
# A test prints what it does, and ends with `pass` or `fail "reason"`.
# A missing prerequisite is a failure with its reason, never a skip.

RFL_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The tests parse tools' output and do arithmetic on $EPOCHREALTIME, whose
# decimal point follows the locale (a ',' under de_DE would break both).
export LC_ALL=C

# `fail` inside $(...), a pipeline or a background job would end only that
# subshell, and the test would go on with "FAIL: ..." as a value (v=$(f)).
# There it writes the message to a file and sends the test's own shell
# SIGUSR1, whose trap prints the message and exits 1 (EXIT traps still run).
RFL_FAILMSG=/tmp/rfl-fail.$$
rm -f "$RFL_FAILMSG"
fail() {
    if [ "$BASHPID" != "$$" ]; then
        echo "FAIL: $*" >> "$RFL_FAILMSG"
        kill -USR1 $$
        exit 1
    fi
    echo "FAIL: $*"
    exit 1
}
trap 'cat "$RFL_FAILMSG" 2>/dev/null || echo "FAIL: (in a subshell)"; rm -f "$RFL_FAILMSG"; exit 1' USR1
pass() { echo "PASS${1:+: $*}"; exit 0; }
log() { echo "$*"; }

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || fail "missing tool '$c' in the guest (install it on the host: make setup)"
    done
}

# Where our modules for the running kernel's flavour were built (qemu-test/vm
# passes RFL_MODULES; build/modules/FLAVOUR, see scripts/build-modules).
RFL_MODULES=${RFL_MODULES:-$RFL_TOP/build/modules/${RFL_FLAVOUR:-debug}}

# Path of one of our built modules; fails if it was not built.
our_module() {
    local ko
    ko=$(find "$RFL_MODULES/drivers" "$RFL_MODULES/selftests/modules" -name "$1.ko" 2>/dev/null | head -1)
    [ -n "$ko" ] || fail "module $1.ko not built in $RFL_MODULES (run 'make' at the top)"
    echo "$ko"
}

# PCI addresses (BDF) of the devices with this vendor and device ID.
# Shell builtins only: on the debug kernel under TCG a fork+exec costs
# ~0.4 s, and tests call this many times (it was 10+ s per call with a
# `cat` per file).
pci_devices() {
    local vendor=$1 device=$2 d v id
    for d in /sys/bus/pci/devices/*; do
        read -r v < "$d/vendor" && read -r id < "$d/device" || continue
        [ "$v" = "$vendor" ] && [ "$id" = "$device" ] && echo "${d##*/}"
    done
    return 0
}

# rfl_nap SECS: sleeps without forking (`sleep` is a fork+exec, ~0.4 s on
# the debug kernel under TCG, so a "sleep 0.1" poll ran at 2 Hz). For polls
# whose count times the wait: 100 naps of 0.1 s are 10 s here.
# The pipe is opened once here (a subshell inherits it); a read that ends
# any other way than by its timeout falls back to sleep.
rfl_nap() {
    [ -n "${RFL_NAP_FD:-}" ] || exec {RFL_NAP_FD}<> <(:)
    read -rt "$1" -u "$RFL_NAP_FD" _
    [ $? -gt 128 ] || sleep "$1"
}
exec {RFL_NAP_FD}<> <(:)

# True if process PID exists and one of its threads is not a zombie (a
# killed child of this shell stays a zombie, which kill -0 still finds, until
# it is waited for; a leader that exited shows Z while another thread may be
# stuck in the kernel). Shell builtins only: under iperf3 load a fork took
# ~4 s on a debug guest.
rfl_alive() {
    local t l
    for t in /proc/"$1"/task/*/stat; do
        { read -r l < "$t"; } 2>/dev/null || continue
        l=${l##*) }
        [ -n "$l" ] && [ "${l%% *}" != Z ] && return 0
    done
    return 1
}

# rfl_wait_exit PID SECS: waits by the clock, without forking, until
# process PID has ended (rfl_alive); returns 1 if it still runs after SECS.
# (A count of "sleep 0.1" polls is no clock: under load a fork took ~4 s.)
rfl_wait_exit() {
    local end=$((SECONDS + $2 + 1)) # SECONDS counts whole seconds
    while rfl_alive "$1"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        rfl_nap 0.1
    done
}

# Kernel log lines since the last `kmsg_mark`.
kmsg_mark() { KMSG_MARK=$(dmesg | wc -l); }
kmsg_since() { dmesg | tail -n +"$((KMSG_MARK + 1))"; }

# Waits up to $2 seconds (default 10) for a path to exist.
wait_for_path() {
    local path=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        [ -e "$path" ] && return 0
        sleep 0.1
    done
    return 1
}

# Expected kernel reports. A test that provokes a report on purpose (a TX
# timeout's NETDEV WATCHDOG, a deliberate WARN) brackets it:
#     rfl_expect_begin netdev-watchdog
#     ... provoke it, wait until it has been printed ...
#     rfl_expect_end
# The markers are kernel log lines ("rfl-expect: begin KIND..." / "rfl-expect:
# end [KIND...]"); qemu-test/scan-kernel-log tolerates reports of the named
# kinds between them only (listed as notes); any other kind, or the same kind
# outside the window, still fails the run. A window also ends with the test
# (selftests/run.sh's "rfl-test: end" line). The kinds are those of
# `qemu-test/scan-kernel-log --kinds`; an unknown one fails here.
rfl_expect_begin() {
    local k kinds
    [ $# -gt 0 ] || fail "rfl_expect_begin needs at least one report kind"
    kinds=$(python3 "$RFL_TOP/qemu-test/scan-kernel-log" --kinds | awk '{print $1}') ||
        fail "cannot list the report kinds (qemu-test/scan-kernel-log --kinds)"
    for k in "$@"; do
        grep -qx -- "$k" <<<"$kinds" || fail "rfl_expect_begin: unknown report kind '$k' (see qemu-test/scan-kernel-log --kinds)"
    done
    echo "rfl-expect: begin $*" > /dev/kmsg || fail "cannot write the expect marker to /dev/kmsg"
}
rfl_expect_end() {
    echo "rfl-expect: end${*:+ $*}" > /dev/kmsg || fail "cannot write the expect marker to /dev/kmsg"
}
