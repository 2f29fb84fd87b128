# shellcheck shell=bash
# Helpers for the guest runner's self-tests (qemu-test/tests/runner/*.sh,
# run by scripts/check's "# guest runner" section). Each self-test boots one
# guest with qemu-test/vm and checks what the runner said and left behind.
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
. "$top/scripts/env.sh"
failures=0
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
finish() { # finish SUMMARY
    if [ $failures = 0 ]; then echo "PASS: $1"; exit 0; fi
    echo "$failures check(s) failed"; exit 1
}

# run_vm VM-OPTIONS... -- CMD... : boots a guest; sets vm_status, vm_err
# (the runner's stderr), run_dir, vm_secs and exit_status (the command's,
# as the guest wrote it; empty if none).
run_vm() {
    local start=$SECONDS
    vm_err=$(mktemp)
    "$top/qemu-test/vm" "$@" 2> "$vm_err" | sed 's/^/guest: /'
    vm_status=${PIPESTATUS[0]}
    vm_secs=$((SECONDS - start))
    sed 's/^/  /' "$vm_err"
    run_dir=$(sed -n 's/^vm: booting .*, logs in \(.*\)$/\1/p' "$vm_err" | head -1)
    [ -n "$run_dir" ] && [ -d "$run_dir" ] || { bad "the runner named no run directory"; finish "no run"; }
    exit_status=$(cat "$run_dir/exit-status" 2>/dev/null)
    echo "vm exit $vm_status, command exit '${exit_status}', ${vm_secs}s, $run_dir"
}

# The failure lines the runner printed ("vm:   LINE: [KIND] ...").
reports() { sed -n 's/^vm:   \([0-9]*: \[[a-z-]*\] .*\)$/\1/p' "$vm_err"; }
