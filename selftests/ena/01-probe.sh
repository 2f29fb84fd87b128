#!/usr/bin/env bash
# $ENA_DRIVER (the unmodified C ena, or rena) probes both functions of the
# model: reset, admin queue, features, MSI-X (one vector per queue pair and
# one for management), netdev registered with the model's MAC; ethtool -i
# names the driver; no errors logged. Functions a driver already holds (an
# earlier test, or a boot-time load of either driver) are unbound first, so
# the probe asserted here happens during this test, and no other driver's
# register reads fall between the model's counts below.
# The driver reads registers the way the function asks (the model counts
# both ways): with PCI revision 0 (the model's --readless) only through the
# read-less protocol, never a BAR0 load; otherwise by plain loads.
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_unbind_all
declare -A direct0 readless0
for f in 0 1; do
    direct0[$f]=$(ena_model_counter "$f" reg_reads_direct)
    readless0[$f]=$(ena_model_counter "$f" reg_reads_readless)
done
kmsg_mark
ena_load
for i in 0 1; do
    ifn=$(ena_ifname "$i")
    [ -n "$ifn" ] || fail "function $i: no netdev"
    mac=$(cat "/sys/class/net/$ifn/address")
    [ "$mac" = "06:ed:a0:00:00:0$((i + 1))" ] || fail "$ifn has MAC $mac, the model offers 06:ed:a0:00:00:0$((i + 1))"
    drv=$(basename "$(readlink "/sys/class/net/$ifn/device/driver")")
    [ "$drv" = "$DRV" ] || fail "$ifn is bound to '$drv', not $DRV"
    ethtool -i "$ifn" | grep -q "^driver: $DRV\$" || fail "ethtool -i $ifn does not say $DRV"
    nq=$(ethtool -l "$ifn" | awk '/^Combined:/ { n = $2 } END { print n }')
    [[ "$nq" =~ ^[0-9]+$ ]] && [ "$nq" -ge 1 ] || fail "$ifn reports no combined channels ('$nq')"
    # One MSI-X vector per queue pair plus the management one (C: io + 1),
    # no MSI or INTx fallback.
    vecs=(/sys/class/net/"$ifn"/device/msi_irqs/*)
    [ -e "${vecs[0]}" ] || fail "$ifn's device has no MSI/MSI-X vectors"
    [ "${#vecs[@]}" = $((nq + 1)) ] || fail "$ifn's device has ${#vecs[@]} MSI-X vectors, want $((nq + 1)) ($nq queue pairs + management)"
    for v in "${vecs[@]}"; do
        read -r kind < "$v"
        [ "$kind" = msix ] || fail "$ifn's vector $(basename "$v") is '$kind', not MSI-X"
    done
    log "$ifn: MAC $mac, $nq queue pair(s), ${#vecs[@]} MSI-X vectors, driver $drv"
done
f=0
for b in $(ena_bdfs); do
    read -r rev < "/sys/bus/pci/devices/$b/revision"
    d=$(( $(ena_model_counter "$f" reg_reads_direct) - direct0[$f] ))
    r=$(( $(ena_model_counter "$f" reg_reads_readless) - readless0[$f] ))
    log "function $f (revision $rev): $d direct BAR0 register reads, $r read-less ones"
    if (( rev & 1 )); then
        [ "$d" -gt 0 ] || fail "function $f: the probe made no direct register read with MMIO reads enabled"
        [ "$r" = 0 ] || fail "function $f: $DRV used the read-less protocol $r times with MMIO reads enabled (revision $rev)"
    else
        [ "$r" -gt 0 ] || fail "function $f: no read-less register read during a probe in read-less mode (revision $rev)"
        [ "$d" = 0 ] || fail "function $f: $DRV made $d direct BAR0 register reads in read-less mode (revision $rev)"
    fi
    f=$((f + 1))
done
if kmsg_since | grep -iE "$DRV.*(fail|error|timeout|reset)"; then
    fail "the $DRV driver logged errors during probe"
fi
ena_assert_model_clean
pass
