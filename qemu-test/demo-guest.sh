#!/usr/bin/env bash
# The guest half of `make demo`.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "guest kernel"
uname -r; grep -o 'rust[^ ]*' /proc/cmdline || true
step "PCI devices"
lspci -nn
step "insmod selftests/modules/rust_edu.ko (Rust, all through rust-bindings)"
insmod "$top/selftests/modules/rust_edu.ko" || exit 1
dmesg | grep rust_edu
step "its interrupt"
grep -E 'CPU|rust_edu' /proc/interrupts
step "rmmod rust_edu"
rmmod rust_edu && dmesg | grep rust_edu | tail -1
step "the C nvme driver on QEMU's NVMe (the oracle for rnvme)"
modprobe nvme && sleep 1 && nvme list
echo
echo "demo finished"
