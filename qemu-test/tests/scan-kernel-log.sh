#!/usr/bin/env bash
# Host test of qemu-test/scan-kernel-log: each kind of report is caught, a
# clean boot log is not.
set -u
scan=$(dirname "$0")/../scan-kernel-log
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0
clean='[    0.000000] Linux version 6.12.117 (root@host) #1 SMP PREEMPT_DYNAMIC
[    1.234567] nvme nvme0: 2/0/0 default/read/poll queues
[    2.000000] rust_edu 0000:00:03.0: edu v1.0: all checks passed
[    3.000000] virtme-ng-init: triggering udev coldplug'
printf '%s\n' "$clean" > "$tmp/clean"
if ! "$scan" "$tmp/clean" >/dev/null; then echo "clean log flagged"; failures=$((failures + 1)); fi
while IFS= read -r report; do
    printf '%s\n%s\n' "$clean" "$report" > "$tmp/bad"
    if "$scan" "$tmp/bad" >/dev/null; then
        echo "not caught: $report"; failures=$((failures + 1))
    fi
done <<'REPORTS'
[    5.1] WARNING: CPU: 1 PID: 123 at drivers/foo.c:10 foo_probe+0x1/0x2 [foo]
[    5.1] ------------[ cut here ]------------
[    5.1] kernel BUG at mm/slub.c:100!
[    5.1] BUG: kernel NULL pointer dereference, address: 0000000000000008
[    5.1] Oops: general protection fault, probably for non-canonical address 0x1: 0000 [#1] PREEMPT SMP
[    5.1] BUG: KASAN: slab-use-after-free in foo+0x10/0x20
[    5.1] WARNING: possible circular locking dependency detected
[    5.1] INFO: task kworker/0:1:42 blocked for more than 30 seconds.
[    5.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:99]
[    5.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
[    5.1] BUG: sleeping function called from invalid context at kernel/sched/core.c:1
[    5.1] UBSAN: array-index-out-of-bounds in drivers/foo.c:1:2
[    5.1] Kernel panic - not syncing: Fatal exception
REPORTS
"$scan" "$tmp/missing" >/dev/null 2>&1; [ $? = 2 ] || { echo "missing file not reported as 2"; failures=$((failures + 1)); }
[ $failures = 0 ] && echo "scan-kernel-log: all report kinds caught, clean log passes"
exit $((failures > 0))
