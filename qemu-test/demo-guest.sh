#!/usr/bin/env bash
# The guest half of `make demo`: our Rust modules on QEMU devices.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
mods=${RFL_MODULES:?run under qemu-test/vm, which sets RFL_MODULES}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

step "guest kernel $(uname -r), PCI devices"
lspci -nn | grep -Ei 'nvm|1234:11e8|1d0f'

step "rust_edu: a Rust driver for QEMU's edu device, all through rust-bindings"
insmod "$mods/selftests/modules/rust_edu.ko" || die "insmod rust_edu failed"
dmesg | grep 'rust_edu.*checks passed'
grep -E 'rust_edu' /proc/interrupts
rmmod rust_edu

nvme_bdf=$(basename "$(dirname "$(grep -l 0x1b36 /sys/bus/pci/devices/*/vendor | head -1)")")
step "rnvme: the Rust NVMe driver takes $nvme_bdf over from the C nvme"
[ -e "/sys/bus/pci/devices/$nvme_bdf/driver" ] && echo "$nvme_bdf" > "/sys/bus/pci/devices/$nvme_bdf/driver/unbind"
echo rnvme > "/sys/bus/pci/devices/$nvme_bdf/driver_override"
insmod "$mods/drivers/rnvme/rnvme.ko" poll_queues=1 || die "insmod rnvme failed"
sleep 1
dmesg | grep 'rnvme ' | tail -4
lsblk -o NAME,SIZE,LOG-SEC,SCHED /dev/rnvme0n1

step "data written through rnvme reads back identical"
dd if=/dev/urandom of=/tmp/demo.data bs=1M count=16 status=none
dd if=/tmp/demo.data of=/dev/rnvme0n1 bs=1M oflag=direct status=none
dd if=/dev/rnvme0n1 of=/tmp/demo.back bs=1M count=16 iflag=direct status=none
sha256sum /tmp/demo.data /tmp/demo.back

step "fio 4K random read, 5 s, through rnvme"
fio --name=demo --filename=/dev/rnvme0n1 --rw=randread --bs=4k --iodepth=16 --ioengine=libaio \
    --direct=1 --runtime=5 --time_based --size=256M 2>/dev/null | grep -E 'IOPS|lat.*avg' | head -3
grep -E 'CPU|rnvme' /proc/interrupts

step "controller reset under the running disk (echo 1 > .../rnvme_reset)"
echo 1 > "/sys/bus/pci/devices/$nvme_bdf/rnvme_reset" && dmesg | grep 'rnvme.*reset' | tail -2
dd if=/dev/rnvme0n1 bs=1M count=16 iflag=direct status=none | sha256sum

step "rmmod rnvme"
rmmod rnvme && echo "removed cleanly"
echo
echo "demo finished"
