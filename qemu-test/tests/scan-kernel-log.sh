#!/usr/bin/env bash
# Host test of qemu-test/scan-kernel-log: every kind of report (the 6.12
# message texts) is caught and named as its kind, a clean boot log passes,
# the lines of one report make one report of its kind, expect windows
# tolerate only their kind and only inside the window (and end at a test
# boundary), and kmemleak leaks are ours (fail), someone else's (warning) or
# unattributable (fail) by their backtrace.
set -u
scan=$(dirname "$0")/../scan-kernel-log
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

clean='[    0.000000] Linux version 6.12.118-rfl-debug (root@host) #1 SMP PREEMPT_DYNAMIC
[    0.000000] Command line: earlyprintk=serial,ttyS0,115200 console=ttyS0 ignore_loglevel log_buf_len=16M
[    0.120000] ODEBUG: 12 of 12 active objects replaced
[    0.200000] DMA-API: preallocated 65536 debug entries
[    0.200001] DMA-API: debugging enabled by kernel config
[    0.300000] kmemleak: Kernel memory leak detector initialized (mem pool available: 14390)
[    0.300001] kasan: KernelAddressSanitizer initialized (generic)
[    1.234567] nvme nvme0: 2/0/0 default/read/poll queues
[    2.000000] rust_edu 0000:00:03.0: edu v1.0: all checks passed
[    2.500000] ena 0000:00:0a.0 eth0: Keep alive watchdog timeout.
[    2.600000] lockdep: Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar
[    2.700000] traps: python3[123] general protection fault ip:7f0012 sp:7ffd0 error:0 in libc.so.6[7f00+1000]
[    3.000000] virtme-ng-init: triggering udev coldplug
[    3.100000] rfl-test: begin ena/02-link-ping
[    3.200000] rfl-test: end ena/02-link-ping 0'
printf '%s\n' "$clean" > "$tmp/clean"
"$scan" "$tmp/clean" > "$tmp/out" 2>&1 || bad "clean log flagged: $(cat "$tmp/out")"
# CR LF line ends (the serial console) change nothing.
sed 's/$/\r/' "$tmp/clean" > "$tmp/clean-crlf"
"$scan" "$tmp/clean-crlf" > "$tmp/out" 2>&1 || bad "clean CRLF log flagged: $(cat "$tmp/out")"

# KIND<TAB>one line of that report, as 6.12 prints it.
n=0
while IFS=$'\t' read -r want report; do
    [ -n "$want" ] || continue
    n=$((n + 1))
    printf '%s\n%s\n' "$clean" "$report" > "$tmp/bad"
    out=$("$scan" "$tmp/bad" 2>/dev/null); st=$?
    if [ $st != 1 ]; then
        bad "not caught (exit $st): $report"
    elif ! grep -qF "[$want] " <<<"$out"; then
        bad "caught as the wrong kind (want $want): $out"
    fi
done <<'REPORTS'
netdev-watchdog	[   50.1] ena 0000:00:0a.0 eth0: NETDEV WATCHDOG: CPU: 1: transmit queue 0 timed out 5120 ms
netdev-unregister	[   50.1] unregister_netdevice: waiting for eth0 to become free. Usage count = 2
page-pool-stall	[   50.1] page_pool_release_retry() stalled pool shutdown: id 12, 3 inflight 60 sec
rcu-stall	[   50.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
rcu-stall	[   50.1] rcu: INFO: rcu_sched self-detected stall on CPU
rcu-stall	[   50.1] INFO: rcu_preempt self-detected stall on CPU
rcu-stall	[   50.1] rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 21003 jiffies s: 81 root: 0x2/.
rcu-stall	[   50.1] INFO: rcu_tasks detected stalls on tasks:
rcu-stall	[   50.1] rcu: rcu_preempt kthread starved for 10502 jiffies! g1234 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x0 ->cpu=1
soft-lockup	[   50.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:99]
soft-lockup	[   50.1] watchdog: Watchdog detected hard LOCKUP on cpu 1
hung-task	[   50.1] INFO: task kworker/0:1:42 blocked for more than 30 seconds.
kasan	[   50.1] BUG: KASAN: slab-use-after-free in rena_poll+0x10/0x20 [rena]
kasan	[   50.1] KASAN: null-ptr-deref in range [0x0000000000000008-0x000000000000000f]
ubsan	[   50.1] UBSAN: array-index-out-of-bounds in drivers/foo.c:1:2
ubsan	[   50.1] UBSAN: shift-out-of-bounds in drivers/foo.c:10:5
dma-api	[   50.1] DMA-API: rnvme 0000:00:04.0: device driver failed to check map error[device address=0x0000000001234000] [size=4096 bytes] [mapped as single]
dma-api	[   50.1] DMA-API: ena 0000:00:0a.0: device driver tries to free DMA memory it has not allocated [device address=0x0000000000000000] [size=0 bytes]
dma-api	[   50.1] DMA-API: debugging out of memory - disabling
kmemleak	[   50.1] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
kmemleak-off	[   50.1] kmemleak: Kernel memory leak detector disabled
kmemleak-off	[   50.1] kmemleak: Memory pool empty, consider increasing CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE
kmemleak-off	[   50.1] rfl-guest-exec: kmemleak scan failed: cannot write scan to /sys/kernel/debug/kmemleak
rust-panic	[   50.1] rust_kernel: panicked at drivers/rena/src/tx.rs:120:9:
lockdep	[   50.1] WARNING: possible recursive locking detected
lockdep	[   50.1] WARNING: possible circular locking dependency detected
lockdep	[   50.1] WARNING: inconsistent lock state
lockdep	[   50.1] WARNING: suspicious RCU usage
lockdep	[   50.1] WARNING: bad unlock balance detected!
lockdep	[   50.1] WARNING: held lock freed!
lockdep	[   50.1] WARNING: possible irq lock inversion dependency detected
lockdep	[   50.1] WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected
lockdep	[   50.1] WARNING: insmod/123 still has locks held!
lockdep	[   50.1] BUG: MAX_LOCKDEP_ENTRIES too low!
lockdep	[   50.1] INFO: trying to register non-static key.
list-corruption	[   50.1] list_add corruption. next->prev should be prev (ffff888003a0c010), but was 0000000000000000. (next=ffff888003a0c020).
list-corruption	[   50.1] list_del corruption, ffff888003a0c010->next is LIST_POISON1 (dead000000000100)
list-corruption	[   50.1] list_add double add: new=ffff888003a0c010, prev=ffff888003a0c010, next=ffff888003a0c020.
odebug	[   50.1] ODEBUG: free active (active state 0) object: ffff888003a0c010 object type: timer_list hint: rena_timer+0x0/0x10 [rena]
odebug	[   50.1] ODEBUG: Out of memory. ODEBUG disabled
refcount	[   50.1] refcount_t: underflow; use-after-free.
refcount	[   50.1] refcount_t: addition on 0; use-after-free.
atomic-sleep	[   50.1] BUG: scheduling while atomic: insmod/123/0x00000002
atomic-sleep	[   50.1] BUG: sleeping function called from invalid context at kernel/sched/core.c:8700
softirq-pending	[   50.1] NOHZ tick-stop error: local softirq work is pending, handler #08!!!
log-loss	[   50.1] ** 12 printk messages dropped **
gpf	[   50.1] Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN
page-fault	[   50.1] BUG: unable to handle page fault for address: ffffc90000123000
page-fault	[   50.1] Unable to handle kernel paging request at virtual address dead000000000108
page-fault	[   50.1] BUG: kernel NULL pointer dereference, address: 0000000000000008
panic	[   50.1] Kernel panic - not syncing: Fatal exception
panic	[   50.1] PANIC: double fault, error_code: 0x0
bug	[   50.1] kernel BUG at mm/slub.c:100!
bug	[   50.1] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!
bug	[   50.1] BUG kmalloc-64 (Not tainted): Left Redzone overwritten
warn	[   50.1] WARNING: CPU: 1 PID: 123 at drivers/foo.c:10 foo_probe+0x1/0x2 [foo]
warn	[   50.1] ------------[ cut here ]------------
oops	[   50.1] Oops: invalid opcode: 0000 [#1] PREEMPT SMP KASAN
stack-dump	[   50.1] Call Trace:
REPORTS
# Every kind the scanner knows has a line above.
for k in $("$scan" --kinds | awk '{print $1}'); do
    grep -q "^$k"$'\t' "$0" || bad "kind $k has no test line here"
done

# One WARN (cut here .. end trace) of a specific kind is one report of that kind.
cat > "$tmp/refcount" <<'EOF'
[   60.000000] ------------[ cut here ]------------
[   60.000001] refcount_t: underflow; use-after-free.
[   60.000002] WARNING: CPU: 0 PID: 97 at lib/refcount.c:28 refcount_warn_saturate+0x1/0x2
[   60.000003] Modules linked in: rena
[   60.000004] Call Trace:
[   60.000005]  <TASK>
[   60.000006]  rena_close+0x10/0x20 [rena]
[   60.000007]  </TASK>
[   60.000008] ---[ end trace 0000000000000000 ]---
EOF
out=$("$scan" "$tmp/refcount" 2>/dev/null)
[ "$(wc -l <<<"$out")" = 1 ] && grep -q '^2: \[refcount\] refcount_t: underflow' <<<"$out" ||
    bad "a refcount WARN is not one refcount report: $out"

# The expect marker: inside its window the named kind is tolerated, another
# kind is not, the same kind after the window is not.
{
    echo "$clean"
    echo "[   70.0] rfl-test: begin ena/13-fault-more"
    echo "[   70.1] rfl-expect: begin netdev-watchdog"
    echo "[   70.2] ena 0000:00:0a.0 eth0: NETDEV WATCHDOG: CPU: 1: transmit queue 0 timed out 5120 ms"
    echo "[   70.3] rfl-expect: end"
    echo "[   70.4] rfl-test: end ena/13-fault-more 0"
} > "$tmp/expect-ok"
"$scan" "$tmp/expect-ok" > "$tmp/out" 2> "$tmp/err" || bad "an expected NETDEV WATCHDOG inside its window failed the scan: $(cat "$tmp/out")"
grep -q 'note: expected netdev-watchdog report tolerated.*during ena/13-fault-more' "$tmp/err" ||
    bad "the tolerated report is not listed as a note: $(cat "$tmp/err")"
sed 's/rfl-expect: begin netdev-watchdog/rfl-expect: begin hung-task/' "$tmp/expect-ok" > "$tmp/expect-other"
"$scan" "$tmp/expect-other" > "$tmp/out" 2>/dev/null && bad "a window for hung-task tolerated a NETDEV WATCHDOG"
grep -q '\[netdev-watchdog\].*(during ena/13-fault-more)' "$tmp/out" || bad "the report does not name its test: $(cat "$tmp/out")"
{
    cat "$tmp/expect-ok"
    echo "[   80.0] ena 0000:00:0a.0 eth0: NETDEV WATCHDOG: CPU: 0: transmit queue 1 timed out 5120 ms"
} > "$tmp/expect-after"
"$scan" "$tmp/expect-after" > "$tmp/out" 2>/dev/null && bad "a NETDEV WATCHDOG after the window was tolerated"
grep -q '\[netdev-watchdog\].*queue 1' "$tmp/out" || bad "the report after the window is not the one flagged: $(cat "$tmp/out")"
# A window a test never ended closes at the next test boundary.
{
    echo "[   70.0] rfl-test: begin ena/07-keepalive-reset"
    echo "[   70.1] rfl-expect: begin netdev-watchdog warn"
    echo "[   70.2] rfl-test: end ena/07-keepalive-reset 1"
    echo "[   70.3] rfl-test: begin ena/08-rmmod-loop"
    echo "[   70.4] ena 0000:00:0a.0 eth0: NETDEV WATCHDOG: CPU: 1: transmit queue 0 timed out 5120 ms"
} > "$tmp/expect-unclosed"
"$scan" "$tmp/expect-unclosed" > "$tmp/out" 2>/dev/null && bad "a window left open by one test hid the next test's report"
grep -q 'during ena/08-rmmod-loop' "$tmp/out" || bad "the next test's report is not named: $(cat "$tmp/out")"
# A test run with an environment (run.sh's VAR=VALUE) is named with it.
{
    echo "[   70.0] rfl-test: begin ena/02-link-ping ENA_DRIVER=ena"
    echo "[   70.4] ena 0000:00:0a.0 eth0: NETDEV WATCHDOG: CPU: 1: transmit queue 0 timed out 5120 ms"
} > "$tmp/env-name"
"$scan" "$tmp/env-name" > "$tmp/out" 2>/dev/null && bad "a NETDEV WATCHDOG in a test with an environment was not flagged"
grep -q '(during ena/02-link-ping ENA_DRIVER=ena)' "$tmp/out" || bad "the report does not name the test with its environment: $(cat "$tmp/out")"
# A WARN window tolerates a whole plain WARN (cut here, WARNING:, Call Trace).
{
    echo "[   90.0] rfl-expect: begin warn"
    sed -e 's/refcount_t: underflow; use-after-free./rfl_warn: deliberate warning/' "$tmp/refcount"
    echo "[   90.9] rfl-expect: end warn"
} > "$tmp/expect-warn"
"$scan" "$tmp/expect-warn" > "$tmp/out" 2>/dev/null || bad "an expected plain WARN was flagged: $(cat "$tmp/out")"
# ... but not a refcount WARN.
{ echo "[   90.0] rfl-expect: begin warn"; cat "$tmp/refcount"; echo "[   90.9] rfl-expect: end"; } > "$tmp/expect-warn-rc"
"$scan" "$tmp/expect-warn-rc" > "$tmp/out" 2>/dev/null && bad "a warn window tolerated a refcount_t report"
# A marker with a misspelt kind fails loudly.
printf '%s\n' "[ 1.0] rfl-expect: begin netdev-wachdog" > "$tmp/expect-typo"
"$scan" "$tmp/expect-typo" > "$tmp/out" 2>/dev/null && bad "a marker with an unknown kind passed"
# A NETDEV WATCHDOG has no stack: a stack dump after it is its own report.
{ cat "$tmp/expect-ok" | head -n -2; echo "[ 70.25] Call Trace:"; echo "[ 70.3] rfl-expect: end"; } > "$tmp/expect-dump"
"$scan" "$tmp/expect-dump" > "$tmp/out" 2>/dev/null && bad "a stack dump in a netdev-watchdog window was tolerated"

# kmemleak: ours (a module frame, or an unsymbolised frame in a module the
# record says was ours) fails; others' leaks are warnings; an unsymbolised
# frame in no recorded module fails.
leak() { # leak PREFIX FRAME...
    local p=$1; shift
    echo "[  100.0] ${p}unreferenced object 0xffff888004$RANDOM (size 64):"
    echo "[  100.0] ${p}  comm \"insmod\", pid 95, jiffies 4294901234"
    echo "[  100.0] ${p}  hex dump (first 32 bytes):"
    echo "[  100.0] ${p}    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................"
    echo "[  100.0] ${p}  backtrace (crc 1a2b3c4d):"
    echo "[  100.0] ${p}    __kmalloc_cache_noprof+0x1d0/0x3c0"
    for f in "$@"; do echo "[  100.0] ${p}    $f"; done
    echo "[  100.0] ${p}    do_one_initcall+0xa0/0x3f0"
}
summary='[  100.0] kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)'
printf '@ 12.5 before rmmod rena 0x1 0x2 0x3 0x4\nrena 98304 0 - Live 0xffffffffc0200000\n@ 13.0 poll\nnvme 90112 0 - Live 0xffffffffc0400000\n' > "$tmp/modules"
kl() { # kl NAME WANT(ours|foreign) FRAME...
    local name=$1 want=$2; shift 2
    { echo "$clean"; echo "$summary"; leak "rfl-kmemleak: " "$@"; } > "$tmp/leak-$name"
    out=$("$scan" --modules "$tmp/modules" "$tmp/leak-$name" 2> "$tmp/err"); st=$?
    case "$want" in
        ours) [ $st = 1 ] && grep -q '\[kmemleak\] .*unreferenced object' <<<"$out" ||
                  bad "leak $name not failed (exit $st): $out" ;;
        foreign) [ $st = 0 ] && grep -q '^warning: kmemleak: leak outside our modules' "$tmp/err" ||
                  bad "leak $name not a warning (exit $st): $out $(cat "$tmp/err")" ;;
    esac
}
kl rena ours 'rena_setup_rx+0x1c0/0x400 [rena]'
kl rust-bindings ours '_RNvMNtCs1aB_13rust_bindings3dmaNtB2_8Coherent5alloc+0x50/0x90 [rnvme]'
kl rfl-test-module ours 'rfl_leak_one+0x1c/0x30 [rfl_warn]'
kl unloaded-rena ours '0xffffffffc0201234'
kl c-nvme foreign 'nvme_alloc_ns+0x1c0/0x400 [nvme]'
kl unloaded-nvme foreign '0xffffffffc0401234'
kl core foreign 'acpi_ps_alloc_op+0x20/0x40'
kl unknown-module ours '0xffffffffc0901234'
"$scan" --modules "$tmp/modules" "$tmp/leak-unknown-module" 2>/dev/null | grep -q 'cannot tell whose leak' ||
    bad "an unattributable leak does not say why"
# The kernel's own verbose copy and guest-exec's copy of one object count once.
{ echo "$clean"; leak "kmemleak: " 'rena_x+0x1/0x2 [rena]' | sed 's/0xffff888004[0-9]*/0xffff88800400/'
  leak "rfl-kmemleak: " 'rena_x+0x1/0x2 [rena]' | sed 's/0xffff888004[0-9]*/0xffff88800400/'; } > "$tmp/leak-twice"
[ "$("$scan" "$tmp/leak-twice" 2>/dev/null | wc -l)" = 1 ] || bad "one leak printed twice is reported twice"
# A summary with no object details anywhere fails.
{ echo "$clean"; echo "$summary"; } > "$tmp/leak-summary"
"$scan" "$tmp/leak-summary" > /dev/null 2>&1 && bad "a kmemleak summary without details passed"
# ... unless guest-exec's end-of-run dump comes after it and lists nothing
# (the first scan's suspect was referenced again at the second).
{ cat "$tmp/leak-summary"; echo "[  101.0] rfl-guest-exec: kmemleak: two scans 5s apart took 20.1s, 0 unreferenced objects (kmemleak.txt)"; } > "$tmp/leak-transient"
"$scan" "$tmp/leak-transient" > "$tmp/out" 2>&1 || bad "a transient suspect cleared by the end-of-run scan failed: $(cat "$tmp/out")"

# User space on the console (virtme-ng's console fallback): lines without a
# kernel timestamp are not kernel reports; a kernel line glued to them is.
{ echo "$clean"; echo "# FAIL: WARNING: CPU: 1 PID: 2 at test output"; } > "$tmp/userspace"
"$scan" "$tmp/userspace" > "$tmp/out" 2>&1 || bad "user-space console output was scanned as kernel lines: $(cat "$tmp/out")"
{ echo "$clean"; echo "2[  667.4] Kernel panic - not syncing: Fatal exception"; } > "$tmp/glued"
"$scan" "$tmp/glued" 2>/dev/null | grep -q '\[panic\]' || bad "a kernel line after user-space output on the same line was missed"
# A log without timestamps (dmesg --notime) is scanned line by line.
printf '%s\n' 'nvme nvme0: ready' 'WARNING: CPU: 1 PID: 2 at drivers/foo.c:1 foo+0x1/0x2' > "$tmp/notime"
"$scan" "$tmp/notime" 2>/dev/null | grep -q '\[warn\]' || bad "a WARN in a log without timestamps was missed"

"$scan" "$tmp/missing" >/dev/null 2>&1; [ $? = 2 ] || bad "missing file not reported as 2"
[ $failures = 0 ] && echo "scan-kernel-log: all $n report lines caught as their kind, clean log passes, reports grouped, expect windows and kmemleak attribution hold"
exit $((failures > 0))
