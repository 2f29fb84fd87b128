#!/usr/bin/env bash
# The rnvme part of `make demo` (run by qemu-test/demo-guest.sh): rnvme takes
# every QEMU NVMe controller over from the C nvme (selftests/nvme/nvme-lib's
# nvme_load), data written through it reads back identical, a controller
# reset while a read runs loses nothing, rmmod is clean.
export NVME_DRIVER=rnvme
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../selftests/nvme/nvme-lib
. "$here/../selftests/nvme/nvme-lib"
# shellcheck source-path=SCRIPTDIR source=demo-lib.sh
. "$here/demo-lib.sh"

# The controller backed by a file keeps what is written (null-co does not).
data=
for i in "${!NVME_SPECS[@]}"; do
    [ "$(nvme_spec "$i" 2)" = file ] && { data=$i; break; }
done
[ -n "$data" ] || die "no file-backed NVMe controller in RFL_VM_NVME='$RFL_VM_NVME'"
bdf=${NVME_BDFS[$data]}

step "rnvme: the Rust NVMe driver takes ${#NVME_BDFS[@]} controllers over from the C nvme"
for b in "${NVME_BDFS[@]}"; do
    echo "$b: bound to $(basename "$(readlink -f "/sys/bus/pci/devices/$b/driver" 2>/dev/null || echo none)")"
done
kmsg_mark
nvme_load poll_queues=1
show_match 'rnvme .*(namespace|queues)' "rnvme logged no probe lines" "$(kmsg_since)"
# shellcheck disable=SC2086 # one path per namespace
lsblk -o NAME,SIZE,LOG-SEC,SCHED ${DISKS[*]} || die "lsblk of ${DISKS[*]} failed"

read -r dev _ <<< "${CTRL_DISKS[$data]}"
step "32 MiB of random data written through $dev read back identical"
dd if=/dev/urandom of="$NVME_TMP/data" bs=1M count=32 status=none || die "cannot make the test data"
dd if="$NVME_TMP/data" of="$dev" bs=1M oflag=direct status=none || die "writing $dev failed"
want=$(sha256sum < "$NVME_TMP/data" | cut -d' ' -f1)
got=$(dd if="$dev" bs=1M count=32 iflag=direct status=none | sha256sum | cut -d' ' -f1)
echo "written  $want"
echo "read     $got"
[ "$got" = "$want" ] || die "the data read back from $dev differs from what was written"

step "controller reset while a read of $dev runs (echo 1 > .../$bdf/rnvme_reset)"
before=$(cat "/sys/bus/pci/devices/$bdf/rnvme_resets") || die "rnvme has no rnvme_resets attribute"
kmsg_mark
# Small direct reads keep the disk busy across the reset.
dd if="$dev" bs=16k count=2048 iflag=direct status=none 2>"$NVME_TMP/dd.err" | sha256sum > "$NVME_TMP/sum" &
reader=$!
sleep 0.2
running=no
kill -0 "$reader" 2>/dev/null && running=yes
echo 1 > "/sys/bus/pci/devices/$bdf/rnvme_reset" || die "writing rnvme_reset failed"
wait "$reader"
[ -s "$NVME_TMP/dd.err" ] && die "the read across the reset failed: $(cat "$NVME_TMP/dd.err")"
for _ in $(seq 50); do kmsg_since | grep -q 'rnvme.*controller reset done' && break; sleep 0.1; done
show_match 'rnvme .*reset' "no 'controller reset done' from rnvme" "$(kmsg_since)"
after=$(cat "/sys/bus/pci/devices/$bdf/rnvme_resets")
echo "rnvme_resets: $before -> $after; the read was running at the reset: $running"
[ "$after" -gt "$before" ] || die "rnvme_resets did not grow"
got=$(cut -d' ' -f1 "$NVME_TMP/sum")
echo "read across the reset  $got"
[ "$got" = "$want" ] || die "the data read across the reset differs from what was written"
show_match 'rnvme-io' "no rnvme I/O interrupt lines" "$(grep -E 'CPU|rnvme' /proc/interrupts)"

step "rmmod rnvme"
nvme_unload
echo "removed cleanly"
