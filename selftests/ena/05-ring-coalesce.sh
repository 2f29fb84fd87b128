#!/usr/bin/env bash
# Ring sizes (ethtool -g/-G) and interrupt moderation (ethtool -c/-C, adaptive
# on/off) on $ENA_DRIVER with the model; traffic flows after each change.
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_setup_pair
ifn=${ENA_IF[0]}
ena_ns 0 ethtool -g "$ifn" | grep -q '^RX:' || fail "ethtool -g gives no ring sizes"
ena_ns 0 ethtool -G "$ifn" rx 512 tx 512 || fail "ethtool -G rx 512 tx 512 failed"
got=$(ena_ns 0 ethtool -g "$ifn" | awk '/^Current/ { c = 1 } c && /^RX:/ { print $2 }')
[ "$got" = 512 ] || fail "RX ring is $got after -G rx 512"
ena_wait_carrier 0 10 || fail "no carrier after ethtool -G"
ena_ns 0 ping -c 2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic after ethtool -G"
ena_ns 0 ethtool -G "$ifn" rx 1024 tx 1024 || fail "ethtool -G back to 1024 failed"
ena_wait_carrier 0 10 || fail "no carrier after ethtool -G"
ena_ns 0 ethtool -c "$ifn" >/dev/null || fail "ethtool -c failed (moderation not advertised?)"
ena_ns 0 ethtool -C "$ifn" adaptive-rx off rx-usecs 100 tx-usecs 200 || fail "ethtool -C failed"
c=$(ena_ns 0 ethtool -c "$ifn")
echo "$c" | grep -q '^rx-usecs:[[:space:]]*100' || fail "rx-usecs not 100: $c"
echo "$c" | grep -q '^tx-usecs:[[:space:]]*200' || fail "tx-usecs not 200: $c"
ena_ns 0 ping -c 3 -i 0.2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic with static moderation"
ena_ns 0 ethtool -C "$ifn" adaptive-rx on || fail "adaptive-rx on failed"
ena_ns 0 ping -c 3 -i 0.2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic with adaptive moderation"
log "ethtool -G 512/1024, -C static 100/200 µs and adaptive: traffic flows"
pass
