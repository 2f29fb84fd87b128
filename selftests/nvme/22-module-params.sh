#!/usr/bin/env bash
# Module parameters out of their range are refused: loading fails, the
# module is not left loaded, and dmesg names the parameter (rnvme: and its
# allowed range, as the README promises). rnvme: every parameter, just
# below and just above its range where there is one, and a non-number; both
# ends of every range load. The ranges are the README's (this test's table;
# modinfo shows only the descriptions). C nvme (the oracle has range checks
# on io_queue_depth only): io_queue_depth 1 and 4096.
# About 40 insmods (16 that load and unload): 587 s for rnvme on a debug guest.
# rfl-timeout: 1500
. "$(dirname "$0")/nvme-lib"
require_cmd modinfo
nvme_unload
# refused MODULE PARAM=VALUE [RANGE]: loading MODULE with PARAM=VALUE fails
# and dmesg says why (naming RANGE "min..=max" when given).
refused() {
    local mod=$1 pv=$2 range=${3:-} p=${2%%=*} v=${2#*=}
    kmsg_mark
    if [ "$mod" = nvme ]; then
        modprobe nvme "$pv" 2>"$NVME_TMP/load.err" && fail "modprobe nvme $pv succeeded"
    else
        insmod "$(our_module rnvme)" "$pv" 2>"$NVME_TMP/load.err" && fail "insmod rnvme $pv succeeded"
    fi
    ! nvme_module_loaded "$mod" || fail "$mod is loaded after refusing $pv"
    kmsg_since > "$NVME_TMP/kmsg"
    # The kernel's own line for a parameter its handler refused.
    grep -qF "\`$v' invalid for parameter \`$p'" "$NVME_TMP/kmsg" ||
        { sed 's/^/  dmesg: /' "$NVME_TMP/kmsg"; fail "$mod $pv: no 'invalid for parameter' line in dmesg"; }
    if [ -n "$range" ]; then
        grep -qF "parameter $p=$v rejected: allowed range is $range" "$NVME_TMP/kmsg" ||
            { sed 's/^/  dmesg: /' "$NVME_TMP/kmsg"; fail "$mod $pv: dmesg does not name the allowed range $range"; }
    fi
    log "$mod $pv refused: $(grep -m1 -E "rejected|invalid" "$NVME_TMP/kmsg" | sed 's/^\[[^]]*\] //')"
}
if [ "$DRV" = nvme ]; then
    refused nvme io_queue_depth=1
    refused nvme io_queue_depth=4096
    pass "C nvme refuses io_queue_depth out of 2..=4095"
fi
ko=$(our_module rnvme)
n=0 accepted=0
# Every u32 parameter of rnvme with its range, from modinfo (the README's
# table must match the driver; the ranges below are the ones it promises).
declare -A want=([poll_queues]=0..=64 [io_queue_depth]=16..=4095 [max_io_queues]=0..=256
                 [poll_budget]=1..=4096 [irq_coalesce_time]=0..=255 [irq_coalesce_threshold]=0..=255
                 [sgl_threshold]=0..=1073741824 [match_class]=0..=1)
mapfile -t params < <(modinfo -F parm "$ko" | sed 's/:.*//')
[ ${#params[@]} = ${#want[@]} ] || fail "rnvme has ${#params[@]} parameters (${params[*]}), this test knows ${#want[@]}"
for p in "${params[@]}"; do
    range=${want[$p]:-}
    [ -n "$range" ] || fail "rnvme parameter $p is not covered by this test"
    lo=${range%%..=*} hi=${range##*..=}
    [ "$lo" = 0 ] || { refused rnvme "$p=$((lo - 1))" "$range"; n=$((n + 1)); }
    refused rnvme "$p=$((hi + 1))" "$range"
    n=$((n + 1))
    kmsg_mark
    insmod "$ko" "$p=x1" 2>/dev/null && fail "insmod rnvme $p=x1 (not a number) succeeded"
    ! nvme_module_loaded rnvme || fail "rnvme is loaded after refusing $p=x1"
    kmsg_since | grep -qF "parameter $p: not an unsigned number" || fail "rnvme $p=x1: dmesg does not say it is not a number"
    n=$((n + 1))
    # Both ends of the range are accepted (match_class=0: nothing is bound,
    # only the parameter's check runs; for match_class itself, its value).
    for v in "$lo" "$hi"; do
        if [ "$p" = match_class ]; then args=("$p=$v"); else args=(match_class=0 "$p=$v"); fi
        insmod "$ko" "${args[@]}" 2> "$NVME_TMP/insmod.err" || fail "insmod rnvme ${args[*]} (in range $range) failed: $(cat "$NVME_TMP/insmod.err")"
        [ "$(cat "/sys/module/rnvme/parameters/$p")" = "$v" ] || fail "rnvme $p reads $(cat "/sys/module/rnvme/parameters/$p") after loading with $v"
        nvme_unload
        accepted=$((accepted + 1))
    done
done
pass "$n out-of-range or malformed values refused, $accepted range ends accepted, across ${#params[@]} rnvme parameters"
