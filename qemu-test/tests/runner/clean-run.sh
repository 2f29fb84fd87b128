#!/usr/bin/env bash
# Guest runner self-test: a clean run passes, and what the runner promises
# holds: an --append argument reaches the guest's /proc/cmdline (the command
# checks it, so the run's exit status is the answer), QEMU captured the
# console from the first boot line to the power-off, at every log level,
# with a 16M log buffer, and on the debug flavour the end-of-run kmemleak
# scan ran (its time is printed: what every run pays for it). A second
# guest: a command longer than the kernel command line runs whole, with the
# runner's own arguments intact.
. "$(dirname "$0")/lib.sh"
probe=rfl_runner.probe=$$
run_vm --append "$probe" -- grep -qw "$probe" /proc/cmdline
[ "$vm_status" = 0 ] || bad "the clean run failed (exit $vm_status; the appended '$probe' not in /proc/cmdline if the command exit is 1)"
[ "$exit_status" = 0 ] || bad "the command (grep $probe /proc/cmdline) exited '$exit_status'"
c=$run_dir/console.log
head -n 5 "$c" | grep -q 'Linux version' || bad "console.log does not start at the kernel's first line"
# (The console's "Command line:" is cut at 1 KiB, before our arguments:
# check their effects.)
grep -q 'printk: debug: ignoring loglevel setting' "$c" || bad "ignore_loglevel did not take effect"
grep -q 'printk: log_buf_len: 16777216 bytes' "$c" || bad "log_buf_len=16M did not take effect"
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
secs1=$vm_secs

# A command longer than the kernel command line (2 KiB on x86): it runs
# whole, and the runner's own arguments are still on the command line
# (guest-exec fails the run with exit 125 when one is missing).
long=$(printf 'x%.0s' $(seq 2500))
run_vm -- bash -c '[ ${#1} = 2500 ] && grep -qw log_buf_len=16M /proc/cmdline && grep -qw panic=-1 /proc/cmdline' _ "$long"
[ "$vm_status" = 0 ] || bad "a 2.5 KiB command: vm exit $vm_status (125: guest-exec found runner arguments missing from /proc/cmdline)"
[ "$exit_status" = 0 ] || bad "a 2.5 KiB command did not arrive whole, or the runner's arguments are not in /proc/cmdline (command exit '$exit_status')"
finish "clean run: exit 0, --append reached /proc/cmdline, console boot to power-off (${secs1}s); a 2.5 KiB command runs whole with the runner's arguments intact"
