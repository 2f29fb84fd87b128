#!/usr/bin/env bash
# Guest runner self-test: with the kernel's default 128 KiB log buffer,
#   1. a WARN inside rfl_expect_begin warn / rfl_expect_end is tolerated,
#   2. a second WARN after the window is not,
#   3. then more than the whole log buffer of noise goes to /dev/kmsg, so
#      neither WARN is left in dmesg (the guest checks it),
# and the run still fails, on exactly the second WARN (the console has it).
. "$(dirname "$0")/lib.sh"
run_vm --log-buf-len default -- "$top/qemu-test/tests/runner/guest-warn-overflow-expect.sh"
[ "$exit_status" = 0 ] || bad "the guest part failed (exit '$exit_status'): see above"
[ "$vm_status" = 1 ] || bad "the run did not fail on the WARN (vm exit $vm_status, want 1)"
grep -q 'FAIL: the guest kernel log has a WARN' "$vm_err" || bad "the runner does not say it failed on a kernel report"
r=$(reports)
echo "reports: $r"
[ "$(grep -c . <<<"$r")" = 1 ] || bad "want exactly one report (the WARN outside the window), got: $r"
grep -q '\[warn\] .*rfl_warn' <<<"$r" || bad "the report is not rfl_warn's WARN: $r"
line=${r%%:*}
end=$(grep -n 'rfl-expect: end' "$run_dir/console.log" | head -1 | cut -d: -f1)
[ -n "$end" ] && [ -n "$line" ] && [ "$line" -gt "$end" ] || bad "the flagged WARN (line $line) is not the one after the window (ends line $end)"
grep -q 'note: expected warn report tolerated' "$vm_err" || bad "the WARN inside the window is not listed as tolerated"
finish "a WARN pushed out of the log buffer is still caught; the expect window tolerates only its own WARN (${vm_secs}s)"
