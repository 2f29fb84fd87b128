# shellcheck shell=bash
# Helpers of the guest half of `make demo` (sourced by qemu-test/demo-*.sh
# after selftests/lib.sh or a suite library, whose `fail` ends the part with
# a non-zero status). Every check ends the part the same way: the part
# stops at the first step that did not do what it shows, and
# qemu-test/demo-guest.sh stops the demo there.

step() {
    DEMO_STEP=$*
    printf '\n\033[1m== %s\033[0m\n' "$*"
}
die() { echo "demo: FAILED at step '${DEMO_STEP:-?}': $*" >&2; exit 1; }

# Prints the lines of TEXT matching the extended regex RE; dies with WHY if
# none does (what the demo shows must be there, not just looked for).
show_match() { # show_match RE WHY TEXT
    local m
    m=$(grep -E -- "$1" <<< "$3") || die "$2"
    echo "$m"
}
