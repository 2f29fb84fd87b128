#!/usr/bin/env bash
# Guest runner self-test: a clean run passes, and what the runner promises
# holds: an --append argument reaches the guest's /proc/cmdline (the command
# checks it, so the run's exit status is the answer), QEMU captured the
# console from the first boot line to the power-off, at every log level,
# with a 16M log buffer, and on the debug flavour the end-of-run kmemleak
# scan ran (its time is printed: what every run pays for it).
. "$(dirname "$0")/lib.sh"
probe=rfl_runner.probe=$$
run_vm --append "$probe" -- grep -qw "$probe" /proc/cmdline
[ "$vm_status" = 0 ] || bad "the clean run failed (exit $vm_status; the appended '$probe' not in /proc/cmdline if the command exit is 1)"
[ "$exit_status" = 0 ] || bad "the command (grep $probe /proc/cmdline) exited '$exit_status'"
c=$run_dir/console.log
head -n 5 "$c" | grep -q 'Linux version' || bad "console.log does not start at the kernel's first line"
grep -q 'Command line:.*ignore_loglevel.*log_buf_len=16M' "$c" ||
    grep -q 'Command line:.*log_buf_len=16M.*ignore_loglevel' "$c" || bad "the kernel command line lacks ignore_loglevel/log_buf_len=16M"
grep -q "Command line:.*$probe" "$c" || bad "the appended argument is not on the console's command line"
grep -q 'rfl-guest-exec: exit status 0 written; powering off' "$c" || bad "guest-exec's last line is not on the console"
tail -n 5 "$c" | grep -q 'reboot: Power down' || bad "console.log does not end with the kernel's power-off"
[ -L "$run_dir/guest-kernel.log" ] || bad "no guest-kernel.log link to console.log"
if [ "$(rfl_flavour)" = debug ]; then
    scan=$(sed -n 's/.*rfl-guest-exec: kmemleak: \(two scans .*\)$/\1/p' "$c" | tr -d '\r')
    [ -n "$scan" ] || bad "no end-of-run kmemleak scan on the debug flavour"
    [ -f "$run_dir/kmemleak.txt" ] || bad "no kmemleak.txt in the run directory"
    echo "kmemleak: $scan"
fi
grep -h 'powered off' "$vm_err"
finish "clean run: exit 0, --append reached /proc/cmdline, console boot to power-off (${vm_secs}s)"
