#!/usr/bin/env bash
# Guest runner self-test: rfl_warn leaks 3 allocations and is unloaded (so
# kmemleak cannot name it: the runner's /proc/modules record must), then is
# loaded again with a reboot notifier that never returns. The command
# succeeds, yet the run must fail twice over: the end-of-run kmemleak scan
# finds leaks in our module, and the guest does not power off within
# --shutdown-timeout ("hang during shutdown").
. "$(dirname "$0")/lib.sh"
ko=$(rfl_module_dir)/selftests/modules/rfl_warn.ko
[ -f "$ko" ] || { echo "FAIL: $ko not built (scripts/build-modules)"; exit 1; }
run_vm --shutdown-timeout 15 -- sh -c "insmod $ko warn=0 leak=3 && rmmod rfl_warn && insmod $ko warn=0 hang_at_shutdown=1"
[ "$exit_status" = 0 ] || bad "the command failed (exit '$exit_status')"
[ "$vm_status" != 0 ] || bad "the run passed"
grep -q 'FAIL: hang during shutdown' "$vm_err" || bad "no 'hang during shutdown'"
[ -f "$run_dir/shutdown-hang" ] || bad "the watchdog left no shutdown-hang mark"
grep -q 'rfl_warn: blocking power-off in a reboot notifier' "$run_dir/console.log" ||
    bad "the console does not show the notifier blocking (so what hung?)"
if [ "$(rfl_flavour)" = debug ]; then
    r=$(reports)
    echo "reports: $r"
    # Named through the /proc/modules record if the reload went elsewhere;
    # if it reused the address, the frames resolve into the new instance.
    n=$(grep -c '\[kmemleak\] .*rfl_warn' <<<"$r")
    [ "$n" -ge 3 ] || bad "want 3 kmemleak reports naming rfl_warn, got $n: $r"
    echo "attributed through the /proc/modules record: $(grep -c '\[kmemleak\] .*(module rfl_warn, unloaded' <<<"$r") of $n"
    [ "$(grep -c '^unreferenced object' "$run_dir/kmemleak.txt" 2>/dev/null)" -ge 3 ] || bad "kmemleak.txt lacks the 3 leaks"
fi
finish "a leak in an unloaded module of ours and a power-off hang both fail the run (${vm_secs}s)"
