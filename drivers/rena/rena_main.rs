// SPDX-License-Identifier: GPL-2.0

//! rena: the Amazon ENA network driver in Rust.
//!
//! Binds the ENA PCI functions, resets the device, brings up the admin
//! queue (polled until MSI-X is up, interrupt driven after), the AENQ (link
//! changes drive the carrier, keep-alives feed a watchdog that resets the
//! device when they stop), negotiates features and registers an Ethernet
//! device. `open` creates one TX/RX queue pair per CPU up to the device
//! limit, each with its own MSI-X vector and NAPI instance; vector 0 is the
//! management vector (admin completions and AENQ).
//!
//! Every value read from the device is checked before use: a bad req_id,
//! length, chain or phase is logged (rate-limited), counted and answered
//! with a device reset.
//!
//! Both this driver and the C `ena` match the ENA IDs; choose per device
//! with `driver_override` (see selftests/ena/ena-lib).

#![recursion_limit = "256"]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    c_str, new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
    types::ARef,
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

#[path = "../../rust-bindings/rust_bindings.rs"]
pub mod rust_bindings;

mod ena;

use ena::{aenq, feat, op, reason, reg, Cmd, Resp, ADMIN_DEPTH, ENTRY_WORDS};
use rust_bindings::{
    delay::{msleep, num_online_cpus, udelay},
    device::Core,
    dim::Dim,
    dma::{CoherentAllocation, DmaMask},
    error::eopnotsupp,
    io::{dma_rmb, dma_wmb, Io, IoKnownSize},
    irq,
    napi::{Napi, NapiPoller},
    net::{
        self, Channels, Coalesce, QueueStatsRx, QueueStatsTx, RingParam, Stats64, StringSet, TxCode,
    },
    pci,
    skb::{MappedSkb, RxPage, SkBuff},
    sync::{Completion, TryLock},
    timer::{Timer, TimerHandler},
    u64_stats::U64Stats,
    workqueue as workqueue_ext,
};

module_param_u32!(
    TEST_SERVICE_DELAY_MS,
    "test_service_delay_ms",
    default: 0,
    min: 0,
    max: 10_000,
    perm: 0o600,
    desc: "Test hook: the service work sleeps this long (ms) before it looks at the device; 0: off"
);

module_param_u32!(
    TEST_DOWN_WINDOW_MS,
    "test_down_window_ms",
    default: 0,
    min: 0,
    max: 10_000,
    perm: 0o600,
    desc: "Test hook: taking the data path down, wait this long (ms) with the queues stopped and NAPI running, then poll every pair; 0: off"
);

type EnaBar = pci::Bar<{ reg::SIZE }>;

/// A MAC address printed the usual way (`06:ed:a0:00:00:01`).
struct MacAddr([u8; 6]);

impl core::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// How long a read-less register read may take (the C driver's default
/// `ENA_REG_READ_TIMEOUT`, 200 ms).
const READLESS_TIMEOUT_US: u32 = 200_000;

/// The device registers. Writes go to BAR0; reads are plain MMIO loads, or,
/// on devices whose PCI revision has bit 0 clear, "read-less": the driver
/// writes the register offset and a sequence number to `MMIO_REG_READ` and
/// the device DMAs `{seq, offset, value}` into a response buffer.
#[pin_data]
struct Regs {
    bar: EnaBar,
    /// Response buffer of the read-less protocol (two words), if used.
    readless: Option<CoherentAllocation<u32>>,
    /// Sequence number of the last read-less read; serialises them.
    #[pin]
    seq: SpinLock<u16>,
}

impl core::ops::Deref for Regs {
    type Target = EnaBar;

    fn deref(&self) -> &EnaBar {
        &self.bar
    }
}

impl Regs {
    fn new(pdev: &pci::Device<Core>, bar: EnaBar) -> Result<Arc<Self>> {
        // Revision bit 0 set: plain reads (the C driver's
        // `ENA_MMIO_DISABLE_REG_READ`).
        let readless = if pdev.revision_id() & 1 == 0 {
            Some(CoherentAllocation::alloc_coherent(
                bound(pdev),
                2,
                GFP_KERNEL,
            )?)
        } else {
            None
        };
        let regs = Arc::pin_init(
            pin_init!(Self { bar, readless, seq <- new_spinlock!(0) }),
            GFP_KERNEL,
        )?;
        regs.set_response_address();
        Ok(regs)
    }

    /// Tells the device where read-less responses go (0: nowhere). The
    /// device forgets it on every reset.
    fn set_response_address(&self) {
        let addr = self.readless.as_ref().map_or(0, |r| r.dma_handle());
        self.bar.write32(addr as u32, reg::MMIO_RESP_LO);
        self.bar.write32((addr >> 32) as u32, reg::MMIO_RESP_HI);
    }

    /// Reads a register; `ETIMEDOUT` when a read-less response never came
    /// or named another register.
    fn read32(&self, offset: usize) -> Result<u32> {
        let Some(resp) = self.readless.as_ref() else {
            return self.bar.try_read32(offset);
        };
        let mut seq = self.seq.lock();
        *seq = seq.wrapping_add(1);
        let want = u32::from(*seq);
        // A stale response must not look like this one.
        resp.write(0, want ^ 0xffff)?;
        dma_wmb();
        self.bar
            .try_write32(((offset as u32) << 16) | want, reg::MMIO_REG_READ)?;
        for _ in 0..READLESS_TIMEOUT_US {
            let w0 = resp.read(0)?;
            if w0 & 0xffff == want {
                dma_rmb();
                let value = resp.read(1)?;
                if (w0 >> 16) as usize != offset {
                    return Err(rust_bindings::error::etimedout());
                }
                return Ok(value);
            }
            udelay(1);
        }
        Err(rust_bindings::error::etimedout())
    }
}

fn normal<'a>(pdev: &'a pci::Device<Core>) -> &'a pci::Device {
    pdev
}

/// The generic device of a PCI device being probed.
fn bound(pdev: &pci::Device<Core>) -> &rust_bindings::device::Device<rust_bindings::device::Bound> {
    let core: &rust_bindings::device::Device<Core> = pdev.as_ref();
    core
}

const ADMIN_TIMEOUT_MS: u32 = 3000;
const KEEP_ALIVE_TIMEOUT_MS: u64 = 6000;
/// A TX packet not completed after this long is "missing" (the C driver's
/// default `missing_tx_completion_to`, 5 s; no HW hints from the device).
const MISSING_TX_TIMEOUT_MS: u64 = 5000;
/// More missing TX completions than this on one queue reset the device
/// (C: `MAX_NUM_OF_TIMEOUTED_PACKETS`).
const MISSING_TX_THRESHOLD: u32 = 128;
const DEFAULT_RING: u32 = 1024;
const MIN_RING: u32 = 256;
const RSS_TABLE_SIZE: usize = 128;
const RSS_KEY_SIZE: usize = 40;
const NAPI_WEIGHT: i32 = 64;
/// Frames up to this length are copied into a small skb and their buffer
/// reposted (the C driver's default `rx_copybreak`, 256 - NET_IP_ALIGN).
const RX_COPYBREAK: u32 = 254;
const TX_WAKE_THRESHOLD: u32 = 2 * (rust_bindings::skb::MAX_SKB_FRAGS as u32 + 2);

fn ratelimit(counter: &AtomicU32) -> bool {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    n < 10 || n % 1000 == 0
}

fn jiffies_ms() -> u64 {
    rust_bindings::timer::now_ms()
}

/// A stack of free request ids.
struct IdStack {
    ids: KVec<u16>,
    n: usize,
}

impl IdStack {
    fn new(depth: u32) -> Result<Self> {
        let mut ids = KVec::with_capacity(depth as usize, GFP_KERNEL)?;
        for id in 0..depth {
            ids.push((depth - 1 - id) as u16, GFP_KERNEL)?;
        }
        Ok(Self {
            ids,
            n: depth as usize,
        })
    }

    fn pop(&mut self) -> Option<u16> {
        let n = self.n.checked_sub(1)?;
        let id = *self.ids.get(n)?;
        self.n = n;
        Some(id)
    }

    fn push(&mut self, id: u16) {
        if let Some(slot) = self.ids.as_mut_slice().get_mut(self.n) {
            *slot = id;
            self.n += 1;
        }
    }

    fn len(&self) -> usize {
        self.n
    }
}

// ---------------------------------------------------------------------------
// Admin queue

/// Admin completion ring state, drained from the management IRQ or by the
/// waiter (polling mode, or a lost interrupt).
struct AcqState {
    head: u16,
    phase: u32,
    /// Response of the command being waited for, with its id.
    resp: Option<(u16, Resp)>,
}

#[pin_data]
struct Admin {
    sq: CoherentAllocation<u32>,
    cq: CoherentAllocation<u32>,
    /// Serialises commands; holds the SQ tail (free-running).
    #[pin]
    sq_tail: Mutex<u16>,
    acq: TryLock<AcqState>,
    #[pin]
    done: Completion,
    waiting: AtomicU32,
    polling: AtomicBool,
    /// Cleared when a command timed out: the device needs a reset.
    running: AtomicBool,
    submitted: AtomicU64,
    completed: AtomicU64,
    stray: AtomicU32,
}

const NO_CMD: u32 = u32::MAX;

impl Admin {
    fn new(pdev: &pci::Device<Core>) -> Result<Arc<Self>> {
        let pdev = bound(pdev);
        let sq = CoherentAllocation::alloc_coherent(pdev, ADMIN_DEPTH * ENTRY_WORDS, GFP_KERNEL)?;
        let cq = CoherentAllocation::alloc_coherent(pdev, ADMIN_DEPTH * ENTRY_WORDS, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                sq,
                cq,
                sq_tail <- new_mutex!(0),
                acq: TryLock::new(AcqState { head: 0, phase: 1, resp: None }),
                done <- Completion::new(),
                waiting: AtomicU32::new(NO_CMD),
                polling: AtomicBool::new(true),
                running: AtomicBool::new(true),
                submitted: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                stray: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Drains new admin completions; returns whether the awaited one came.
    fn drain(&self) -> bool {
        let Some(mut st) = self.acq.try_lock() else {
            return false;
        };
        let mut found = false;
        for _ in 0..ADMIN_DEPTH {
            let slot = usize::from(st.head) % ADMIN_DEPTH;
            let Ok(w3) = self.cq.read(slot * ENTRY_WORDS) else {
                break;
            };
            if (w3 >> 24) & 1 != st.phase {
                break;
            }
            dma_rmb();
            let mut r = Resp([0; ENTRY_WORDS]);
            if self.cq.read_slice(slot * ENTRY_WORDS, &mut r.0).is_err() {
                break;
            }
            st.head = st.head.wrapping_add(1);
            if usize::from(st.head) % ADMIN_DEPTH == 0 {
                st.phase ^= 1;
            }
            let id = r.u16(0) & 0xfff;
            if u32::from(id) == self.waiting.load(Ordering::Acquire) {
                st.resp = Some((id, r));
                self.waiting.store(NO_CMD, Ordering::Release);
                self.completed.fetch_add(1, Ordering::Relaxed);
                found = true;
            } else {
                self.stray.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(st);
        if found {
            self.done.complete_all();
        }
        found
    }

    /// Runs one command; `Ok(Err(status))` for a device error status.
    fn exec(
        &self,
        pdev: &pci::Device,
        bar: &Regs,
        cmd: Cmd,
    ) -> Result<core::result::Result<Resp, u8>> {
        if !self.running.load(Ordering::Acquire) {
            return Err(ENODEV);
        }
        let mut tail = self.sq_tail.lock();
        let id = *tail % ADMIN_DEPTH as u16;
        let phase = u8::from((*tail / ADMIN_DEPTH as u16) % 2 == 0);
        let cmd = cmd.u16(0, id).u8(3, cmd.0[3] | phase);
        self.done.reinit();
        if let Some(mut st) = self.acq.try_lock() {
            st.resp = None;
        }
        self.waiting.store(u32::from(id), Ordering::Release);
        self.sq
            .write_slice(usize::from(id) * ENTRY_WORDS, &cmd.words())?;
        dma_wmb();
        *tail = tail.wrapping_add(1);
        bar.write32(u32::from(*tail), reg::AQ_DB);
        self.submitted.fetch_add(1, Ordering::Relaxed);
        let mut waited = 0u32;
        loop {
            if self.polling.load(Ordering::Relaxed) {
                msleep(1);
                waited += 1;
                self.drain();
            } else {
                // Only the management interrupt drains in this mode: a
                // completion without its interrupt is a device fault.
                let _ = self.done.wait_for_completion_timeout(ADMIN_TIMEOUT_MS);
                waited = ADMIN_TIMEOUT_MS;
            }
            if self.waiting.load(Ordering::Acquire) == NO_CMD {
                break;
            }
            if waited >= ADMIN_TIMEOUT_MS {
                // Like the C driver: whether the completion is there
                // without its interrupt or absent, the command failed and
                // the admin queue needs a device reset.
                let lost_irq = self.drain();
                self.waiting.store(NO_CMD, Ordering::Release);
                self.running.store(false, Ordering::Release);
                if lost_irq {
                    dev_err!(
                        pdev,
                        "admin command {} completed without an MSI-X interrupt\n",
                        cmd.opcode()
                    );
                } else {
                    dev_err!(
                        pdev,
                        "no completion for admin command {} in {ADMIN_TIMEOUT_MS} ms\n",
                        cmd.opcode()
                    );
                }
                return Err(rust_bindings::error::etimedout());
            }
        }
        // Take the response (the draining context stored it).
        let resp = loop {
            if let Some(mut st) = self.acq.try_lock() {
                break st.resp.take();
            }
        };
        let Some((_, r)) = resp else {
            return Err(EIO);
        };
        let status = r.u8(2);
        if status != 0 {
            return Ok(Err(status));
        }
        Ok(Ok(r))
    }

    fn exec_ok(&self, pdev: &pci::Device, bar: &Regs, what: &str, cmd: Cmd) -> Result<Resp> {
        match self.exec(pdev, bar, cmd) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(status)) => {
                if status == ena::STATUS_UNSUPPORTED {
                    return Err(eopnotsupp());
                }
                dev_err!(
                    pdev,
                    "{what} (opcode {}) failed: status {status}\n",
                    cmd.opcode()
                );
                Err(EIO)
            }
            Err(e) => {
                dev_err!(
                    pdev,
                    "{what} (opcode {}) failed: error {}\n",
                    cmd.opcode(),
                    e.to_errno()
                );
                Err(e)
            }
        }
    }
}

/// AENQ ring state.
struct AenqState {
    head: u16,
    phase: u32,
}

// ---------------------------------------------------------------------------
// IO queues

struct TxSlot {
    skb: MappedSkb,
    descs: u32,
    bytes: u32,
    /// When the packet was handed to the device (for the missing
    /// completion scan).
    sent_ms: u64,
    /// The scan already logged this packet as late.
    reported: bool,
}

/// Ring memory of one pair, allocated at probe for the largest rings and
/// reused by every `open` and reset.
struct RingMem {
    tx_sq: CoherentAllocation<u32>,
    tx_cq: CoherentAllocation<u32>,
    rx_sq: CoherentAllocation<u32>,
    rx_cq: CoherentAllocation<u32>,
}

impl RingMem {
    fn new(pdev: &pci::Device<Core>, tx: u32, rx: u32) -> Result<Arc<Self>> {
        let pdev = bound(pdev);
        let (tx, rx) = (tx as usize, rx as usize);
        Ok(Arc::new(
            Self {
                tx_sq: CoherentAllocation::alloc_coherent(pdev, tx * 4, GFP_KERNEL)?,
                tx_cq: CoherentAllocation::alloc_coherent(pdev, tx * 2, GFP_KERNEL)?,
                rx_sq: CoherentAllocation::alloc_coherent(pdev, rx * 4, GFP_KERNEL)?,
                rx_cq: CoherentAllocation::alloc_coherent(pdev, rx * 4, GFP_KERNEL)?,
            },
            GFP_KERNEL,
        )?)
    }
}

fn zero(mem: &CoherentAllocation<u32>, words: usize) {
    let z = [0u32; 64];
    let mut off = 0;
    while off < words {
        let n = (words - off).min(64);
        let _ = mem.write_slice(off, &z[..n]);
        off += n;
    }
}

struct TxRing {
    depth: u32,
    tail: u16,
    cq_head: u16,
    /// SQ descriptors not yet completed.
    used: u32,
    slots: KVec<Option<TxSlot>>,
    free_ids: IdStack,
    last_meta: Option<[u32; 2]>,
}

struct RxRing {
    depth: u32,
    tail: u16,
    cq_head: u16,
    bufs: KVec<Option<RxPage>>,
    free_ids: IdStack,
    /// Mapped buffers whose frame was copied out (copybreak), posted again
    /// before any new page is allocated.
    spare: SpareBufs,
}

/// A stack of mapped RX buffers waiting to be posted again.
struct SpareBufs {
    slots: KVec<Option<RxPage>>,
    n: usize,
}

impl SpareBufs {
    fn new(depth: u32) -> Result<Self> {
        let mut slots = KVec::with_capacity(depth as usize, GFP_KERNEL)?;
        for _ in 0..depth {
            slots.push(None, GFP_KERNEL)?;
        }
        Ok(Self { slots, n: 0 })
    }

    fn pop(&mut self) -> Option<RxPage> {
        let n = self.n.checked_sub(1)?;
        self.n = n;
        self.slots.get_mut(n)?.take()
    }

    /// Keeps `page`; with no room left it is freed.
    fn push(&mut self, page: RxPage) {
        if let Some(slot) = self.slots.get_mut(self.n) {
            *slot = Some(page);
            self.n += 1;
        }
    }
}

/// Indices of a queue's TX counters; written with its TX ring lock held.
mod txs {
    pub(crate) const PACKETS: usize = 0;
    pub(crate) const BYTES: usize = 1;
    pub(crate) const STOPS: usize = 2;
    pub(crate) const WAKES: usize = 3;
    pub(crate) const DMA_ERR: usize = 4;
    pub(crate) const BAD_REQ_ID: usize = 5;
    pub(crate) const DROPPED: usize = 6;
    pub(crate) const DOORBELLS: usize = 7;
    pub(crate) const MISSED: usize = 8;
    pub(crate) const N: usize = 9;
}

/// Indices of a queue's RX counters; written by its NAPI poll only (or
/// before its NAPI is enabled).
mod rxs {
    pub(crate) const PACKETS: usize = 0;
    pub(crate) const BYTES: usize = 1;
    pub(crate) const CSUM_GOOD: usize = 2;
    pub(crate) const CSUM_BAD: usize = 3;
    pub(crate) const BAD_REQ_ID: usize = 4;
    pub(crate) const BAD_DESC: usize = 5;
    pub(crate) const ALLOC_FAIL: usize = 6;
    pub(crate) const NAPI_POLLS: usize = 7;
    pub(crate) const UNMASKS: usize = 8;
    pub(crate) const N: usize = 9;
}

/// Per-queue counters under u64_stats, as the C drivers keep them: one
/// writer per group (see `txs`, `rxs`), lock-free readers, no sleeping.
#[pin_data]
struct PairStats {
    #[pin]
    tx: U64Stats<{ txs::N }>,
    #[pin]
    rx: U64Stats<{ rxs::N }>,
}

/// `ethtool -S` names: the TX counters, then the RX ones, in index order.
const STAT_NAMES: [&str; txs::N + rxs::N] = [
    "tx_cnt",
    "tx_bytes",
    "tx_queue_stop",
    "tx_queue_wakeup",
    "tx_dma_mapping_err",
    "tx_bad_req_id",
    "tx_dropped",
    "tx_doorbells",
    "tx_missed_tx",
    "rx_cnt",
    "rx_bytes",
    "rx_csum_good",
    "rx_csum_bad",
    "rx_bad_req_id",
    "rx_bad_desc_num",
    "rx_page_alloc_fail",
    "napi_polls",
    "unmask_interrupt",
];

impl PairStats {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            tx <- U64Stats::new(),
            rx <- U64Stats::new(),
        })
    }

    fn values(&self) -> [u64; txs::N + rxs::N] {
        let mut out = [0; txs::N + rxs::N];
        let (t, r) = out.split_at_mut(txs::N);
        t.copy_from_slice(&self.tx.read());
        r.copy_from_slice(&self.rx.read());
        out
    }
}

/// A queue's netlink qstats from its RX counter values: the `ethtool -S`
/// counters of the same meaning (netdev.yaml), nothing derived.
/// `csum_unnecessary` is `rx_csum_good`, counted exactly when the skb is
/// marked CHECKSUM_UNNECESSARY; `csum_bad` packets are still delivered.
/// All zeros give the set of statistics rena reports, each `Some(0)`.
fn rx_qstats(rx: &[u64; rxs::N]) -> QueueStatsRx {
    QueueStatsRx {
        packets: Some(rx[rxs::PACKETS]),
        bytes: Some(rx[rxs::BYTES]),
        alloc_fail: Some(rx[rxs::ALLOC_FAIL]),
        csum_unnecessary: Some(rx[rxs::CSUM_GOOD]),
        csum_bad: Some(rx[rxs::CSUM_BAD]),
        ..QueueStatsRx::default()
    }
}

/// As [`rx_qstats`], for the TX counters (`stop`/`wake`: tx_queue_stop and
/// tx_queue_wakeup).
fn tx_qstats(tx: &[u64; txs::N]) -> QueueStatsTx {
    QueueStatsTx {
        packets: Some(tx[txs::PACKETS]),
        bytes: Some(tx[txs::BYTES]),
        stop: Some(tx[txs::STOPS]),
        wake: Some(tx[txs::WAKES]),
        ..QueueStatsTx::default()
    }
}

/// A queue pair: what its NAPI poll works on.
#[pin_data]
struct Pair {
    idx: u32,
    adapter: Arc<Adapter>,
    mem: Arc<RingMem>,
    #[pin]
    tx: SpinLock<TxRing>,
    #[pin]
    rx: SpinLock<RxRing>,
    tx_sq_idx: u16,
    tx_cq_idx: u16,
    rx_sq_idx: u16,
    rx_cq_idx: u16,
    tx_db: usize,
    rx_db: usize,
    unmask: usize,
    #[pin]
    dim: Dim,
    /// Packets received since the last lib/dim sample.
    dim_packets: AtomicU32,
    /// Interrupt rounds that received packets (lib/dim's event count).
    dim_events: AtomicU32,
    interrupted: AtomicBool,
}

impl Pair {
    fn stats(&self) -> &PairStats {
        &self.adapter.stats[self.idx as usize]
    }

    fn dev(&self) -> &pci::Device {
        &self.adapter.pdev
    }

    /// Transmits one packet (BH context, TX queue lock held).
    fn xmit(&self, ndev: &net::Device, mut skb: SkBuff) {
        let a = &*self.adapter;
        let st = self.stats();
        let max = a.info.max_tx_descs.saturating_sub(1).max(1) as usize;
        if skb.nr_frags() + 1 > max && skb.linearize().is_err() {
            self.count_tx_drop(false);
            return;
        }
        let csum = match skb.tx_csum() {
            Ok(c) => c,
            Err(_) => {
                if skb.is_gso() || skb.checksum_help().is_err() {
                    self.count_tx_drop(false);
                    return;
                }
                None
            }
        };
        skb.tx_timestamp();
        let len = skb.len();
        let mapped = match MappedSkb::new(self.dev().as_ref(), skb) {
            Ok(m) => m,
            Err(_skb) => {
                self.count_tx_drop(true);
                return;
            }
        };
        let mut tx = self.tx.lock();
        let need = mapped.nr_segments() as u32 + 1;
        let Some(id) = tx.free_ids.pop() else {
            st.tx.add(txs::DROPPED, 1);
            return;
        };
        if tx.used + need >= tx.depth || mapped.nr_segments() == 0 {
            tx.free_ids.push(id);
            st.tx.add(txs::DROPPED, 1);
            drop(tx);
            ndev.stop_queue(self.idx);
            return;
        }
        // Offload words (meta_ctrl) and a meta descriptor if they changed.
        let mut meta_ctrl = 0u32;
        let mut meta = None;
        if let Some(c) = csum {
            let l3 = if c.l3 == 4 {
                ena::tx::L3_IPV4
            } else {
                ena::tx::L3_IPV6
            };
            let l4 = if c.l4 == 6 {
                ena::tx::L4_TCP
            } else {
                ena::tx::L4_UDP
            };
            meta_ctrl = l3 | (l4 << 8) | ena::tx::L4_CSUM_EN;
            if c.mss != 0 {
                // The device segments and computes every checksum itself
                // (the IPv4 header's too), from the stored meta's MSS.
                meta_ctrl |= ena::tx::TSO_EN;
                if c.l3 == 4 {
                    meta_ctrl |= ena::tx::L3_CSUM_EN;
                }
            } else {
                meta_ctrl |= ena::tx::L4_CSUM_PARTIAL;
            }
            let mss = u32::from(c.mss);
            // Meta word 2, and the MSS high bits of meta word 0.
            let m = [
                u32::from(c.l3_len)
                    | (u32::from(c.l3_off) << 8)
                    | (u32::from(c.l4_len) << 16)
                    | ((mss & 0x3ff) << 22),
                ((mss >> 10) & 0xf) << 16,
            ];
            if tx.last_meta != Some(m) {
                meta = Some(m);
                tx.last_meta = Some(m);
            }
        }
        let mask = tx.depth - 1;
        let mut descs = 0u32;
        let mut put = |tx: &mut TxRing, w: [u32; 4]| {
            let slot = (u32::from(tx.tail) & mask) as usize;
            let _ = self.mem.tx_sq.write_slice(slot * 4, &w);
            tx.tail = tx.tail.wrapping_add(1);
            descs += 1;
        };
        let phase_of = |tail: u16, depth: u32| -> u32 {
            if (u32::from(tail) / depth) % 2 == 0 {
                ena::tx::PHASE
            } else {
                0
            }
        };
        let mut first = ena::tx::FIRST;
        if let Some(m) = meta {
            let ph = phase_of(tx.tail, tx.depth);
            put(
                &mut tx,
                [
                    ena::tx::META_DESC
                        | ena::tx::META_EXT_VALID
                        | ena::tx::META_TYPE_EXT
                        | ena::tx::META_STORE
                        | ena::tx::FIRST
                        | m[1]
                        | ph,
                    0,
                    m[0],
                    0,
                ],
            );
            first = 0;
        }
        let n = mapped.nr_segments();
        let hdr = len.min(a.info.max_header) & 0xff;
        for (i, (addr, seg_len)) in mapped.segments().enumerate() {
            let ph = phase_of(tx.tail, tx.depth);
            let mut w0 = (seg_len & 0xffff) | ph;
            let mut w1 = 0;
            if i == 0 {
                w0 |= first | ena::tx::COMP_REQ | ((u32::from(id) >> 10) & 0x3f) << 16;
                w1 = meta_ctrl | ((u32::from(id) & 0x3ff) << 22);
            }
            if i + 1 == n {
                w0 |= ena::tx::LAST;
            }
            let w3 = ((addr >> 32) as u32 & 0xffff) | if i == 0 { hdr << 24 } else { 0 };
            put(&mut tx, [w0, w1, addr as u32, w3]);
        }
        tx.used += descs;
        tx.slots[usize::from(id)] = Some(TxSlot {
            skb: mapped,
            descs,
            bytes: len,
            sent_ms: jiffies_ms(),
            reported: false,
        });
        ndev.sent_queue(self.idx, len);
        let stop = tx.used + TX_WAKE_THRESHOLD >= tx.depth;
        if stop {
            ndev.stop_queue(self.idx);
            st.tx.add(txs::STOPS, 1);
        }
        if !net::xmit_more() || stop || ndev.queue_stopped(self.idx) {
            dma_wmb();
            let _ = a.bar.try_write32(u32::from(tx.tail), self.tx_db);
            st.tx.add(txs::DOORBELLS, 1);
        }
    }

    /// Reclaims completed TX packets; returns false on a device error.
    fn clean_tx(&self, ndev: &net::Device, budget: i32) -> bool {
        let st = self.stats();
        let mut tx = self.tx.lock();
        let mask = tx.depth - 1;
        let (mut pkts, mut bytes) = (0u32, 0u32);
        let mut ok = true;
        for _ in 0..tx.depth {
            let slot = (u32::from(tx.cq_head) & mask) as usize;
            let Ok(w0) = self.mem.tx_cq.read(slot * 2) else {
                break;
            };
            let phase = u32::from((u32::from(tx.cq_head) / tx.depth) % 2 == 0);
            if (w0 >> 24) & 1 != phase {
                break;
            }
            dma_rmb();
            let Ok(w0) = self.mem.tx_cq.read(slot * 2) else {
                break;
            };
            let id = (w0 & 0xffff) as usize;
            let Some(Some(s)) = tx.slots.get_mut(id).map(Option::take) else {
                st.tx.add(txs::BAD_REQ_ID, 1);
                if ratelimit(&self.adapter.log_limit) {
                    dev_err!(
                        self.dev(),
                        "queue {}: TX completion with bad req_id {id}\n",
                        self.idx
                    );
                }
                ok = false;
                break;
            };
            tx.cq_head = tx.cq_head.wrapping_add(1);
            tx.used = tx.used.saturating_sub(s.descs);
            tx.free_ids.push(id as u16);
            pkts += 1;
            bytes += s.bytes;
            if let Some(skb) = s.skb.unmap() {
                skb.napi_consume(budget);
            }
        }
        {
            let w = st.tx.update();
            w.add(txs::PACKETS, u64::from(pkts));
            w.add(txs::BYTES, u64::from(bytes));
        }
        ndev.completed_queue(self.idx, pkts, bytes);
        // Not while `down` tears the queues down: a queue woken after its
        // `tx_disable` took packets that the BQL reset then forgot, and
        // their completion hit BUG_ON in dql_completed (ena/16 under load).
        if ndev.queue_stopped(self.idx)
            && tx.used + TX_WAKE_THRESHOLD < tx.depth
            && ok
            && self.adapter.tx_live.load(Ordering::Acquire)
        {
            ndev.wake_queue(self.idx);
            st.tx.add(txs::WAKES, 1);
        }
        ok
    }

    /// Posts RX buffers into every free slot but one.
    fn refill(&self, rx: &mut RxRing) {
        let mask = rx.depth - 1;
        let mut posted = 0;
        let buf_len = RxPage::buf_len().min(0xffff);
        while rx.free_ids.len() > 1 {
            let page = match rx
                .spare
                .pop()
                .map_or_else(|| RxPage::new(self.dev().as_ref()), Ok)
            {
                Ok(p) => p,
                Err(_) => {
                    self.stats().rx.add(rxs::ALLOC_FAIL, 1);
                    break;
                }
            };
            let Some(id) = rx.free_ids.pop() else {
                break;
            };
            let slot = (u32::from(rx.tail) & mask) as usize;
            let phase = u32::from((u32::from(rx.tail) / rx.depth) % 2 == 0);
            let addr = page.dma_handle();
            let w = [
                buf_len | ((0x1c | phase) << 24),
                u32::from(id),
                addr as u32,
                (addr >> 32) as u32 & 0xffff,
            ];
            let _ = self.mem.rx_sq.write_slice(slot * 4, &w);
            rx.bufs[usize::from(id)] = Some(page);
            rx.tail = rx.tail.wrapping_add(1);
            posted += 1;
        }
        if posted > 0 {
            dma_wmb();
            let _ = self.adapter.bar.try_write32(u32::from(rx.tail), self.rx_db);
        }
    }

    /// Receives up to `budget` frames; `Err` on a device error.
    fn clean_rx(&self, napi: &Napi<Pair>, ndev: &net::Device, budget: i32) -> Result<i32> {
        let a = &*self.adapter;
        let st = self.stats();
        let mut rx = self.rx.lock();
        let mask = rx.depth - 1;
        let mut done = 0;
        let (mut pkts, mut bytes) = (0u64, 0u64);
        while done < budget {
            // Find a complete chain (first..last) of valid completions.
            let mut n = 0u16;
            let mut complete = false;
            loop {
                let head = rx.cq_head.wrapping_add(n);
                let slot = (u32::from(head) & mask) as usize;
                let phase = u32::from((u32::from(head) / rx.depth) % 2 == 0);
                let Ok(status) = self.mem.rx_cq.read(slot * 4) else {
                    break;
                };
                if (status >> 24) & 1 != phase {
                    break;
                }
                n += 1;
                if u32::from(n) > a.info.max_rx_descs {
                    st.rx.add(rxs::BAD_DESC, 1);
                    if ratelimit(&a.log_limit) {
                        dev_err!(
                            self.dev(),
                            "queue {}: RX frame spans more than {} buffers\n",
                            self.idx,
                            a.info.max_rx_descs
                        );
                    }
                    a.request_reset(reason::TOO_MANY_RX_DESCS);
                    return Err(EIO);
                }
                if status & ena::rx::LAST != 0 {
                    complete = true;
                    break;
                }
            }
            if !complete {
                break;
            }
            dma_rmb();
            let mut skb: Option<SkBuff> = None;
            let mut last_status = 0;
            let mut hash = 0;
            let mut bad = false;
            for k in 0..n {
                let slot = (u32::from(rx.cq_head) & mask) as usize;
                let mut e = [0u32; 4];
                let _ = self.mem.rx_cq.read_slice(slot * 4, &mut e);
                rx.cq_head = rx.cq_head.wrapping_add(1);
                let len = e[1] & 0xffff;
                let id = (e[1] >> 16) as usize;
                if k > 0 && e[0] & ena::rx::FIRST != 0 {
                    bad = true;
                    continue;
                }
                let Some(Some(page)) = rx.bufs.get_mut(id).map(Option::take) else {
                    st.rx.add(rxs::BAD_REQ_ID, 1);
                    if ratelimit(&a.log_limit) {
                        dev_err!(
                            self.dev(),
                            "queue {}: RX completion with bad req_id {id}\n",
                            self.idx
                        );
                    }
                    drop(rx);
                    a.request_reset(reason::INV_RX_REQ_ID);
                    return Err(EIO);
                };
                rx.free_ids.push(id as u16);
                last_status = e[0];
                hash = e[2];
                if bad {
                    continue;
                }
                let r = match skb.as_mut() {
                    None if n == 1 && len <= RX_COPYBREAK => {
                        let off = (e[3] >> 16) & 0xff;
                        napi.copy_rx(&page, off, len).map(|s| {
                            skb = Some(s);
                            rx.spare.push(page);
                        })
                    }
                    None => {
                        let off = (e[3] >> 16) & 0xff;
                        page.into_skb(off, len).map(|s| skb = Some(s))
                    }
                    Some(s) => page.append_to(s, len),
                };
                if r.is_err() {
                    bad = true;
                }
            }
            done += 1;
            if bad {
                st.rx.add(rxs::BAD_DESC, 1);
                if ratelimit(&a.log_limit) {
                    dev_err!(
                        self.dev(),
                        "queue {}: malformed RX completion (length or chain)\n",
                        self.idx
                    );
                }
                drop(skb);
                drop(rx);
                a.request_reset(reason::RX_MALFORMED);
                return Err(EIO);
            }
            let Some(mut skb) = skb else {
                continue;
            };
            let l3 = last_status & 0x1f;
            let l4 = (last_status >> 8) & 0x1f;
            let is_l4 = l4 == ena::rx::L4_TCP || l4 == ena::rx::L4_UDP;
            let mut csum_ok = false;
            // Like C's ena_rx_checksum: nothing counted or reported while
            // `ethtool -K rx off`.
            if a.info.rx_csum
                && ndev.rx_csum_enabled()
                && is_l4
                && last_status & ena::rx::IPV4_FRAG == 0
            {
                let l3_bad = l3 == ena::rx::L3_IPV4 && last_status & ena::rx::L3_CSUM_ERR != 0;
                if l3_bad || last_status & ena::rx::L4_CSUM_ERR != 0 {
                    st.rx.add(rxs::CSUM_BAD, 1);
                } else if last_status & ena::rx::L4_CSUM_CHECKED != 0 {
                    csum_ok = true;
                    st.rx.add(rxs::CSUM_GOOD, 1);
                }
            }
            pkts += 1;
            bytes += u64::from(skb.len());
            skb.rx_finish(ndev, self.idx as u16, hash, is_l4, csum_ok);
            napi.gro_receive(skb);
        }
        {
            let w = st.rx.update();
            w.add(rxs::PACKETS, pkts);
            w.add(rxs::BYTES, bytes);
        }
        if rx.free_ids.len() as u32 >= rx.depth / 8 || done == 0 {
            self.refill(&mut rx);
        }
        Ok(done)
    }

    /// The watchdog's look at this pair's unfinished TX packets (timer
    /// softirq), like the C driver's `check_missing_comp_in_tx_queue`;
    /// returns the reset reason it calls for.
    /// Counts a TX packet dropped before it reached the ring.
    fn count_tx_drop(&self, dma_err: bool) {
        let _tx = self.tx.lock();
        let w = self.stats().tx.update();
        if dma_err {
            w.add(txs::DMA_ERR, 1);
        }
        w.add(txs::DROPPED, 1);
    }

    fn missing_tx_scan(&self, now_ms: u64) -> Option<u32> {
        let idx = self.idx;
        let interrupted = self.interrupted.load(Ordering::Relaxed);
        let mut missed = 0u32;
        let mut tx = self.tx.lock();
        for (req_id, slot) in tx.slots.iter_mut().enumerate() {
            let Some(s) = slot.as_mut() else {
                continue;
            };
            let age = now_ms.saturating_sub(s.sent_ms);
            if !interrupted && age > 2 * MISSING_TX_TIMEOUT_MS {
                dev_err!(
                    self.dev(),
                    "queue {idx}: TX pending {age} ms and no interrupt ever came (MSI-X problem?)\n"
                );
                return Some(reason::MISS_INTERRUPT);
            }
            if age > MISSING_TX_TIMEOUT_MS {
                missed += 1;
                if !s.reported && ratelimit(&self.adapter.log_limit) {
                    dev_warn!(
                        self.dev(),
                        "queue {idx}: TX req_id {req_id} not completed after {age} ms\n"
                    );
                }
                s.reported = true;
            }
        }
        self.stats().tx.add(txs::MISSED, u64::from(missed));
        drop(tx);
        if missed > MISSING_TX_THRESHOLD {
            dev_err!(
                self.dev(),
                "queue {idx}: {missed} TX completions lost (threshold {MISSING_TX_THRESHOLD}, timeout {MISSING_TX_TIMEOUT_MS} ms)\n"
            );
            return Some(reason::MISS_TX_CMPL);
        }
        None
    }

    fn unmask_irq(&self) {
        let a = &*self.adapter;
        let m = a.moderation();
        let rx_delay = if m.adaptive {
            u32::from(self.dim.rx_usecs())
        } else {
            m.rx_usecs / a.info.intr_res
        };
        let tx_delay = m.tx_usecs / a.info.intr_res;
        let v = (rx_delay & 0x7fff) | ((tx_delay & 0x7fff) << 15) | (1 << 30);
        let _ = a.bar.try_write32(v, self.unmask);
    }
}

impl NapiPoller for Pair {
    fn poll(napi: &Napi<Self>, ndev: &net::Device, budget: i32) -> i32 {
        let p = napi.poller();
        let a = &*p.adapter;
        p.stats().rx.add(rxs::NAPI_POLLS, 1);
        if !p.clean_tx(ndev, budget) {
            a.request_reset(reason::INV_TX_REQ_ID);
            // Leave the vector masked for the reset, but end this NAPI
            // round: a poll that returns less than its budget without
            // completing stays scheduled forever and `napi_disable` in
            // the reset would wait on it.
            napi.complete_done(0);
            return 0;
        }
        if budget == 0 {
            return 0;
        }
        let done = match p.clean_rx(napi, ndev, budget) {
            Ok(d) => d,
            Err(_) => {
                napi.complete_done(0);
                return 0;
            }
        };
        // Only this NAPI context writes these two: plain load/store.
        let pending = p.dim_packets.load(Ordering::Relaxed) + done as u32;
        p.dim_packets.store(pending, Ordering::Relaxed);
        if done < budget && napi.complete_done(done) {
            // Like the C driver, lib/dim samples once per interrupt round
            // that received something; its "events" are those rounds.
            if pending > 0 && a.moderation().adaptive {
                p.dim_packets.store(0, Ordering::Relaxed);
                let ev = p.dim_events.load(Ordering::Relaxed).wrapping_add(1);
                p.dim_events.store(ev, Ordering::Relaxed);
                let rx = p.stats().rx.read();
                p.dim.update(ev as u16, rx[rxs::PACKETS], rx[rxs::BYTES]);
            }
            p.unmask_irq();
            p.stats().rx.add(rxs::UNMASKS, 1);
        }
        done
    }
}

/// IO vector handler: schedule the pair's NAPI.
struct IoIrq(Arc<Napi<Pair>>);

impl irq::Handler for IoIrq {
    fn handle(&self) -> irq::IrqReturn {
        let p = self.0.poller();
        p.interrupted.store(true, Ordering::Relaxed);
        self.0.schedule();
        irq::IrqReturn::Handled
    }
}

type XmitSlot = SpinLock<Option<Arc<Napi<Pair>>>>;

struct LivePair {
    // Field order: the IRQ goes before the NAPI it schedules.
    _irq: Pin<KBox<irq::Registration<IoIrq>>>,
    napi: Arc<Napi<Pair>>,
}

// ---------------------------------------------------------------------------
// Adapter

#[derive(Clone, Copy)]
struct DevInfo {
    mac: [u8; 6],
    max_mtu: u32,
    features: u32,
    max_queues: u32,
    max_tx_depth: u32,
    max_rx_depth: u32,
    max_header: u32,
    max_tx_descs: u32,
    max_rx_descs: u32,
    tx_csum: bool,
    rx_csum: bool,
    tso4: bool,
    tso6: bool,
    /// Interrupt delay resolution in µs (never 0: it divides).
    intr_res: core::num::NonZeroU32,
    moderation: bool,
    rss: bool,
}

#[derive(Clone, Copy)]
struct Moderation {
    rx_usecs: u32,
    tx_usecs: u32,
    adaptive: bool,
}

impl Moderation {
    /// One word, so every NAPI poll reads it without a shared lock.
    fn pack(self) -> u64 {
        u64::from(self.rx_usecs)
            | (u64::from(self.tx_usecs & 0x7fff_ffff) << 32)
            | (u64::from(self.adaptive) << 63)
    }

    fn unpack(v: u64) -> Self {
        Self {
            rx_usecs: v as u32,
            tx_usecs: (v >> 32) as u32 & 0x7fff_ffff,
            adaptive: v >> 63 != 0,
        }
    }
}

/// Configuration and live IO resources; changed under RTNL and this lock.
struct State {
    queues: u32,
    tx_ring: u32,
    rx_ring: u32,
    rss_table: [u32; RSS_TABLE_SIZE],
    rss_key: [u8; RSS_KEY_SIZE],
    pairs: KVec<LivePair>,
    up: bool,
}

/// The management vector's handler: admin completions and AENQ events.
struct MgmtIrq(Arc<Adapter>);

impl irq::Handler for MgmtIrq {
    fn handle(&self) -> irq::IrqReturn {
        let a = &*self.0;
        a.admin.drain();
        a.handle_aenq();
        irq::IrqReturn::Handled
    }
}

#[pin_data]
struct Adapter {
    pdev: ARef<pci::Device>,
    bar: Arc<Regs>,
    admin: Arc<Admin>,
    aenq: CoherentAllocation<u32>,
    aenq_state: TryLock<AenqState>,
    info: DevInfo,
    vectors: pci::IrqVectors,
    mems: KVec<Arc<RingMem>>,
    /// RSS indirection table and key buffer handed to the device.
    rss_buf: CoherentAllocation<u32>,
    #[pin]
    state: Mutex<State>,
    moder: AtomicU64,
    /// The netdev registration; taken at unbind.
    #[pin]
    reg: Mutex<Option<net::Registration<NetData>>>,
    /// The management IRQ; set after probe brings MSI-X up.
    #[pin]
    mgmt: Mutex<Option<Pin<KBox<irq::Registration<MgmtIrq>>>>>,
    #[pin]
    work: Work<Adapter>,
    stats: KVec<Pin<KBox<PairStats>>>,
    /// The data path is up: TX clean-up may wake a stopped queue. Cleared
    /// by `down` before it stops the queues; read under a ring's TX lock.
    tx_live: AtomicBool,
    link_up: AtomicBool,
    link_event: AtomicBool,
    keepalive_ms: AtomicU64,
    reset_reason: AtomicU32,
    removing: AtomicBool,
    resets: AtomicU32,
    reset_fail: AtomicU32,
    /// The live pair of each queue, for `start_xmit` and the watchdog's
    /// scans (BH context): one lock per queue, taken by `start_xmit` under
    /// that queue's xmit lock, so CPUs transmitting on different queues
    /// share no lock.
    xmit_slots: KVec<Pin<KBox<XmitSlot>>>,
    tx_timeouts: AtomicU32,
    log_limit: AtomicU32,
    rx_drops: AtomicU64,
    tx_drops: AtomicU64,
    /// Packets `start_xmit` got on a queue with no live pair (a queue
    /// woken while the data path was down: a bug, logged once per `up`).
    xmit_down_drops: AtomicU64,
    xmit_down_logged: AtomicBool,
}

impl_has_work! {
    impl HasWork<Self> for Adapter { self.work }
}

impl WorkItem for Adapter {
    type Pointer = Arc<Adapter>;

    fn run(this: Arc<Adapter>) {
        this.service();
    }
}

fn wait_sts(bar: &Regs, want_set: bool, timeout_ms: u32) -> Result {
    let mut waited = 0;
    loop {
        let sts = bar.read32(reg::DEV_STS)?;
        if (sts & reg::DEV_STS_RESET_IN_PROGRESS != 0) == want_set {
            return Ok(());
        }
        if waited >= timeout_ms {
            return Err(rust_bindings::error::etimedout());
        }
        msleep(1);
        waited += 1;
    }
}

/// The reset handshake: DEV_CTL reset with `why`, wait for the device to
/// enter and leave reset.
fn dev_reset(pdev: &pci::Device, bar: &Regs, why: u32) -> Result {
    let (sts, caps) = match (bar.read32(reg::DEV_STS), bar.read32(reg::CAPS)) {
        (Ok(sts), Ok(caps)) => (sts, caps),
        (Err(e), _) | (_, Err(e)) => {
            dev_err!(pdev, "cannot read the device status registers\n");
            return Err(e);
        }
    };
    if sts & reg::DEV_STS_READY == 0 || sts == u32::MAX {
        dev_err!(pdev, "device not ready (status {sts:#x})\n");
        return Err(ENODEV);
    }
    let timeout = ((caps >> 1) & 0x1f) * 100;
    if timeout == 0 {
        dev_err!(pdev, "device reports no reset timeout (caps {caps:#x})\n");
        return Err(EINVAL);
    }
    bar.write32(reg::DEV_CTL_RESET | ((why & 0xf) << 28), reg::DEV_CTL);
    bar.set_response_address();
    if let Err(e) = wait_sts(bar, true, timeout) {
        dev_err!(pdev, "device did not enter reset\n");
        return Err(e);
    }
    bar.write32(0, reg::DEV_CTL);
    if let Err(e) = wait_sts(bar, false, timeout) {
        dev_err!(pdev, "device did not leave reset\n");
        return Err(e);
    }
    Ok(())
}

/// Programs the admin queue, completion queue and AENQ rings.
fn admin_rings(bar: &Regs, admin: &Admin, aenq_ring: &CoherentAllocation<u32>) {
    let sq = admin.sq.dma_handle();
    let cq = admin.cq.dma_handle();
    let aq = aenq_ring.dma_handle();
    bar.write32(sq as u32, reg::AQ_BASE_LO);
    bar.write32((sq >> 32) as u32, reg::AQ_BASE_HI);
    bar.write32(cq as u32, reg::ACQ_BASE_LO);
    bar.write32((cq >> 32) as u32, reg::ACQ_BASE_HI);
    bar.write32((64 << 16) | ADMIN_DEPTH as u32, reg::AQ_CAPS);
    bar.write32((64 << 16) | ADMIN_DEPTH as u32, reg::ACQ_CAPS);
    bar.write32(aq as u32, reg::AENQ_BASE_LO);
    bar.write32((aq >> 32) as u32, reg::AENQ_BASE_HI);
    bar.write32((64 << 16) | aenq::DEPTH as u32, reg::AENQ_CAPS);
}

fn get_feature(pdev: &pci::Device, bar: &Regs, admin: &Admin, id: u8, ver: u8) -> Result<Resp> {
    admin.exec_ok(
        pdev,
        bar,
        "GET_FEATURE",
        Cmd::feature(op::GET_FEATURE, id, ver),
    )
}

/// Probe steps after reset: device attributes, queue limits, AENQ groups,
/// offloads, moderation.
fn negotiate(pdev: &pci::Device, bar: &Regs, admin: &Admin) -> Result<DevInfo> {
    let r = get_feature(pdev, bar, admin, feat::DEVICE_ATTRIBUTES, 0)?;
    let features = r.u32(8 + 8);
    let mut mac = [0u8; 6];
    for (i, m) in mac.iter_mut().enumerate() {
        *m = r.u8(8 + 24 + i);
    }
    let max_mtu = r.u32(8 + 32);
    if features & (1 << feat::MAX_QUEUES_EXT) == 0 {
        dev_err!(
            pdev,
            "device lacks the MAX_QUEUES_EXT feature (features {features:#x})\n"
        );
        return Err(eopnotsupp());
    }
    let q = get_feature(pdev, bar, admin, feat::MAX_QUEUES_EXT, 1)?;
    if q.u8(8) != 1 {
        dev_err!(pdev, "MAX_QUEUES_EXT version {} (want 1)\n", q.u8(8));
        return Err(EINVAL);
    }
    let p = |o: usize| q.u32(8 + o);
    let max_queues = p(4).min(p(8)).min(p(12)).min(p(16));
    let pow2floor = |v: u32| {
        if v == 0 {
            0
        } else {
            1u32 << (31 - v.leading_zeros())
        }
    };
    let max_tx_depth = pow2floor(p(20).min(p(24)).min(4096));
    let max_rx_depth = pow2floor(p(28).min(p(32)).min(4096));
    let max_header = p(36);
    let max_tx_descs = u32::from(q.u16(8 + 40)).min(19);
    let max_rx_descs = u32::from(q.u16(8 + 42)).min(19);
    if max_queues == 0
        || max_tx_depth < MIN_RING
        || max_rx_depth < MIN_RING
        || max_tx_descs < 2
        || max_rx_descs == 0
        || max_header == 0
    {
        dev_err!(pdev, "unusable queue limits: {max_queues} queues, depth tx {max_tx_depth} rx {max_rx_depth}, descs tx {max_tx_descs} rx {max_rx_descs}\n");
        return Err(EINVAL);
    }
    if max_mtu < 576 || mac[0] & 1 != 0 || mac == [0; 6] {
        dev_err!(
            pdev,
            "bad device attributes: MTU {max_mtu}, MAC {:02x?}\n",
            mac
        );
        return Err(EINVAL);
    }
    let a = get_feature(pdev, bar, admin, feat::AENQ_CONFIG, 0)?;
    let groups = a.u32(8) & 0x1f;
    admin.exec_ok(
        pdev,
        bar,
        "SET AENQ_CONFIG",
        Cmd::feature(op::SET_FEATURE, feat::AENQ_CONFIG, 0).u32(20 + 4, groups),
    )?;
    let o = get_feature(pdev, bar, admin, feat::STATELESS_OFFLOAD, 0)?;
    let tx_off = o.u32(8);
    let rx_off = o.u32(12);
    let mut intr_res = core::num::NonZeroU32::MIN;
    let moderation = features & (1 << feat::INTR_MODERATION) != 0;
    if moderation {
        let m = get_feature(pdev, bar, admin, feat::INTR_MODERATION, 0)?;
        intr_res = core::num::NonZeroU32::new(u32::from(m.u16(8))).unwrap_or(intr_res);
    }
    let rss = features & (1 << feat::RSS_IND_TABLE) != 0
        && features & (1 << feat::RSS_HASH_FUNCTION) != 0;
    Ok(DevInfo {
        mac,
        max_mtu: max_mtu.min(9216),
        features,
        max_queues,
        max_tx_depth,
        max_rx_depth,
        max_header,
        max_tx_descs,
        max_rx_descs,
        tx_csum: tx_off & ((1 << 1) | (1 << 3)) == ((1 << 1) | (1 << 3)),
        rx_csum: rx_off & ((1 << 1) | (1 << 2)) != 0,
        tso4: tx_off & (1 << 5) != 0,
        tso6: tx_off & (1 << 6) != 0,
        intr_res,
        moderation,
        rss,
    })
}

impl Adapter {
    fn moderation(&self) -> Moderation {
        Moderation::unpack(self.moder.load(Ordering::Relaxed))
    }

    fn request_reset(&self, why: u32) {
        if self
            .reset_reason
            .compare_exchange(u32::MAX, why, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            dev_err!(&*self.pdev, "scheduling device reset (reason {why})\n");
        }
    }

    fn handle_aenq(&self) {
        let Some(mut st) = self.aenq_state.try_lock() else {
            return;
        };
        let mut n = 0;
        for _ in 0..aenq::DEPTH {
            let slot = usize::from(st.head) % aenq::DEPTH;
            let Ok(w1) = self.aenq.read(slot * ENTRY_WORDS + 1) else {
                break;
            };
            if w1 & 1 != st.phase {
                break;
            }
            dma_rmb();
            let mut e = Resp([0; ENTRY_WORDS]);
            if self.aenq.read_slice(slot * ENTRY_WORDS, &mut e.0).is_err() {
                break;
            }
            st.head = st.head.wrapping_add(1);
            if usize::from(st.head) % aenq::DEPTH == 0 {
                st.phase ^= 1;
            }
            n += 1;
            match e.u16(0) {
                aenq::LINK_CHANGE => {
                    self.link_up.store(e.u32(16) & 1 != 0, Ordering::Release);
                    self.link_event.store(true, Ordering::Release);
                }
                aenq::KEEP_ALIVE => {
                    self.keepalive_ms.store(jiffies_ms(), Ordering::Relaxed);
                    let rx = u64::from(e.u32(16)) | (u64::from(e.u32(20)) << 32);
                    let tx = u64::from(e.u32(24)) | (u64::from(e.u32(28)) << 32);
                    self.rx_drops.store(rx, Ordering::Relaxed);
                    self.tx_drops.store(tx, Ordering::Relaxed);
                }
                aenq::NOTIFICATION => {}
                g => {
                    if ratelimit(&self.log_limit) {
                        dev_warn!(
                            &*self.pdev,
                            "AENQ event of group {g} (syndrome {}) ignored\n",
                            e.u16(2)
                        );
                    }
                }
            }
        }
        if n > 0 {
            let db = st.head.wrapping_add(aenq::DEPTH as u16);
            self.bar.write32(u32::from(db), reg::AENQ_HEAD_DB);
        }
    }
}

const DEFAULT_KEY: [u8; RSS_KEY_SIZE] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

impl Adapter {
    fn exec(&self, what: &str, cmd: Cmd) -> Result<Resp> {
        self.admin.exec_ok(&self.pdev, &self.bar, what, cmd)
    }

    fn check_offset(&self, off: u32) -> Result<usize> {
        let off = off as usize;
        if off < reg::SIZE || off % 4 != 0 || off + 4 > self.bar.maxsize() {
            dev_err!(
                &*self.pdev,
                "device gave register offset {off:#x} outside BAR0\n"
            );
            return Err(EIO);
        }
        Ok(off)
    }

    fn create_cq(
        &self,
        mem: &CoherentAllocation<u32>,
        words: u8,
        depth: u32,
        vector: u32,
    ) -> Result<(u16, usize)> {
        let ba = mem.dma_handle();
        let r = self.exec(
            "CREATE_CQ",
            Cmd::new(op::CREATE_CQ)
                .u8(4, 1 << 5)
                .u8(5, words)
                .u16(6, depth as u16)
                .u32(8, vector)
                .u32(12, ba as u32)
                .u16(16, (ba >> 32) as u16),
        )?;
        Ok((r.u16(8), self.check_offset(r.u32(20))?))
    }

    fn create_sq(
        &self,
        mem: &CoherentAllocation<u32>,
        dir: u8,
        cq: u16,
        depth: u32,
    ) -> Result<(u16, usize)> {
        let ba = mem.dma_handle();
        let r = self.exec(
            "CREATE_SQ",
            Cmd::new(op::CREATE_SQ)
                .u8(4, dir << 5)
                .u8(6, 1)
                .u8(7, 1)
                .u16(8, cq)
                .u16(10, depth as u16)
                .u32(12, ba as u32)
                .u16(16, (ba >> 32) as u16),
        )?;
        Ok((r.u16(8), self.check_offset(r.u32(12))?))
    }

    fn destroy_sq(&self, idx: u16, dir: u8) {
        let _ = self.exec(
            "DESTROY_SQ",
            Cmd::new(op::DESTROY_SQ).u16(4, idx).u8(6, dir << 5),
        );
    }

    fn destroy_cq(&self, idx: u16) {
        let _ = self.exec("DESTROY_CQ", Cmd::new(op::DESTROY_CQ).u16(4, idx));
    }

    /// Creates the device queues of pair `i` and its NAPI instance.
    fn create_pair(
        self: &Arc<Self>,
        dev: &net::Device,
        st: &State,
        i: u32,
    ) -> Result<Arc<Napi<Pair>>> {
        let mem = self.mems.get(i as usize).ok_or(EINVAL)?.clone();
        let (txd, rxd) = (st.tx_ring, st.rx_ring);
        zero(&mem.tx_cq, txd as usize * 2);
        zero(&mem.rx_cq, rxd as usize * 4);
        let (tx_cq, unmask) = self.create_cq(&mem.tx_cq, 2, txd, 1 + i)?;
        let (tx_sq, tx_db) = match self.create_sq(&mem.tx_sq, 1, tx_cq, txd) {
            Ok(v) => v,
            Err(e) => {
                self.destroy_cq(tx_cq);
                return Err(e);
            }
        };
        let rx = self
            .create_cq(&mem.rx_cq, 4, rxd, 1 + i)
            .and_then(
                |(rx_cq, _)| match self.create_sq(&mem.rx_sq, 2, rx_cq, rxd) {
                    Ok((rx_sq, rx_db)) => Ok((rx_cq, rx_sq, rx_db)),
                    Err(e) => {
                        self.destroy_cq(rx_cq);
                        Err(e)
                    }
                },
            );
        let (rx_cq, rx_sq, rx_db) = match rx {
            Ok(v) => v,
            Err(e) => {
                self.destroy_sq(tx_sq, 1);
                self.destroy_cq(tx_cq);
                return Err(e);
            }
        };
        let mut tx_slots = KVec::with_capacity(txd as usize, GFP_KERNEL)?;
        for _ in 0..txd {
            tx_slots.push(None, GFP_KERNEL)?;
        }
        let tx_free = IdStack::new(txd)?;
        let mut rx_bufs = KVec::with_capacity(rxd as usize, GFP_KERNEL)?;
        for _ in 0..rxd {
            rx_bufs.push(None, GFP_KERNEL)?;
        }
        let rx_free = IdStack::new(rxd)?;
        let rx_spare = SpareBufs::new(rxd)?;
        let pair = try_pin_init!(Pair {
            idx: i,
            adapter: self.clone(),
            mem,
            tx <- new_spinlock!(TxRing {
                depth: txd,
                tail: 0,
                cq_head: 0,
                used: 0,
                slots: tx_slots,
                free_ids: tx_free,
                last_meta: None,
            }),
            rx <- new_spinlock!(RxRing {
                depth: rxd,
                tail: 0,
                cq_head: 0,
                bufs: rx_bufs,
                free_ids: rx_free,
                spare: rx_spare,
            }),
            tx_sq_idx: tx_sq,
            tx_cq_idx: tx_cq,
            rx_sq_idx: rx_sq,
            rx_cq_idx: rx_cq,
            tx_db,
            rx_db,
            unmask,
            dim <- Dim::new(),
            dim_packets: AtomicU32::new(0),
            dim_events: AtomicU32::new(0),
            interrupted: AtomicBool::new(false),
        });
        Arc::pin_init(Napi::<Pair>::new(dev, pair, NAPI_WEIGHT), GFP_KERNEL)
    }

    fn destroy_pair_queues(&self, p: &Pair) {
        self.destroy_sq(p.tx_sq_idx, 1);
        self.destroy_cq(p.tx_cq_idx);
        self.destroy_sq(p.rx_sq_idx, 2);
        self.destroy_cq(p.rx_cq_idx);
    }

    /// Programs RSS: indirection table (RX SQ indices), Toeplitz key.
    fn set_rss(&self, st: &State, pairs: &[LivePair]) -> Result {
        if !self.info.rss || pairs.is_empty() {
            return Ok(());
        }
        let table = &self.rss_buf;
        for (i, q) in st.rss_table.iter().enumerate() {
            let p = pairs.get(*q as usize).or(pairs.first()).ok_or(EINVAL)?;
            table.write(i, u32::from(p.napi.poller().rx_sq_idx))?;
        }
        self.exec(
            "SET RSS_IND_TABLE",
            Cmd::feature(op::SET_FEATURE, feat::RSS_IND_TABLE, 0)
                .ctrl_buf(table.dma_handle(), (RSS_TABLE_SIZE * 4) as u32)
                .u16(20 + 4, 7)
                .u32(20 + 8, u32::MAX),
        )?;
        let key = RSS_TABLE_SIZE;
        table.write(key, (RSS_KEY_SIZE / 4) as u32)?;
        for i in 0..RSS_KEY_SIZE / 4 {
            let k = &st.rss_key[i * 4..i * 4 + 4];
            table.write(key + 2 + i, u32::from_le_bytes([k[0], k[1], k[2], k[3]]))?;
        }
        self.exec(
            "SET RSS_HASH_FUNCTION",
            Cmd::feature(op::SET_FEATURE, feat::RSS_HASH_FUNCTION, 0)
                .ctrl_buf(table.dma_handle_with_offset(key)?, 48)
                .u32(20 + 4, 1 << 1)
                .u32(20 + 8, u32::MAX),
        )?;
        Ok(())
    }

    fn set_mtu_feature(&self, mtu: u32) -> Result {
        if self.info.features & (1 << feat::MTU) == 0 {
            return Err(eopnotsupp());
        }
        self.exec(
            "SET MTU",
            Cmd::feature(op::SET_FEATURE, feat::MTU, 0).u32(20, mtu),
        )
        .map(|_| ())
    }

    /// Brings the data path up (RTNL and `state` held).
    fn up(self: &Arc<Self>, dev: &net::Device, st: &mut State) -> Result {
        if st.up {
            return Ok(());
        }
        dev.set_real_num_queues(st.queues)?;
        let mut pairs: KVec<LivePair> = KVec::new();
        let res = (|| -> Result {
            for i in 0..st.queues {
                let napi = self.create_pair(dev, st, i)?;
                let req = self.vectors.request(1 + i)?;
                let irq_reg = KBox::pin_init(
                    irq::Registration::new(
                        req,
                        irq::Flags::NONE,
                        c_str!("rena-io"),
                        IoIrq(napi.clone()),
                    ),
                    GFP_KERNEL,
                );
                let irq_reg = match irq_reg {
                    Ok(r) => r,
                    Err(e) => {
                        self.destroy_pair_queues(napi.poller());
                        return Err(e);
                    }
                };
                pairs.push(
                    LivePair {
                        _irq: irq_reg,
                        napi,
                    },
                    GFP_KERNEL,
                )?;
            }
            self.set_rss(st, &pairs)?;
            let _ = self.set_mtu_feature(dev.mtu());
            Ok(())
        })();
        if let Err(e) = res {
            for p in pairs.iter() {
                self.destroy_pair_queues(p.napi.poller());
            }
            return Err(e);
        }
        // BQL starts from zero before any pair can transmit.
        for i in 0..pairs.len() {
            dev.reset_queue(i as u32);
        }
        {
            let _bh = net::bh_disable();
            for (p, slot) in pairs.iter().zip(self.xmit_slots.iter()) {
                let pr = p.napi.poller();
                pr.refill(&mut pr.rx.lock());
                *slot.lock() = Some(p.napi.clone());
            }
        }
        for (i, p) in pairs.iter().enumerate() {
            p.napi.link_queue(dev, i as u32);
            p.napi.enable();
        }
        st.pairs = pairs;
        st.up = true;
        self.xmit_down_logged.store(false, Ordering::Relaxed);
        self.tx_live.store(true, Ordering::Release);
        // Wake, not start: when `up` follows a `down` of a device that
        // stayed open (ethtool -L/-G, reset), packets queued in the qdisc
        // meanwhile wait for a qdisc run that only a wake schedules. A UDP
        // sender blocked on its socket buffer (full of exactly those
        // packets) never sends again to trigger one (rena-only/03 stalled).
        dev.tx_wake_all();
        dev.set_carrier(self.link_up.load(Ordering::Acquire));
        for p in st.pairs.iter() {
            p.napi.poller().unmask_irq();
            p.napi.schedule();
        }
        Ok(())
    }

    /// Tears the data path down (RTNL and `state` held). With a reset
    /// reason (or a dead admin queue) the device is reset instead of
    /// sent destroy commands.
    fn down(&self, dev: &net::Device, st: &mut State, reset: Option<u32>) {
        if !st.up {
            return;
        }
        st.up = false;
        dev.set_carrier(false);
        // No TX clean-up may wake a queue from here on: the flag is read
        // under each ring's TX lock, so once every lock has been taken and
        // released, a clean-up that saw it set has finished its wake, and
        // `tx_disable` below stops the queues for good.
        self.tx_live.store(false, Ordering::Release);
        {
            let _bh = net::bh_disable();
            for p in st.pairs.iter() {
                drop(p.napi.poller().tx.lock());
            }
        }
        dev.tx_disable();
        // Not in a down that resets (asked for, or forced below by a dead
        // admin queue): the device may be broken and polls would log noise.
        if reset.is_none() && self.admin.running.load(Ordering::Acquire) {
            self.test_down_window(st);
        }
        {
            let _bh = net::bh_disable();
            for slot in self.xmit_slots.iter() {
                drop(slot.lock().take());
            }
        }
        let mut pairs = core::mem::take(&mut st.pairs);
        for (i, p) in pairs.iter_mut().enumerate() {
            p.napi.disable();
            dev.clear_queue_napi(i as u32);
        }
        let reset = match reset {
            None if !self.admin.running.load(Ordering::Acquire) => Some(reason::ADMIN_TO),
            r => r,
        };
        if let Some(why) = reset {
            let _ = dev_reset(&self.pdev, &self.bar, why);
        } else {
            for p in pairs.iter() {
                self.destroy_pair_queues(p.napi.poller());
            }
        }
        for i in 0..pairs.len() {
            dev.reset_queue(i as u32);
        }
        // IRQs are freed before the NAPI instances they schedule.
        drop(pairs);
    }

    /// Test hook (`test_down_window_ms`): in a `down` without reset, with
    /// the queues stopped but NAPI still running, waits and then polls
    /// every pair, so a TX clean-up that wrongly wakes a queue here does so
    /// every time; logs each queue woken meanwhile (its wake counter
    /// moved) for rena-only/03-down-no-wake.sh.
    fn test_down_window(&self, st: &State) {
        let ms = TEST_DOWN_WINDOW_MS.get();
        if ms == 0 {
            return;
        }
        let wakes = |p: &LivePair| p.napi.poller().stats().tx.read()[txs::WAKES];
        let mut before: KVec<u64> = KVec::new();
        for p in st.pairs.iter() {
            if before.push(wakes(p), GFP_KERNEL).is_err() {
                dev_err!(&*self.pdev, "down: test window skipped: no memory\n");
                return;
            }
        }
        dev_info!(&*self.pdev, "down: test window of {ms} ms\n");
        msleep(ms);
        {
            // The polls run when bottom halves come back on, on this CPU.
            let _bh = net::bh_disable();
            for p in st.pairs.iter() {
                p.napi.schedule();
            }
        }
        msleep(ms);
        for (i, (p, b)) in st.pairs.iter().zip(before.iter()).enumerate() {
            if wakes(p) != *b {
                dev_err!(&*self.pdev, "down: queue {i} woken in the test window\n");
            }
        }
        dev_info!(&*self.pdev, "down: test window over\n");
    }

    /// The 1 Hz health check (softirq): keep-alive, admin queue.
    fn health(&self) -> bool {
        if self.removing.load(Ordering::Acquire) {
            return false;
        }
        let last = self.keepalive_ms.load(Ordering::Relaxed);
        if last != 0 && jiffies_ms().saturating_sub(last) > KEEP_ALIVE_TIMEOUT_MS {
            if self.reset_reason.load(Ordering::Relaxed) == u32::MAX {
                dev_err!(&*self.pdev, "Keep alive watchdog timeout\n");
            }
            self.request_reset(reason::KEEP_ALIVE_TO);
        }
        if !self.admin.running.load(Ordering::Acquire) {
            self.request_reset(reason::ADMIN_TO);
        }
        if self.reset_reason.load(Ordering::Relaxed) == u32::MAX {
            let now = jiffies_ms();
            let why = self.xmit_slots.iter().find_map(|slot| {
                let pair = slot.lock();
                pair.as_ref().and_then(|p| p.poller().missing_tx_scan(now))
            });
            if let Some(why) = why {
                self.request_reset(why);
            }
        }
        self.reset_reason.load(Ordering::Relaxed) != u32::MAX
            || self.link_event.load(Ordering::Relaxed)
    }

    /// Work item: carrier changes and resets, in process context.
    fn service(self: &Arc<Self>) {
        // The test hook widens the window in which the work holds the
        // adapter but not yet `reg`: unbind must wait for it (see `unbind`).
        let delay = TEST_SERVICE_DELAY_MS.get();
        if delay > 0 {
            dev_info!(&*self.pdev, "service work: test delay of {delay} ms\n");
            msleep(delay);
            dev_info!(&*self.pdev, "service work: test delay over\n");
        }
        let reg = self.reg.lock();
        let Some(reg) = reg.as_ref() else {
            return;
        };
        let dev = reg.device();
        if self.link_event.swap(false, Ordering::AcqRel) {
            let up = self.link_up.load(Ordering::Acquire);
            dev_info!(&*self.pdev, "link {}\n", if up { "up" } else { "down" });
            let _rtnl = net::rtnl_lock();
            let running = self.state.lock().up;
            dev.set_carrier(up && running);
        }
        let why = self.reset_reason.load(Ordering::Acquire);
        if why != u32::MAX && !self.removing.load(Ordering::Acquire) {
            self.reset(dev, why);
        }
    }

    /// Full device reset and re-initialisation, restoring the data path.
    fn reset(self: &Arc<Self>, dev: &net::Device, why: u32) {
        let _rtnl = net::rtnl_lock();
        let mut st = self.state.lock();
        let was_up = st.up;
        let n = self.resets.fetch_add(1, Ordering::Relaxed) + 1;
        dev_warn!(&*self.pdev, "resetting device (reason {why}), reset #{n}\n");
        // Like the C driver: the reset that carries the reason first (it
        // also stops the data path), then a normal one to re-initialise.
        if was_up {
            self.down(dev, &mut st, Some(why));
        } else {
            let _ = dev_reset(&self.pdev, &self.bar, why);
        }
        let res = (|| -> Result {
            dev_reset(&self.pdev, &self.bar, reason::NORMAL)?;
            self.admin.rearm();
            {
                let mut a = loop {
                    if let Some(g) = self.aenq_state.try_lock() {
                        break g;
                    }
                };
                zero(&self.aenq, aenq::DEPTH * ENTRY_WORDS);
                a.head = 0;
                a.phase = 1;
            }
            admin_rings(&self.bar, &self.admin, &self.aenq);
            self.admin.polling.store(true, Ordering::Release);
            self.bar.write32(1, reg::INTR_MASK);
            let info = negotiate(&self.pdev, &self.bar, &self.admin)?;
            if info.mac != self.info.mac || info.max_mtu < dev.mtu() {
                dev_err!(&*self.pdev, "device identity changed across reset\n");
                return Err(EINVAL);
            }
            self.bar.write32(0, reg::INTR_MASK);
            self.admin.polling.store(false, Ordering::Release);
            self.bar.write32(aenq::DEPTH as u32, reg::AENQ_HEAD_DB);
            self.keepalive_ms.store(jiffies_ms(), Ordering::Relaxed);
            self.reset_reason.store(u32::MAX, Ordering::Release);
            if was_up {
                self.up(dev, &mut st)?;
            }
            Ok(())
        })();
        match res {
            Ok(()) => dev_info!(&*self.pdev, "Device reset completed successfully\n"),
            Err(e) => {
                self.reset_fail.fetch_add(1, Ordering::Relaxed);
                dev_err!(&*self.pdev, "device reset failed: error {}\n", e.to_errno());
            }
        }
    }

    fn global_stats(&self) -> [(&'static str, u64); 6] {
        [
            (
                "tx_timeout",
                u64::from(self.tx_timeouts.load(Ordering::Relaxed)),
            ),
            ("reset_cnt", u64::from(self.resets.load(Ordering::Relaxed))),
            (
                "reset_fail",
                u64::from(self.reset_fail.load(Ordering::Relaxed)),
            ),
            (
                "ena_admin_q_submitted_cmd",
                self.admin.submitted.load(Ordering::Relaxed),
            ),
            (
                "ena_admin_q_completed_cmd",
                self.admin.completed.load(Ordering::Relaxed),
            ),
            (
                "ena_admin_q_stray_cmpl",
                u64::from(self.admin.stray.load(Ordering::Relaxed)),
            ),
        ]
    }

    /// Changes configuration with the data path down, then up again.
    fn reconfigure(self: &Arc<Self>, dev: &net::Device, f: impl FnOnce(&mut State)) -> Result {
        let mut st = self.state.lock();
        let was_up = st.up;
        self.down(dev, &mut st, None);
        f(&mut st);
        if was_up {
            self.up(dev, &mut st)?;
        }
        Ok(())
    }
}

impl Admin {
    /// Forgets all ring state after a device reset.
    fn rearm(&self) {
        let mut tail = self.sq_tail.lock();
        *tail = 0;
        let mut st = loop {
            if let Some(g) = self.acq.try_lock() {
                break g;
            }
        };
        zero(&self.cq, ADMIN_DEPTH * ENTRY_WORDS);
        st.head = 0;
        st.phase = 1;
        st.resp = None;
        self.waiting.store(NO_CMD, Ordering::Release);
        self.running.store(true, Ordering::Release);
    }
}

/// The netdev's data is an `Arc<Adapter>` handle.
struct NetData(Arc<Adapter>);

impl net::DeviceOperations for NetData {
    const DRIVER_NAME: &'static CStr = c_str!("rena");

    fn open(&self, dev: &net::Device) -> Result {
        let mut st = self.0.state.lock();
        self.0.up(dev, &mut st)
    }

    fn stop(&self, dev: &net::Device) -> Result {
        let mut st = self.0.state.lock();
        self.0.down(dev, &mut st, None);
        Ok(())
    }

    fn start_xmit(&self, dev: &net::Device, skb: SkBuff) -> TxCode {
        let q = skb.queue_mapping() as usize;
        let pair = self.0.xmit_slots.get(q).map(|slot| slot.lock());
        match pair.as_deref() {
            Some(Some(p)) => p.poller().xmit(dev, skb),
            _ => {
                drop(pair);
                drop(skb);
                let a = &*self.0;
                a.xmit_down_drops.fetch_add(1, Ordering::Relaxed);
                if !a.xmit_down_logged.swap(true, Ordering::Relaxed) {
                    dev_err!(
                        &*a.pdev,
                        "start_xmit on queue {q} while the data path is down: packet dropped\n"
                    );
                }
            }
        }
        TxCode::Ok
    }

    fn get_stats64(&self, _dev: &net::Device, s: &mut Stats64) {
        for p in self.0.stats.iter() {
            let (tx, rx) = (p.tx.read(), p.rx.read());
            s.rx_packets += rx[rxs::PACKETS];
            s.rx_bytes += rx[rxs::BYTES];
            s.tx_packets += tx[txs::PACKETS];
            s.tx_bytes += tx[txs::BYTES];
            s.tx_dropped += tx[txs::DROPPED];
        }
        s.rx_dropped += self.0.rx_drops.load(Ordering::Relaxed);
        s.tx_dropped += self.0.tx_drops.load(Ordering::Relaxed);
        s.tx_dropped += self.0.xmit_down_drops.load(Ordering::Relaxed);
    }

    // Per-queue counters live as long as the adapter and keep counting
    // across `ethtool -L` and resets, so the device totals (what
    // `get_stats64` sums) are the live queues plus the base below.
    const QUEUE_STATS: bool = true;

    fn queue_stats_rx(&self, _dev: &net::Device, queue: u32) -> QueueStatsRx {
        self.0
            .stats
            .get(queue as usize)
            .map(|s| rx_qstats(&s.rx.read()))
            .unwrap_or_default()
    }

    fn queue_stats_tx(&self, _dev: &net::Device, queue: u32) -> QueueStatsTx {
        self.0
            .stats
            .get(queue as usize)
            .map(|s| tx_qstats(&s.tx.read()))
            .unwrap_or_default()
    }

    fn queue_stats_base(
        &self,
        _dev: &net::Device,
        live_rx: u32,
        live_tx: u32,
    ) -> (QueueStatsRx, QueueStatsTx) {
        // Every statistic we keep is reported, at 0 when all queues are live.
        let mut rx = rx_qstats(&[0; rxs::N]);
        let mut tx = tx_qstats(&[0; txs::N]);
        for s in self.0.stats.iter().skip(live_rx as usize) {
            rx.add(&rx_qstats(&s.rx.read()));
        }
        for s in self.0.stats.iter().skip(live_tx as usize) {
            tx.add(&tx_qstats(&s.tx.read()));
        }
        (rx, tx)
    }

    fn change_mtu(&self, dev: &net::Device, mtu: u32) -> Result {
        let st = self.0.state.lock();
        if st.up {
            self.0.set_mtu_feature(mtu)?;
        }
        dev.set_mtu(mtu);
        Ok(())
    }

    fn tx_timeout(&self, _dev: &net::Device, queue: u32) {
        self.0.tx_timeouts.fetch_add(1, Ordering::Relaxed);
        dev_err!(&*self.0.pdev, "TX timeout on queue {queue}\n");
        self.0.request_reset(reason::NETDEV_WD);
    }

    fn get_channels(&self, _dev: &net::Device) -> Channels {
        Channels {
            max_combined: self.0.mems.len() as u32,
            combined: self.0.state.lock().queues,
        }
    }

    fn set_channels(&self, dev: &net::Device, n: u32) -> Result {
        if n == 0 || n as usize > self.0.mems.len() {
            return Err(EINVAL);
        }
        self.0.reconfigure(dev, |st| {
            st.queues = n;
            for (i, e) in st.rss_table.iter_mut().enumerate() {
                *e = i as u32 % n;
            }
        })
    }

    fn get_ringparam(&self, _dev: &net::Device) -> RingParam {
        let st = self.0.state.lock();
        RingParam {
            rx_max: self.0.info.max_rx_depth,
            tx_max: self.0.info.max_tx_depth,
            rx: st.rx_ring,
            tx: st.tx_ring,
        }
    }

    fn set_ringparam(&self, dev: &net::Device, rx: u32, tx: u32) -> Result {
        let fit = |v: u32, max: u32| -> Result<u32> {
            if v < MIN_RING || v > max {
                return Err(EINVAL);
            }
            Ok(1u32 << (31 - v.leading_zeros()))
        };
        let rx = fit(rx, self.0.info.max_rx_depth)?;
        let tx = fit(tx, self.0.info.max_tx_depth)?;
        self.0.reconfigure(dev, |st| {
            st.rx_ring = rx;
            st.tx_ring = tx;
        })
    }

    fn get_coalesce(&self, _dev: &net::Device) -> Result<Coalesce> {
        if !self.0.info.moderation {
            return Err(eopnotsupp());
        }
        let m = self.0.moderation();
        Ok(Coalesce {
            rx_usecs: m.rx_usecs,
            tx_usecs: m.tx_usecs,
            adaptive_rx: m.adaptive,
        })
    }

    fn set_coalesce(&self, _dev: &net::Device, c: Coalesce) -> Result {
        if !self.0.info.moderation {
            return Err(eopnotsupp());
        }
        let max = self.0.info.intr_res.get().saturating_mul(0x7fff);
        if c.rx_usecs > max || c.tx_usecs > max {
            return Err(EINVAL);
        }
        let m = Moderation {
            rx_usecs: c.rx_usecs,
            tx_usecs: c.tx_usecs,
            adaptive: c.adaptive_rx,
        };
        self.0.moder.store(m.pack(), Ordering::Relaxed);
        Ok(())
    }

    fn stats_count(&self, _dev: &net::Device) -> u32 {
        let q = self.0.state.lock().queues;
        6 + q * STAT_NAMES.len() as u32
    }

    fn stats_strings(&self, _dev: &net::Device, out: &mut StringSet<'_>) {
        for (name, _) in self.0.global_stats() {
            out.push(format_args!("{name}"));
        }
        let q = self.0.state.lock().queues;
        for i in 0..q {
            for name in STAT_NAMES {
                out.push(format_args!("queue_{i}_{name}"));
            }
        }
    }

    fn stats_values(&self, _dev: &net::Device, out: &mut [u64]) {
        let mut k = 0;
        for (_, v) in self.0.global_stats() {
            if let Some(o) = out.get_mut(k) {
                *o = v;
            }
            k += 1;
        }
        let q = self.0.state.lock().queues as usize;
        for s in self.0.stats.iter().take(q) {
            for v in s.values() {
                if let Some(o) = out.get_mut(k) {
                    *o = v;
                }
                k += 1;
            }
        }
    }

    fn rx_ring_count(&self, _dev: &net::Device) -> Option<u32> {
        Some(self.0.state.lock().queues)
    }

    fn rxfh_key_size(&self, _dev: &net::Device) -> u32 {
        if self.0.info.rss {
            RSS_KEY_SIZE as u32
        } else {
            0
        }
    }

    fn rxfh_indir_size(&self, _dev: &net::Device) -> u32 {
        if self.0.info.rss {
            RSS_TABLE_SIZE as u32
        } else {
            0
        }
    }

    fn get_rxfh(
        &self,
        _dev: &net::Device,
        indir: Option<&mut [u32]>,
        key: Option<&mut [u8]>,
    ) -> Result {
        let st = self.0.state.lock();
        if let Some(t) = indir {
            for (o, v) in t.iter_mut().zip(st.rss_table.iter()) {
                *o = *v;
            }
        }
        if let Some(k) = key {
            for (o, v) in k.iter_mut().zip(st.rss_key.iter()) {
                *o = *v;
            }
        }
        Ok(())
    }

    fn set_rxfh(&self, _dev: &net::Device, indir: Option<&[u32]>, key: Option<&[u8]>) -> Result {
        if !self.0.info.rss {
            return Err(eopnotsupp());
        }
        let mut st = self.0.state.lock();
        if let Some(t) = indir {
            if t.len() != RSS_TABLE_SIZE || t.iter().any(|q| *q >= st.queues) {
                return Err(EINVAL);
            }
            st.rss_table.copy_from_slice(t);
        }
        if let Some(k) = key {
            if k.len() != RSS_KEY_SIZE {
                return Err(EINVAL);
            }
            st.rss_key.copy_from_slice(k);
        }
        if st.up {
            let pairs = core::mem::take(&mut st.pairs);
            let r = self.0.set_rss(&st, &pairs);
            st.pairs = pairs;
            r?;
        }
        Ok(())
    }
}

/// The 1 Hz watchdog.
struct Watchdog(Arc<Adapter>);

impl TimerHandler for Watchdog {
    fn expired(&self) -> Option<u32> {
        if self.0.health() {
            let _ = workqueue::system().enqueue(self.0.clone());
        }
        if self.0.removing.load(Ordering::Acquire) {
            None
        } else {
            Some(1000)
        }
    }
}

#[pin_data]
struct Rena {
    adapter: Arc<Adapter>,
    #[pin]
    timer: Mutex<Option<Pin<KBox<Timer<Watchdog>>>>>,
}

pci_device_table!(
    PCI_TABLE,
    MODULE_PCI_TABLE,
    <Rena as pci::Driver>::IdInfo,
    [
        (pci::DeviceId::from_id(0x1d0f, 0x0ec2), ()),
        (pci::DeviceId::from_id(0x1d0f, 0x1ec2), ()),
        (pci::DeviceId::from_id(0x1d0f, 0xec20), ()),
        (pci::DeviceId::from_id(0x1d0f, 0xec21), ()),
        (pci::DeviceId::from_id(0x1d0f, 0x0051), ()),
    ]
);

impl Adapter {
    /// Breaks the reference cycles (netdev data, management IRQ) and
    /// leaves the device reset.
    fn teardown(&self) {
        self.removing.store(true, Ordering::Release);
        // Unregistering stops the interface (down) first.
        drop(self.reg.lock().take());
        let _ = dev_reset(&self.pdev, &self.bar, reason::SHUTDOWN);
        drop(self.mgmt.lock().take());
    }
}

impl pci::Driver for Rena {
    type IdInfo = ();
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe(pdev: &pci::Device<Core>, _info: &()) -> Result<Pin<KBox<Self>>> {
        pdev.enable_device_mem()?;
        pdev.set_master();
        pdev.dma_set_mask_and_coherent(DmaMask::new::<48>())?;
        let bar = Regs::new(
            pdev,
            pdev.iomap_region_sized::<{ reg::SIZE }>(0, c_str!("rena"))?,
        )?;
        if let Err(e) = dev_reset(pdev, &bar, reason::NORMAL) {
            dev_err!(
                pdev,
                "device reset failed ({} register reads); deferring the probe\n",
                if bar.readless.is_some() {
                    "read-less"
                } else {
                    "plain"
                }
            );
            return Err(if e == rust_bindings::error::etimedout() {
                rust_bindings::error::eprobe_defer()
            } else {
                e
            });
        }
        let (ver, ctrl, caps) = match (
            bar.read32(reg::VERSION),
            bar.read32(reg::CONTROLLER_VERSION),
            bar.read32(reg::CAPS),
        ) {
            (Ok(v), Ok(c), Ok(caps)) => (v, c, caps),
            _ => {
                dev_err!(pdev, "cannot read the version registers\n");
                return Err(rust_bindings::error::eprobe_defer());
            }
        };
        if ctrl & 0xff_ffff == 0 {
            dev_err!(pdev, "controller version {ctrl:#x} too old\n");
            return Err(ENODEV);
        }
        let width = (caps >> 8) & 0xff;
        if !(32..=48).contains(&width) {
            dev_err!(pdev, "bad DMA width {width}\n");
            return Err(EINVAL);
        }
        pdev.dma_set_mask_and_coherent(DmaMask::try_new(width)?)?;
        let admin = Admin::new(pdev)?;
        let aenq_ring =
            CoherentAllocation::alloc_coherent(bound(pdev), aenq::DEPTH * ENTRY_WORDS, GFP_KERNEL)?;
        admin_rings(&bar, &admin, &aenq_ring);
        bar.write32(1, reg::INTR_MASK);
        let info = negotiate(pdev, &bar, &admin)?;
        let want = num_online_cpus().min(info.max_queues).min(32);
        let vectors = pdev.alloc_irq_vectors(2, 1 + want, pci::IrqTypes::MSIX)?;
        // At least 2 vectors were granted: management + one pair.
        let nq = vectors.len().saturating_sub(1).max(1);
        let mut mems = KVec::with_capacity(nq as usize, GFP_KERNEL)?;
        let mut stats = KVec::with_capacity(nq as usize, GFP_KERNEL)?;
        let mut xmit_slots = KVec::with_capacity(nq as usize, GFP_KERNEL)?;
        for _ in 0..nq {
            xmit_slots.push(KBox::pin_init(new_spinlock!(None), GFP_KERNEL)?, GFP_KERNEL)?;
            mems.push(
                RingMem::new(pdev, info.max_tx_depth, info.max_rx_depth)?,
                GFP_KERNEL,
            )?;
            stats.push(KBox::pin_init(PairStats::new(), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        let rss_buf =
            CoherentAllocation::alloc_coherent(bound(pdev), RSS_TABLE_SIZE + 12, GFP_KERNEL)?;
        let ring = |max: u32| DEFAULT_RING.min(max);
        let mut rss_table = [0u32; RSS_TABLE_SIZE];
        // Spread over the pairs (no division-by-zero path: nq >= 1).
        let pairs = core::num::NonZeroU32::new(nq).unwrap_or(core::num::NonZeroU32::MIN);
        for (i, e) in rss_table.iter_mut().enumerate() {
            *e = i as u32 % pairs;
        }
        let (bar2, admin2) = (bar.clone(), admin.clone());
        let adapter = Arc::pin_init(
            pin_init!(Adapter {
                pdev: ARef::from(normal(pdev)),
                bar: bar2,
                admin: admin2,
                aenq: aenq_ring,
                aenq_state: TryLock::new(AenqState { head: 0, phase: 1 }),
                info,
                vectors,
                mems,
                rss_buf,
                state <- new_mutex!(State {
                    queues: nq,
                    tx_ring: ring(info.max_tx_depth),
                    rx_ring: ring(info.max_rx_depth),
                    rss_table,
                    rss_key: DEFAULT_KEY,
                    pairs: KVec::new(),
                    up: false,
                }),
                moder: AtomicU64::new(
                    Moderation { rx_usecs: 20, tx_usecs: 64, adaptive: info.moderation }.pack()
                ),
                reg <- new_mutex!(None),
                mgmt <- new_mutex!(None),
                work <- new_work!("rena::service"),
                stats,
                tx_live: AtomicBool::new(false),
                link_up: AtomicBool::new(false),
                link_event: AtomicBool::new(false),
                keepalive_ms: AtomicU64::new(0),
                reset_reason: AtomicU32::new(u32::MAX),
                removing: AtomicBool::new(false),
                resets: AtomicU32::new(0),
                reset_fail: AtomicU32::new(0),
                xmit_slots,
                tx_timeouts: AtomicU32::new(0),
                log_limit: AtomicU32::new(0),
                rx_drops: AtomicU64::new(0),
                tx_drops: AtomicU64::new(0),
                xmit_down_drops: AtomicU64::new(0),
                xmit_down_logged: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )?;
        let res = (|| -> Result {
            let req = adapter.vectors.request(0)?;
            let mgmt = KBox::pin_init(
                irq::Registration::new(
                    req,
                    irq::Flags::NONE,
                    c_str!("rena-mgmt"),
                    MgmtIrq(adapter.clone()),
                ),
                GFP_KERNEL,
            )?;
            *adapter.mgmt.lock() = Some(mgmt);
            bar.write32(0, reg::INTR_MASK);
            admin.polling.store(false, Ordering::Release);
            bar.write32(aenq::DEPTH as u32, reg::AENQ_HEAD_DB);
            adapter.keepalive_ms.store(jiffies_ms(), Ordering::Relaxed);
            let cfg = net::Config {
                queues: nq,
                max_mtu: info.max_mtu,
                mac: &info.mac,
                tx_csum: info.tx_csum,
                rx_csum: info.rx_csum,
                tso4: info.tso4,
                tso6: info.tso6,
            };
            let parent: &rust_bindings::device::Device = bound(pdev);
            let reg = net::Registration::new(
                parent,
                &cfg,
                Arc::new(NetData(adapter.clone()), GFP_KERNEL)?,
            )?;
            let mut slot = adapter.reg.lock();
            *slot = Some(reg);
            if let Some(r) = slot.as_mut() {
                r.device().set_carrier(false);
                r.register()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            adapter.teardown();
            return Err(e);
        }
        let timer = KBox::pin_init(Timer::new(Watchdog(adapter.clone())), GFP_KERNEL);
        let timer = match timer {
            Ok(t) => t,
            Err(e) => {
                adapter.teardown();
                return Err(e);
            }
        };
        timer.start(1000);
        dev_info!(
            pdev,
            "ENA v{}.{} ctrl {:#x}: MAC {}, {} queue pair(s), rings tx {} rx {}, MTU <= {}, {} register reads\n",
            (ver >> 8) & 0xff,
            ver & 0xff,
            ctrl,
            MacAddr(info.mac),
            nq,
            ring(info.max_tx_depth),
            ring(info.max_rx_depth),
            info.max_mtu,
            if adapter.bar.readless.is_some() {
                "read-less"
            } else {
                "plain"
            }
        );
        let adapter2 = adapter.clone();
        let this = KBox::pin_init(
            pin_init!(Rena {
                adapter: adapter2,
                timer <- new_mutex!(Some(timer)),
            }),
            GFP_KERNEL,
        );
        if this.is_err() {
            adapter.teardown();
        }
        this
    }

    fn unbind(_dev: &pci::Device<Core>, this: Pin<&Self>) {
        this.adapter.removing.store(true, Ordering::Release);
        // The watchdog is the only one that queues the service work: once
        // it is gone, wait for work it queued. That work holds the adapter;
        // had it run after `unbind`, the adapter's last reference (and its
        // IRQ vectors, BAR and DMA memory) would drop after the device's
        // managed resources were released (a NULL dereference in
        // pci_free_irq_vectors once the MSI data is gone).
        drop(this.timer.lock().take());
        workqueue_ext::flush(&this.adapter.work);
        this.adapter.teardown();
    }
}

module_pci_driver! {
    type: Rena,
    name: "rena",
    author: "rfl-drivers",
    description: "Amazon ENA network driver in Rust",
    license: "GPL",
}
