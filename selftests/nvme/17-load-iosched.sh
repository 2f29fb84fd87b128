#!/usr/bin/env bash
# rfl-timeout: 900
# I/O scheduler switches under I/O: fio writes random 4k blocks with crc32c
# verify (verify_backlog) on both namespaces of controller 0 (QD16) and on
# controller 1 (4096-byte blocks), while every one of those disks switches
# scheduler none -> mq-deadline -> kyber -> none -> kyber -> mq-deadline ->
# ... every 0.5 s (each switch read back: the queue is frozen, drained and
# re-set up under load). fio runs in rounds until at least 9 switches per
# disk have happened while it ran (6 rounds at most); every round completes
# with no I/O or verify error, the kernel log has no report, and a write +
# verify pass on each scheduler afterwards has no error.
. "$(dirname "$0")/nvme-lib"
. "$(dirname "$0")/../stress-lib"
require_cmd python3
nvme_load
read -ra c0 <<< "${CTRL_DISKS[0]}"
read -ra c1 <<< "${CTRL_DISKS[1]}"
[ ${#c0[@]} -ge 2 ] || fail "controller 0 needs 2 namespaces (qemu-test/vm --nvme=1G,ns=2 ...)"
targets=("${c0[0]}" "${c0[1]}" "${c1[0]}")
declare -A orig
for d in "${targets[@]}"; do
    s=/sys/block/$(basename "$d")/queue/scheduler
    for want in none mq-deadline kyber; do
        grep -qw -- "$want" "$s" || fail "$d does not offer scheduler $want: $(cat "$s")"
    done
    orig[$d]=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$s")
done
stress_restore() { local d; for d in "${targets[@]}"; do echo "${orig[$d]}" > "/sys/block/$(basename "$d")/queue/scheduler" 2>/dev/null; done; }
log "schedulers before: $(for d in "${targets[@]}"; do echo -n "$(basename "$d")=${orig[$d]} "; done)"

set_sched() { # set_sched DEV NAME
    local s=/sys/block/$(basename "$1")/queue/scheduler
    echo "$2" > "$s" || fail "switching $1 to $2 under I/O failed"
    grep -q "\[$2\]" "$s" || fail "$1 scheduler reads '$(cat "$s")' after switching to $2"
}

common=(--ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=16 --size=12M --offset=512M
        --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_backlog=128 --verify_dump=1)
jobs=()
for d in "${targets[@]}"; do jobs+=(--name="$(basename "$d")" --filename="$d"); done
stress_kmsg_mark
order=(mq-deadline kyber none kyber mq-deadline none)
# fio rounds until 9 switches have happened under I/O (a switch freezes and
# drains the queue, so on a slow guest one round may see only a few).
# k moves on at every switch (neighbours in order differ: each switch is a
# real change); n counts those made while fio ran.
n=0 k=0 round=0
while [ $n -lt 9 ]; do
    round=$((round + 1))
    [ $round -le 6 ] || fail "only $n scheduler switches under I/O in 6 fio rounds"
    stress_fio_start load "${common[@]}" "${jobs[@]}"
    sleep 1
    while stress_fio_running load; do
        stress_io_watch "${targets[@]}"
        sched=${order[k % ${#order[@]}]}
        k=$((k + 1))
        for d in "${targets[@]}"; do set_sched "$d" "$sched"; done
        # Count only switches made while fio still ran.
        stress_fio_running load && n=$((n + 1))
        sleep 0.5
    done
    stress_fio_wait load 1
    stress_fio_ok load
done
log "fio on ${targets[*]} with crc32c verify, $round round(s), across $n scheduler switches each: no error"
stress_kmsg_check "scheduler switches under I/O"
for sched in none mq-deadline kyber; do
    for d in "${targets[@]}"; do set_sched "$d" "$sched"; done
    run_fio "after-$sched" "${common[@]/--size=12M/--size=2M}" --filename="${targets[0]}" --offset=700M
done
log "write + verify on none, mq-deadline and kyber afterwards: no error"
pass
