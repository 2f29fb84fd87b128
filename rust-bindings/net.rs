// SPDX-License-Identifier: GPL-2.0

//! Network devices: allocation and registration of a multiqueue Ethernet
//! `net_device`, its operations (`net_device_ops` and `ethtool_ops`) as one
//! trait, carrier, TX queue control and byte queue limits.
//!
//! Follows the net RFC's shapes (`rust/kernel/net/dev.rs`): a
//! [`Registration`] that allocates (`alloc_etherdev_mqs`), registers and,
//! on drop, unregisters and frees the device; a [`DeviceOperations`] trait
//! for the callbacks, which get the driver data and the [`Device`]. The
//! 6.12 port differs in that ethtool callbacks are part of the same trait
//! (with defaults) and the private area holds a pointer to an `Arc<T>`.
//!
//! Rules the types encode: `start_xmit` takes the skb by value and always
//! reports `NETDEV_TX_OK` ([`TxCode::Busy`] gives nothing back, so it is
//! not offered); the private data outlives every callback because drop
//! unregisters before it frees; queue indices are checked.
//!
//! Per-queue statistics (`struct netdev_stat_ops`, what `ynl ... qstats-get`
//! and the kernel's `drivers/net/stats.py` read) are trait methods that
//! return values ([`QueueStatsRx`], [`QueueStatsTx`]); the glue checks the
//! queue index against the device's real queue count and writes the values
//! into the core's structures, so no driver touches those C objects.

use crate::rust_bindings::{bindings, device, error::eopnotsupp, skb::SkBuff};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{error::from_result, prelude::*, sync::Arc, types::Opaque};

/// A network device.
///
/// # Invariants
///
/// Wraps a valid `struct net_device` allocated by a [`Registration`].
#[repr(transparent)]
pub struct Device(Opaque<bindings::net_device>);

// SAFETY: The helpers used are thread-safe (they take the locks they need).
unsafe impl Send for Device {}
// SAFETY: As above.
unsafe impl Sync for Device {}

/// Which direction of a queue (`enum netdev_queue_type`).
#[derive(Clone, Copy)]
enum QueueType {
    Rx,
    Tx,
}

impl Device {
    /// # Safety
    ///
    /// `ptr` must be a valid net device for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::net_device) -> &'a Self {
        // SAFETY: `Device` is transparent over the C struct.
        unsafe { &*ptr.cast() }
    }

    /// The C object.
    pub fn as_raw(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    fn num_queues(&self) -> u32 {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_netdev_num_tx_queues(self.as_raw()) }
    }

    fn queue(&self, q: u32) -> Option<u16> {
        if q < self.num_queues() {
            u16::try_from(q).ok()
        } else {
            None
        }
    }

    /// Number of RX queues the stack uses (`real_num_rx_queues`).
    pub fn real_num_rx_queues(&self) -> u32 {
        // SAFETY: Valid by the type invariant; a plain read of an integer.
        unsafe { bindings::rb_netdev_real_num_rx_queues(self.as_raw()) }
    }

    /// Number of TX queues the stack uses (`real_num_tx_queues`).
    pub fn real_num_tx_queues(&self) -> u32 {
        // SAFETY: Valid by the type invariant; a plain read of an integer.
        unsafe { bindings::rb_netdev_real_num_tx_queues(self.as_raw()) }
    }

    /// Sets the carrier (link) state.
    pub fn set_carrier(&self, on: bool) {
        // SAFETY: Valid; both functions may be called from any context.
        unsafe {
            if on {
                bindings::netif_carrier_on(self.as_raw())
            } else {
                bindings::netif_carrier_off(self.as_raw())
            }
        }
    }

    /// Whether the carrier is on.
    pub fn carrier_ok(&self) -> bool {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_netif_carrier_ok(self.as_raw()) }
    }

    /// Whether the device is administratively up.
    pub fn is_running(&self) -> bool {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_netif_running(self.as_raw()) }
    }

    /// Whether RX checksum offload is on now (`ethtool -K rx`): a driver
    /// reports no checksum result while it is off.
    pub fn rx_csum_enabled(&self) -> bool {
        // SAFETY: Valid by the type invariant; the helper reads the feature
        // word once (it changes under RTNL while packets arrive).
        unsafe { bindings::rb_netdev_rx_csum_enabled(self.as_raw()) }
    }

    /// The current MTU.
    pub fn mtu(&self) -> u32 {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_netdev_mtu(self.as_raw()) }
    }

    /// Sets the MTU (from `change_mtu`; the core checked the range).
    pub fn set_mtu(&self, mtu: u32) {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_netdev_set_mtu(self.as_raw(), mtu) }
    }

    /// Sets the number of active queue pairs (RTNL held).
    pub fn set_real_num_queues(&self, n: u32) -> Result {
        if n == 0 || n > self.num_queues() {
            return Err(EINVAL);
        }
        // SAFETY: Valid; `n` is in range.
        kernel::error::to_result(unsafe {
            bindings::rb_netdev_set_real_num_queues(self.as_raw(), n)
        })
    }

    /// Stops TX queue `q`.
    pub fn stop_queue(&self, q: u32) {
        if let Some(q) = self.queue(q) {
            // SAFETY: Valid; `q` is in range.
            unsafe { bindings::rb_netif_stop_subqueue(self.as_raw(), q) }
        }
    }

    /// Wakes TX queue `q`; does nothing while the queue has no qdisc yet
    /// (before `register_netdevice` attaches one).
    pub fn wake_queue(&self, q: u32) {
        if let Some(q) = self.queue(q) {
            // SAFETY: Valid; `q` is in range.
            unsafe { bindings::rb_netif_wake_subqueue(self.as_raw(), q) }
        }
    }

    /// Whether TX queue `q` is stopped.
    pub fn queue_stopped(&self, q: u32) -> bool {
        match self.queue(q) {
            // SAFETY: Valid; `q` is in range.
            Some(q) => unsafe { bindings::rb_netif_subqueue_stopped(self.as_raw(), q) },
            None => true,
        }
    }

    /// Milliseconds since TX queue `q` last transmitted.
    pub fn queue_trans_age_ms(&self, q: u32) -> u64 {
        match self.queue(q) {
            // SAFETY: Valid; `q` is in range.
            Some(q) => unsafe { bindings::rb_netdev_trans_start_age_ms(self.as_raw(), q) as u64 },
            None => 0,
        }
    }

    /// Stops all TX queues, waiting for running `start_xmit` calls.
    pub fn tx_disable(&self) {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_netif_tx_disable(self.as_raw()) }
    }

    /// Wakes all TX queues (`netif_tx_wake_all_queues`): starts them and
    /// reschedules the qdisc of each one that was stopped, which may hold
    /// packets queued while `tx_disable` had stopped the queues of a device
    /// that stayed open. A queue with no qdisc yet (before
    /// `register_netdevice` attaches one) is left as it is.
    pub fn tx_wake_all(&self) {
        // SAFETY: Valid by the type invariant; the C helper skips every
        // queue whose qdisc pointer is still NULL.
        unsafe { bindings::rb_netif_tx_wake_all_queues(self.as_raw()) }
    }

    /// BQL: `bytes` were queued to the device on TX queue `q`.
    pub fn sent_queue(&self, q: u32, bytes: u32) {
        if let Some(q) = self.queue(q) {
            // SAFETY: Valid; `q` is in range.
            unsafe { bindings::rb_netdev_tx_sent_queue(self.as_raw(), q, bytes) }
        }
    }

    /// BQL: `pkts` packets of `bytes` completed on TX queue `q`.
    pub fn completed_queue(&self, q: u32, pkts: u32, bytes: u32) {
        if let Some(q) = self.queue(q) {
            // SAFETY: Valid; `q` is in range.
            unsafe { bindings::rb_netdev_tx_completed_queue(self.as_raw(), q, pkts, bytes) }
        }
    }

    /// BQL: forget what was in flight on TX queue `q` (ring reset).
    pub fn reset_queue(&self, q: u32) {
        if let Some(q) = self.queue(q) {
            // SAFETY: Valid; `q` is in range.
            unsafe { bindings::rb_netdev_tx_reset_queue(self.as_raw(), q) }
        }
    }

    fn queue_napi(&self, q: u32, kind: QueueType, napi: *mut bindings::napi_struct) {
        let kind = match kind {
            QueueType::Rx => bindings::netdev_queue_type_NETDEV_QUEUE_TYPE_RX,
            QueueType::Tx => bindings::netdev_queue_type_NETDEV_QUEUE_TYPE_TX,
        };
        if self.queue(q).is_some() {
            // SAFETY: Valid; `q` is in range; `napi` is NULL or a listed
            // NAPI instance of this device (see `napi::Napi::link_queue`).
            unsafe { bindings::netif_queue_set_napi(self.as_raw(), q, kind, napi) }
        }
    }

    pub(crate) fn set_queue_napi(&self, q: u32, napi: *mut bindings::napi_struct) {
        self.queue_napi(q, QueueType::Rx, napi);
        self.queue_napi(q, QueueType::Tx, napi);
    }

    /// Unlinks TX and RX queue `q` from their NAPI instance (RTNL held).
    pub fn clear_queue_napi(&self, q: u32) {
        self.set_queue_napi(q, core::ptr::null_mut());
    }
}

/// Whether the stack has more packets coming right after this one
/// (`netdev_xmit_more`): the doorbell may be deferred.
pub fn xmit_more() -> bool {
    // SAFETY: Reads a per-CPU flag; called from `start_xmit`.
    unsafe { bindings::rb_netdev_xmit_more() }
}

/// Holds the RTNL lock until dropped. Not `Send`: a mutex is released by the
/// thread that took it.
pub struct RtnlGuard(core::marker::PhantomData<*mut ()>);

/// Takes the RTNL lock (sleeps).
pub fn rtnl_lock() -> RtnlGuard {
    // SAFETY: Process context; released by the guard's drop.
    unsafe { bindings::rtnl_lock() };
    RtnlGuard(core::marker::PhantomData)
}

impl Drop for RtnlGuard {
    fn drop(&mut self) {
        // SAFETY: Taken by `rtnl_lock`.
        unsafe { bindings::rtnl_unlock() };
    }
}

/// Keeps bottom halves (softirqs) disabled on this CPU until dropped: take
/// it in process context before a lock that NAPI or `start_xmit` also take.
/// Not `Send`: bottom halves must be re-enabled on the CPU that disabled them.
pub struct BhGuard(core::marker::PhantomData<*mut ()>);

/// Disables bottom halves (`local_bh_disable`).
pub fn bh_disable() -> BhGuard {
    // SAFETY: Balanced by the guard's drop on the same CPU (no sleeping
    // while it is held, enforced by the lock users).
    unsafe { bindings::rb_local_bh_disable() };
    BhGuard(core::marker::PhantomData)
}

impl Drop for BhGuard {
    fn drop(&mut self) {
        // SAFETY: Disabled by `bh_disable`.
        unsafe { bindings::rb_local_bh_enable() };
    }
}

/// The result of `start_xmit`. Only `Ok`: the driver always takes the skb
/// (on errors it drops it and counts the drop).
pub enum TxCode {
    /// The skb was queued or dropped.
    Ok,
}

/// Interface counters for `ndo_get_stats64`.
#[derive(Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct Stats64 {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

/// `ethtool -l/-L`.
#[derive(Default, Clone, Copy)]
pub struct Channels {
    /// Most queue pairs.
    pub max_combined: u32,
    /// Active queue pairs.
    pub combined: u32,
}

/// `ethtool -g/-G`.
#[derive(Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct RingParam {
    pub rx_max: u32,
    pub tx_max: u32,
    pub rx: u32,
    pub tx: u32,
}

/// `ethtool -c/-C` (the fields this abstraction advertises).
#[derive(Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct Coalesce {
    pub rx_usecs: u32,
    pub tx_usecs: u32,
    pub adaptive_rx: bool,
}

/// Adds `add` to `sum` where both are reported, like the core's
/// `netdev_nl_stats_add`: a statistic missing from either side stays
/// missing. Wraps like the C `u64` counters.
fn stat_add(sum: &mut Option<u64>, add: Option<u64>) {
    *sum = match (*sum, add) {
        (Some(a), Some(b)) => Some(a.wrapping_add(b)),
        _ => None,
    };
}

/// Writes a reported statistic; a missing one keeps the core's "not set"
/// marker (all ones), so it is left out of the netlink answer.
fn stat_put(dst: &mut u64, v: Option<u64>) {
    if let Some(v) = v {
        *dst = v;
    }
}

/// One RX queue's counters for netdev netlink `qstats-get`
/// (`struct netdev_queue_stats_rx`; each is defined in the kernel's
/// `Documentation/netlink/specs/netdev.yaml`). `None` is a statistic the
/// driver does not collect: it is not reported (never reported as 0).
#[derive(Default, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct QueueStatsRx {
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub alloc_fail: Option<u64>,
    pub hw_drops: Option<u64>,
    pub hw_drop_overruns: Option<u64>,
    pub csum_unnecessary: Option<u64>,
    pub csum_none: Option<u64>,
    pub csum_bad: Option<u64>,
    pub hw_gro_packets: Option<u64>,
    pub hw_gro_bytes: Option<u64>,
    pub hw_gro_wire_packets: Option<u64>,
    pub hw_gro_wire_bytes: Option<u64>,
    pub hw_drop_ratelimits: Option<u64>,
}

impl QueueStatsRx {
    /// Adds another queue's counters (for [`DeviceOperations::queue_stats_base`]).
    pub fn add(&mut self, o: &Self) {
        stat_add(&mut self.packets, o.packets);
        stat_add(&mut self.bytes, o.bytes);
        stat_add(&mut self.alloc_fail, o.alloc_fail);
        stat_add(&mut self.hw_drops, o.hw_drops);
        stat_add(&mut self.hw_drop_overruns, o.hw_drop_overruns);
        stat_add(&mut self.csum_unnecessary, o.csum_unnecessary);
        stat_add(&mut self.csum_none, o.csum_none);
        stat_add(&mut self.csum_bad, o.csum_bad);
        stat_add(&mut self.hw_gro_packets, o.hw_gro_packets);
        stat_add(&mut self.hw_gro_bytes, o.hw_gro_bytes);
        stat_add(&mut self.hw_gro_wire_packets, o.hw_gro_wire_packets);
        stat_add(&mut self.hw_gro_wire_bytes, o.hw_gro_wire_bytes);
        stat_add(&mut self.hw_drop_ratelimits, o.hw_drop_ratelimits);
    }

    fn write_to(&self, out: &mut bindings::netdev_queue_stats_rx) {
        stat_put(&mut out.packets, self.packets);
        stat_put(&mut out.bytes, self.bytes);
        stat_put(&mut out.alloc_fail, self.alloc_fail);
        stat_put(&mut out.hw_drops, self.hw_drops);
        stat_put(&mut out.hw_drop_overruns, self.hw_drop_overruns);
        stat_put(&mut out.csum_unnecessary, self.csum_unnecessary);
        stat_put(&mut out.csum_none, self.csum_none);
        stat_put(&mut out.csum_bad, self.csum_bad);
        stat_put(&mut out.hw_gro_packets, self.hw_gro_packets);
        stat_put(&mut out.hw_gro_bytes, self.hw_gro_bytes);
        stat_put(&mut out.hw_gro_wire_packets, self.hw_gro_wire_packets);
        stat_put(&mut out.hw_gro_wire_bytes, self.hw_gro_wire_bytes);
        stat_put(&mut out.hw_drop_ratelimits, self.hw_drop_ratelimits);
    }
}

/// One TX queue's counters for netdev netlink `qstats-get`
/// (`struct netdev_queue_stats_tx`); `None` as in [`QueueStatsRx`].
#[derive(Default, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct QueueStatsTx {
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub hw_drops: Option<u64>,
    pub hw_drop_errors: Option<u64>,
    pub csum_none: Option<u64>,
    pub needs_csum: Option<u64>,
    pub hw_gso_packets: Option<u64>,
    pub hw_gso_bytes: Option<u64>,
    pub hw_gso_wire_packets: Option<u64>,
    pub hw_gso_wire_bytes: Option<u64>,
    pub hw_drop_ratelimits: Option<u64>,
    pub stop: Option<u64>,
    pub wake: Option<u64>,
}

impl QueueStatsTx {
    /// Adds another queue's counters (for [`DeviceOperations::queue_stats_base`]).
    pub fn add(&mut self, o: &Self) {
        stat_add(&mut self.packets, o.packets);
        stat_add(&mut self.bytes, o.bytes);
        stat_add(&mut self.hw_drops, o.hw_drops);
        stat_add(&mut self.hw_drop_errors, o.hw_drop_errors);
        stat_add(&mut self.csum_none, o.csum_none);
        stat_add(&mut self.needs_csum, o.needs_csum);
        stat_add(&mut self.hw_gso_packets, o.hw_gso_packets);
        stat_add(&mut self.hw_gso_bytes, o.hw_gso_bytes);
        stat_add(&mut self.hw_gso_wire_packets, o.hw_gso_wire_packets);
        stat_add(&mut self.hw_gso_wire_bytes, o.hw_gso_wire_bytes);
        stat_add(&mut self.hw_drop_ratelimits, o.hw_drop_ratelimits);
        stat_add(&mut self.stop, o.stop);
        stat_add(&mut self.wake, o.wake);
    }

    fn write_to(&self, out: &mut bindings::netdev_queue_stats_tx) {
        stat_put(&mut out.packets, self.packets);
        stat_put(&mut out.bytes, self.bytes);
        stat_put(&mut out.hw_drops, self.hw_drops);
        stat_put(&mut out.hw_drop_errors, self.hw_drop_errors);
        stat_put(&mut out.csum_none, self.csum_none);
        stat_put(&mut out.needs_csum, self.needs_csum);
        stat_put(&mut out.hw_gso_packets, self.hw_gso_packets);
        stat_put(&mut out.hw_gso_bytes, self.hw_gso_bytes);
        stat_put(&mut out.hw_gso_wire_packets, self.hw_gso_wire_packets);
        stat_put(&mut out.hw_gso_wire_bytes, self.hw_gso_wire_bytes);
        stat_put(&mut out.hw_drop_ratelimits, self.hw_drop_ratelimits);
        stat_put(&mut out.stop, self.stop);
        stat_put(&mut out.wake, self.wake);
    }
}

/// Writes `ethtool -S` names, 32 bytes each.
pub struct StringSet<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl StringSet<'_> {
    /// Appends one name (truncated to 31 bytes); extra names are ignored.
    pub fn push(&mut self, parts: core::fmt::Arguments<'_>) {
        let Some(slot) = self.buf.get_mut(self.pos * 32..(self.pos + 1) * 32) else {
            return;
        };
        slot.fill(0);
        let mut w = SliceWriter {
            buf: &mut slot[..31],
            len: 0,
        };
        let _ = core::fmt::write(&mut w, parts);
        self.pos += 1;
    }
}

struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// The callbacks of a network device. Ethtool methods default to
/// "not supported".
pub trait DeviceOperations: Send + Sync + Sized + 'static {
    /// Driver name for `ethtool -i`.
    const DRIVER_NAME: &'static CStr;

    /// `ndo_open` (RTNL held).
    fn open(&self, dev: &Device) -> Result;

    /// `ndo_stop` (RTNL held).
    fn stop(&self, dev: &Device) -> Result;

    /// `ndo_start_xmit`: BH context, TX queue lock held; must not sleep.
    fn start_xmit(&self, dev: &Device, skb: SkBuff) -> TxCode;

    /// `ndo_get_stats64`: must not sleep.
    fn get_stats64(&self, _dev: &Device, _stats: &mut Stats64) {}

    /// Whether the device reports per-queue statistics (installs
    /// `netdev_stat_ops` with the three `queue_stats_*` methods below).
    /// Without it the core answers `qstats-get` with EOPNOTSUPP.
    const QUEUE_STATS: bool = false;

    /// Counters of live RX queue `queue` (`get_queue_stats_rx`, RTNL held);
    /// `queue` is below [`Device::real_num_rx_queues`] (the glue checks).
    fn queue_stats_rx(&self, _dev: &Device, _queue: u32) -> QueueStatsRx {
        QueueStatsRx::default()
    }

    /// Counters of live TX queue `queue` (`get_queue_stats_tx`, RTNL held);
    /// `queue` is below [`Device::real_num_tx_queues`] (the glue checks).
    fn queue_stats_tx(&self, _dev: &Device, _queue: u32) -> QueueStatsTx {
        QueueStatsTx::default()
    }

    /// `get_base_stats` (RTNL held): what the device counted outside the
    /// live queues, i.e. the history of queues at and above `live_rx` /
    /// `live_tx` (the real queue counts). The core reports, per device,
    /// these plus the sum of the live queues, and only the statistics that
    /// are `Some` here: a statistic the device keeps must be `Some(0)`
    /// here when nothing was counted outside the live queues.
    fn queue_stats_base(
        &self,
        _dev: &Device,
        _live_rx: u32,
        _live_tx: u32,
    ) -> (QueueStatsRx, QueueStatsTx) {
        (QueueStatsRx::default(), QueueStatsTx::default())
    }

    /// `ndo_change_mtu` (RTNL held).
    fn change_mtu(&self, dev: &Device, mtu: u32) -> Result {
        dev.set_mtu(mtu);
        Ok(())
    }

    /// `ndo_tx_timeout`: the stack's TX watchdog fired for `queue`.
    fn tx_timeout(&self, _dev: &Device, _queue: u32) {}

    /// `ethtool -l`.
    fn get_channels(&self, _dev: &Device) -> Channels {
        Channels::default()
    }

    /// `ethtool -L combined N`.
    fn set_channels(&self, _dev: &Device, _combined: u32) -> Result {
        Err(eopnotsupp())
    }

    /// `ethtool -g`.
    fn get_ringparam(&self, _dev: &Device) -> RingParam {
        RingParam::default()
    }

    /// `ethtool -G rx R tx T`.
    fn set_ringparam(&self, _dev: &Device, _rx: u32, _tx: u32) -> Result {
        Err(eopnotsupp())
    }

    /// `ethtool -c`.
    fn get_coalesce(&self, _dev: &Device) -> Result<Coalesce> {
        Err(eopnotsupp())
    }

    /// `ethtool -C`.
    fn set_coalesce(&self, _dev: &Device, _c: Coalesce) -> Result {
        Err(eopnotsupp())
    }

    /// Number of `ethtool -S` counters.
    fn stats_count(&self, _dev: &Device) -> u32 {
        0
    }

    /// Names of the `ethtool -S` counters, `stats_count` of them.
    fn stats_strings(&self, _dev: &Device, _out: &mut StringSet<'_>) {}

    /// Values of the `ethtool -S` counters.
    fn stats_values(&self, _dev: &Device, _out: &mut [u64]) {}

    /// RSS key size in bytes (0: none).
    fn rxfh_key_size(&self, _dev: &Device) -> u32 {
        0
    }

    /// RSS indirection table size (0: none).
    fn rxfh_indir_size(&self, _dev: &Device) -> u32 {
        0
    }

    /// Number of RX rings RSS spreads over (`ETHTOOL_GRXRINGS`, which
    /// `ethtool -X ... equal N|weight ...` needs); `None`: not supported.
    fn rx_ring_count(&self, _dev: &Device) -> Option<u32> {
        None
    }

    /// `ethtool -x`: fills the table and key.
    fn get_rxfh(
        &self,
        _dev: &Device,
        _indir: Option<&mut [u32]>,
        _key: Option<&mut [u8]>,
    ) -> Result {
        Err(eopnotsupp())
    }

    /// `ethtool -X`: new table and/or key (Toeplitz only).
    fn set_rxfh(&self, _dev: &Device, _indir: Option<&[u32]>, _key: Option<&[u8]>) -> Result {
        Err(eopnotsupp())
    }
}

/// A network device owned by a driver, with its data `T`.
///
/// # Invariants
///
/// `dev` was allocated with `alloc_etherdev_mqs`, its private area holds
/// the address of `*data`, and its ops are `Adapter::<T>`'s; it is
/// registered iff `registered`. Drop unregisters (if registered), frees it
/// and only then drops `data`.
pub struct Registration<T: DeviceOperations> {
    dev: NonNull<bindings::net_device>,
    registered: bool,
    data: Arc<T>,
}

// SAFETY: The net device may be unregistered and freed from any thread;
// `T` is `Send + Sync`.
unsafe impl<T: DeviceOperations> Send for Registration<T> {}
// SAFETY: `&self` only hands out `&Device`, which is `Sync`.
unsafe impl<T: DeviceOperations> Sync for Registration<T> {}

/// Static properties of a new device.
pub struct Config<'a> {
    /// Number of TX and RX queues to allocate (the maximum).
    pub queues: u32,
    /// Largest MTU.
    pub max_mtu: u32,
    /// Permanent MAC address.
    pub mac: &'a [u8; 6],
    /// Offer TX checksum offload (IPv4/IPv6, TCP/UDP).
    pub tx_csum: bool,
    /// Offer RX checksum offload.
    pub rx_csum: bool,
    /// Offer TCP segmentation offload over IPv4 (needs `tx_csum`).
    pub tso4: bool,
    /// Offer TCP segmentation offload over IPv6 (needs `tx_csum`).
    pub tso6: bool,
}

impl<T: DeviceOperations> Registration<T> {
    /// Allocates an Ethernet device under `parent` (not yet registered).
    pub fn new(parent: &device::Device, cfg: &Config<'_>, data: Arc<T>) -> Result<Self> {
        if cfg.queues == 0 {
            return Err(EINVAL);
        }
        // SAFETY: Plain allocation; the private area holds one pointer.
        let raw = unsafe {
            bindings::alloc_etherdev_mqs(
                core::mem::size_of::<*const T>() as i32,
                cfg.queues,
                cfg.queues,
            )
        };
        let dev = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `dev` is new and ours; the private area is big enough for
        // the pointer; the ops tables are 'static.
        unsafe {
            bindings::rb_netdev_priv(raw)
                .cast::<*const T>()
                .write(core::ptr::from_ref::<T>(&data));
            bindings::rb_netdev_setup(
                raw,
                parent.as_raw(),
                &Adapter::<T>::NETDEV_OPS,
                &Adapter::<T>::ETHTOOL_OPS,
                cfg.max_mtu,
                cfg.tx_csum,
                cfg.rx_csum,
                cfg.tso4,
                cfg.tso6,
            );
            bindings::rb_netdev_set_mac(raw, cfg.mac.as_ptr());
            if T::QUEUE_STATS {
                bindings::rb_netdev_set_stat_ops(raw, &Adapter::<T>::STAT_OPS);
            }
        }
        // INVARIANT: set up above, not registered.
        Ok(Self {
            dev,
            registered: false,
            data,
        })
    }

    /// The device.
    pub fn device(&self) -> &Device {
        // SAFETY: Valid until drop by the type invariant.
        unsafe { Device::from_raw(self.dev.as_ptr()) }
    }

    /// The driver data.
    pub fn data(&self) -> &Arc<T> {
        &self.data
    }

    /// Registers the device; callbacks may run from now on.
    pub fn register(&mut self) -> Result {
        if self.registered {
            return Err(EBUSY);
        }
        // SAFETY: Allocated and set up, not registered.
        kernel::error::to_result(unsafe { bindings::register_netdev(self.dev.as_ptr()) })?;
        self.registered = true;
        Ok(())
    }
}

impl<T: DeviceOperations> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant; after `unregister_netdev` no
        // callback runs, so `data` may go after `free_netdev`.
        unsafe {
            if self.registered {
                bindings::unregister_netdev(self.dev.as_ptr());
            }
            bindings::free_netdev(self.dev.as_ptr());
        }
    }
}

struct Adapter<T: DeviceOperations>(PhantomData<T>);

impl<T: DeviceOperations> Adapter<T> {
    /// # Safety
    ///
    /// `dev` must be a device of a live `Registration<T>`.
    unsafe fn get<'a>(dev: *mut bindings::net_device) -> (&'a T, &'a Device) {
        // SAFETY: The private area holds the data pointer, alive while the
        // registration is (type invariant of `Registration`).
        unsafe {
            let data = &**bindings::rb_netdev_priv(dev).cast::<*const T>();
            (data, Device::from_raw(dev))
        }
    }

    const NETDEV_OPS: bindings::net_device_ops = bindings::net_device_ops {
        ndo_open: Some(Self::open_cb),
        ndo_stop: Some(Self::stop_cb),
        ndo_start_xmit: Some(Self::xmit_cb),
        ndo_get_stats64: Some(Self::stats64_cb),
        ndo_change_mtu: Some(Self::change_mtu_cb),
        ndo_tx_timeout: Some(Self::tx_timeout_cb),
        ndo_validate_addr: Some(bindings::eth_validate_addr),
        ndo_set_mac_address: Some(bindings::eth_mac_addr),
        // SAFETY: All-zero is a valid `net_device_ops` (no callbacks).
        ..unsafe { core::mem::zeroed() }
    };

    const ETHTOOL_OPS: bindings::ethtool_ops = bindings::ethtool_ops {
        supported_coalesce_params: 0x211,
        get_drvinfo: Some(Self::drvinfo_cb),
        get_link: Some(bindings::ethtool_op_get_link),
        get_channels: Some(Self::get_channels_cb),
        set_channels: Some(Self::set_channels_cb),
        get_ringparam: Some(Self::get_ringparam_cb),
        set_ringparam: Some(Self::set_ringparam_cb),
        get_coalesce: Some(Self::get_coalesce_cb),
        set_coalesce: Some(Self::set_coalesce_cb),
        get_sset_count: Some(Self::sset_count_cb),
        get_strings: Some(Self::strings_cb),
        get_ethtool_stats: Some(Self::stats_cb),
        get_rxfh_key_size: Some(Self::key_size_cb),
        get_rxfh_indir_size: Some(Self::indir_size_cb),
        get_rxfh: Some(Self::get_rxfh_cb),
        set_rxfh: Some(Self::set_rxfh_cb),
        get_rxnfc: Some(Self::get_rxnfc_cb),
        // SAFETY: All-zero is a valid `ethtool_ops` (no callbacks).
        ..unsafe { core::mem::zeroed() }
    };

    const STAT_OPS: bindings::netdev_stat_ops = bindings::netdev_stat_ops {
        get_queue_stats_rx: Some(Self::qstats_rx_cb),
        get_queue_stats_tx: Some(Self::qstats_tx_cb),
        get_base_stats: Some(Self::qstats_base_cb),
    };

    extern "C" fn qstats_rx_cb(
        dev: *mut bindings::net_device,
        idx: i32,
        out: *mut bindings::netdev_queue_stats_rx,
    ) {
        // SAFETY: Called by the core for a registered device.
        let (t, d) = unsafe { Self::get(dev) };
        // Only live queues have statistics to ask the driver for; anything
        // else stays "not set" (the core then reports nothing for it).
        let Ok(q) = u32::try_from(idx) else { return };
        if q >= d.real_num_rx_queues() {
            return;
        }
        let v = t.queue_stats_rx(d, q);
        // SAFETY: The core passes a valid structure (pre-filled with its
        // "not set" marker) that nothing else touches meanwhile.
        if let Some(out) = unsafe { out.as_mut() } {
            v.write_to(out);
        }
    }

    extern "C" fn qstats_tx_cb(
        dev: *mut bindings::net_device,
        idx: i32,
        out: *mut bindings::netdev_queue_stats_tx,
    ) {
        // SAFETY: Called by the core for a registered device.
        let (t, d) = unsafe { Self::get(dev) };
        let Ok(q) = u32::try_from(idx) else { return };
        if q >= d.real_num_tx_queues() {
            return;
        }
        let v = t.queue_stats_tx(d, q);
        // SAFETY: As in `qstats_rx_cb`.
        if let Some(out) = unsafe { out.as_mut() } {
            v.write_to(out);
        }
    }

    extern "C" fn qstats_base_cb(
        dev: *mut bindings::net_device,
        rx: *mut bindings::netdev_queue_stats_rx,
        tx: *mut bindings::netdev_queue_stats_tx,
    ) {
        // SAFETY: Called by the core for a registered device.
        let (t, d) = unsafe { Self::get(dev) };
        let (vr, vt) = t.queue_stats_base(d, d.real_num_rx_queues(), d.real_num_tx_queues());
        // SAFETY: As in `qstats_rx_cb`; `rx` and `tx` are distinct.
        if let Some(rx) = unsafe { rx.as_mut() } {
            vr.write_to(rx);
        }
        // SAFETY: As above.
        if let Some(tx) = unsafe { tx.as_mut() } {
            vt.write_to(tx);
        }
    }

    extern "C" fn open_cb(dev: *mut bindings::net_device) -> i32 {
        // SAFETY: Called by the core for a registered device.
        let (t, d) = unsafe { Self::get(dev) };
        from_result(|| t.open(d).map(|()| 0))
    }

    extern "C" fn stop_cb(dev: *mut bindings::net_device) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        from_result(|| t.stop(d).map(|()| 0))
    }

    extern "C" fn xmit_cb(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
    ) -> bindings::netdev_tx_t {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        // SAFETY: The stack hands the skb over to the driver.
        if let Some(skb) = unsafe { SkBuff::from_raw(skb) } {
            match t.start_xmit(d, skb) {
                TxCode::Ok => {}
            }
        }
        bindings::netdev_tx_NETDEV_TX_OK
    }

    extern "C" fn stats64_cb(
        dev: *mut bindings::net_device,
        out: *mut bindings::rtnl_link_stats64,
    ) {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        let mut s = Stats64::default();
        t.get_stats64(d, &mut s);
        // SAFETY: The core passes a valid, zeroed structure.
        let out = unsafe { &mut *out };
        out.rx_packets = s.rx_packets;
        out.rx_bytes = s.rx_bytes;
        out.tx_packets = s.tx_packets;
        out.tx_bytes = s.tx_bytes;
        out.rx_dropped = s.rx_dropped;
        out.tx_dropped = s.tx_dropped;
        out.rx_errors = s.rx_errors;
        out.tx_errors = s.tx_errors;
    }

    extern "C" fn change_mtu_cb(dev: *mut bindings::net_device, mtu: i32) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        from_result(|| {
            let mtu = u32::try_from(mtu).map_err(|_| EINVAL)?;
            t.change_mtu(d, mtu).map(|()| 0)
        })
    }

    extern "C" fn tx_timeout_cb(dev: *mut bindings::net_device, txq: u32) {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        t.tx_timeout(d, txq);
    }

    extern "C" fn drvinfo_cb(dev: *mut bindings::net_device, info: *mut bindings::ethtool_drvinfo) {
        // SAFETY: Valid device and output structure; the name is 'static.
        unsafe { bindings::rb_ethtool_drvinfo(dev, info, T::DRIVER_NAME.as_char_ptr()) };
    }

    extern "C" fn get_channels_cb(
        dev: *mut bindings::net_device,
        ch: *mut bindings::ethtool_channels,
    ) {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        let c = t.get_channels(d);
        // SAFETY: The core passes a valid structure.
        let ch = unsafe { &mut *ch };
        ch.max_combined = c.max_combined;
        ch.combined_count = c.combined;
    }

    extern "C" fn set_channels_cb(
        dev: *mut bindings::net_device,
        ch: *mut bindings::ethtool_channels,
    ) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        // SAFETY: The core passes a valid structure.
        let ch = unsafe { &*ch };
        from_result(|| {
            if ch.rx_count != 0 || ch.tx_count != 0 || ch.other_count != 0 {
                return Err(EINVAL);
            }
            t.set_channels(d, ch.combined_count).map(|()| 0)
        })
    }

    extern "C" fn get_ringparam_cb(
        dev: *mut bindings::net_device,
        ring: *mut bindings::ethtool_ringparam,
        _k: *mut bindings::kernel_ethtool_ringparam,
        _ext: *mut bindings::netlink_ext_ack,
    ) {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        let r = t.get_ringparam(d);
        // SAFETY: The core passes a valid structure.
        let ring = unsafe { &mut *ring };
        ring.rx_max_pending = r.rx_max;
        ring.tx_max_pending = r.tx_max;
        ring.rx_pending = r.rx;
        ring.tx_pending = r.tx;
    }

    extern "C" fn set_ringparam_cb(
        dev: *mut bindings::net_device,
        ring: *mut bindings::ethtool_ringparam,
        _k: *mut bindings::kernel_ethtool_ringparam,
        _ext: *mut bindings::netlink_ext_ack,
    ) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        // SAFETY: The core passes a valid structure.
        let ring = unsafe { &*ring };
        from_result(|| {
            t.set_ringparam(d, ring.rx_pending, ring.tx_pending)
                .map(|()| 0)
        })
    }

    extern "C" fn get_coalesce_cb(
        dev: *mut bindings::net_device,
        c: *mut bindings::ethtool_coalesce,
        _k: *mut bindings::kernel_ethtool_coalesce,
        _ext: *mut bindings::netlink_ext_ack,
    ) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        from_result(|| {
            let v = t.get_coalesce(d)?;
            // SAFETY: The core passes a valid structure.
            let c = unsafe { &mut *c };
            c.rx_coalesce_usecs = v.rx_usecs;
            c.tx_coalesce_usecs = v.tx_usecs;
            c.use_adaptive_rx_coalesce = u32::from(v.adaptive_rx);
            Ok(0)
        })
    }

    extern "C" fn set_coalesce_cb(
        dev: *mut bindings::net_device,
        c: *mut bindings::ethtool_coalesce,
        _k: *mut bindings::kernel_ethtool_coalesce,
        _ext: *mut bindings::netlink_ext_ack,
    ) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        // SAFETY: The core passes a valid structure.
        let c = unsafe { &*c };
        let v = Coalesce {
            rx_usecs: c.rx_coalesce_usecs,
            tx_usecs: c.tx_coalesce_usecs,
            adaptive_rx: c.use_adaptive_rx_coalesce != 0,
        };
        from_result(|| t.set_coalesce(d, v).map(|()| 0))
    }

    extern "C" fn sset_count_cb(dev: *mut bindings::net_device, sset: i32) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        if sset != 1 {
            return eopnotsupp().to_errno();
        }
        t.stats_count(d).min(i32::MAX as u32) as i32
    }

    extern "C" fn strings_cb(dev: *mut bindings::net_device, sset: u32, buf: *mut u8) {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        if sset != 1 {
            return;
        }
        let n = t.stats_count(d) as usize;
        // SAFETY: The core allocated `get_sset_count` names of 32 bytes.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf, n * 32) };
        let mut set = StringSet { buf, pos: 0 };
        t.stats_strings(d, &mut set);
    }

    extern "C" fn stats_cb(
        dev: *mut bindings::net_device,
        _s: *mut bindings::ethtool_stats,
        data: *mut u64,
    ) {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        let n = t.stats_count(d) as usize;
        // SAFETY: The core allocated `get_sset_count` values.
        let out = unsafe { core::slice::from_raw_parts_mut(data, n) };
        out.fill(0);
        t.stats_values(d, out);
    }

    extern "C" fn get_rxnfc_cb(
        dev: *mut bindings::net_device,
        info: *mut bindings::ethtool_rxnfc,
        _rule_locs: *mut u32,
    ) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        // SAFETY: The core passes a valid, exclusively owned structure.
        let info = unsafe { &mut *info };
        if info.cmd != bindings::ETHTOOL_GRXRINGS {
            return eopnotsupp().to_errno();
        }
        match t.rx_ring_count(d) {
            Some(n) => {
                info.data = u64::from(n);
                0
            }
            None => eopnotsupp().to_errno(),
        }
    }

    extern "C" fn key_size_cb(dev: *mut bindings::net_device) -> u32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        t.rxfh_key_size(d)
    }

    extern "C" fn indir_size_cb(dev: *mut bindings::net_device) -> u32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        t.rxfh_indir_size(d)
    }

    extern "C" fn get_rxfh_cb(
        dev: *mut bindings::net_device,
        p: *mut bindings::ethtool_rxfh_param,
    ) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        // SAFETY: The core passes a valid structure whose arrays, when not
        // NULL, hold the sizes our callbacks reported.
        let p = unsafe { &mut *p };
        p.hfunc = 1;
        let indir = if p.indir.is_null() {
            None
        } else {
            // SAFETY: See above.
            Some(unsafe { core::slice::from_raw_parts_mut(p.indir, t.rxfh_indir_size(d) as usize) })
        };
        let key = if p.key.is_null() {
            None
        } else {
            // SAFETY: See above.
            Some(unsafe { core::slice::from_raw_parts_mut(p.key, t.rxfh_key_size(d) as usize) })
        };
        from_result(|| t.get_rxfh(d, indir, key).map(|()| 0))
    }

    extern "C" fn set_rxfh_cb(
        dev: *mut bindings::net_device,
        p: *mut bindings::ethtool_rxfh_param,
        _ext: *mut bindings::netlink_ext_ack,
    ) -> i32 {
        // SAFETY: As above.
        let (t, d) = unsafe { Self::get(dev) };
        // SAFETY: As in `get_rxfh_cb`.
        let p = unsafe { &*p };
        if p.hfunc != 0 && p.hfunc != 1 {
            return eopnotsupp().to_errno();
        }
        let indir = if p.indir.is_null() {
            None
        } else {
            // SAFETY: See `get_rxfh_cb`.
            Some(unsafe { core::slice::from_raw_parts(p.indir, t.rxfh_indir_size(d) as usize) })
        };
        let key = if p.key.is_null() {
            None
        } else {
            // SAFETY: See `get_rxfh_cb`.
            Some(unsafe { core::slice::from_raw_parts(p.key, t.rxfh_key_size(d) as usize) })
        };
        from_result(|| t.set_rxfh(d, indir, key).map(|()| 0))
    }
}
