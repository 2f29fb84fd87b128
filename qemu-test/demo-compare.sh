#!/usr/bin/env bash
# The last part of `make demo` (run by qemu-test/demo-guest.sh): a glance at
# C versus Rust for both drivers in this boot, one run of DEMO_SECS seconds
# per row and driver, made by the guest halves of `make bench` themselves
# (qemu-test/nvme-bench-guest, qemu-test/ena-model/bench-guest.sh) with
# their row and target filters:
#   NVMe  4K random read QD1 and QD32 x CPUs, IOPS: C nvme vs rnvme
#         (on the first NVMe controller, null-co, as in make bench)
#   ENA   TCP 1 flow Gbit/s and TCP 1-byte request/response transactions/s:
#         C ena vs rena (pair backend)
# Every row must have both values; the ratio is Rust/C (higher is better on
# every row).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../selftests/lib.sh
. "$here/../selftests/lib.sh"
# shellcheck source-path=SCRIPTDIR source=demo-lib.sh
. "$here/demo-lib.sh"
secs=${DEMO_SECS:-3}
out=$(mktemp -d)

# Runs one benchmark guest half with its environment; its RESULT lines go
# to FILE, its progress lines are shown, the rest is kept for a failure.
bench() { # bench FILE CMD...
    local file=$1 st t0=$SECONDS
    shift
    # (stderr is redirected first: the filter's output then goes to our stdout)
    "$@" 2> >(tee "$file.err" | grep --line-buffered '^bench: rep' | sed -u 's/^bench: rep 1 /  /') > "$file"
    st=$?
    # Let the progress filter drain before anything else is printed.
    wait
    [ "$st" = 0 ] || { tail -n 15 "$file.err"; tail -n 5 "$file"; die "$* exited $st"; }
    echo "  ($((SECONDS - t0)) s with the driver reloads and set-up)"
}

step "C versus Rust in this boot: 1 run x ${secs} s per row and driver"
kind=$(cut -d, -f2 <<< "${RFL_VM_NVME%% *}")
[ "$kind" = null ] || die "the first NVMe controller is '$kind', not null-co (RFL_VM_NVME='$RFL_VM_NVME')"
bench "$out/nvme" env BENCH_REPS=1 BENCH_SECS="$secs" BENCH_ROWS='^randread-4k-qd(1|32xcpus)$' \
    BENCH_TARGETS="nvme rnvme" "$here/nvme-bench-guest"
bench "$out/ena" env BENCH_REPS=1 BENCH_SECS="$secs" BENCH_ENA_ROWS='^(tcp-1flow|tcp-rr)$' \
    BENCH_ENA_TARGETS="ena rena" "$here/ena-model/bench-guest.sh"

# RESULT,row,target,rep,value[,MiB/s] -> one table line per row.
table() { # table FILE LABEL|ROW|C|RUST|FORMAT...
    local file=$1 spec label row c r fmt cv rv
    shift
    for spec in "$@"; do
        IFS='|' read -r label row c r fmt <<< "$spec"
        cv=$(awk -F, -v row="$row" -v t="$c" '$1 == "RESULT" && $2 == row && $3 == t { print $5 }' "$file")
        rv=$(awk -F, -v row="$row" -v t="$r" '$1 == "RESULT" && $2 == row && $3 == t { print $5 }' "$file")
        [ -n "$cv" ] && [ -n "$rv" ] || die "no result for $row on $c and $r"
        awk -v l="$label" -v c="$c" -v r="$r" -v cv="$cv" -v rv="$rv" -v f="$fmt" 'BEGIN {
            if (cv <= 0) { print "demo: " l ": " c " measured " cv > "/dev/stderr"; exit 1 }
            printf "| %-42s | %-5s %12s | %-5s %12s | %6.2f |\n", l, c, sprintf(f, cv), r, sprintf(f, rv), rv / cv
        }' || die "$label: the C driver's value is not positive"
    done
}
echo
printf '| %-42s | %-18s | %-18s | %6s |\n' "row (unit)" "C" "Rust" "Rust/C"
echo "|--------------------------------------------|--------------------|--------------------|--------|"
table "$out/nvme" \
    "NVMe 4K randread QD1 (IOPS)|randread-4k-qd1|nvme|rnvme|%.0f" \
    "NVMe 4K randread QD32 x $(nproc) jobs (IOPS)|randread-4k-qd32xcpus|nvme|rnvme|%.0f"
table "$out/ena" \
    "ENA TCP 1 flow (Gbit/s)|tcp-1flow|ena|rena|%.3f" \
    "ENA TCP 1-byte request/response (trans/s)|tcp-rr|ena|rena|%.0f"
echo
echo "One ${secs}-second run per row under TCG: a glance, not a measurement. 'make bench' is the"
echo "real one: medians of 5 alternated repetitions x 5 s per row, with their spread, more rows"
echo "and the no-device ceilings (build/bench/nvme.md, build/bench/ena.md)."
rm -rf "$out"
