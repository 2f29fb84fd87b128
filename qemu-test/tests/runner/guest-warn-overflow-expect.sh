#!/usr/bin/env bash
# Guest part of warn-overflow-expect.sh (run by qemu-test/vm).
. "$(dirname "$0")/../../../selftests/lib.sh"
ko=$(our_module rfl_warn)
rfl_expect_begin warn
insmod "$ko" || fail "insmod rfl_warn (in the window)"
rmmod rfl_warn || fail "rmmod rfl_warn"
rfl_expect_end
insmod "$ko" || fail "insmod rfl_warn (after the window)"
rmmod rfl_warn || fail "rmmod rfl_warn"
[ "$(dmesg | grep -c 'deliberate warning')" = 2 ] || fail "the two WARNs are not in dmesg"
# The log buffer's size (syslog(SYSLOG_ACTION_SIZE_BUFFER)), then twice that
# in 900-byte records (one record per write).
size=$(python3 -c 'import ctypes; print(ctypes.CDLL(None, use_errno=True).klogctl(10, None, 0))')
[ "$size" -gt 0 ] 2>/dev/null || fail "cannot read the log buffer size ($size)"
pad=$(printf '%0880d' 0)
lines=$((2 * size / 900 + 1))
for ((i = 0; i < lines; i++)); do
    printf 'rfl-noise %06d %s\n' "$i" "$pad" > /dev/kmsg
done
log "log buffer $size bytes; wrote $lines records of 900 bytes"
dmesg | grep -q 'deliberate warning' && fail "the noise did not push the WARNs out of the log buffer"
pass "the WARNs are gone from dmesg"
