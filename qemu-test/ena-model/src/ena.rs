//! The ENA device proper: BAR0 registers, admin queue, AENQ, IO queues,
//! RSS, checksum offload, interrupt moderation, statistics and fault
//! injection. Everything here works on guest memory through [`DmaMap`] and
//! treats every value coming from the guest as untrusted.

use crate::mem::{DmaError, DmaMap};
use crate::pkt;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

// ---- BAR0 register offsets ------------------------------------------------
pub const REG_VERSION: u64 = 0x00;
pub const REG_CTRL_VERSION: u64 = 0x04;
pub const REG_CAPS: u64 = 0x08;
pub const REG_CAPS_EXT: u64 = 0x0c;
pub const REG_AQ_BASE_LO: u64 = 0x10;
pub const REG_AQ_BASE_HI: u64 = 0x14;
pub const REG_AQ_CAPS: u64 = 0x18;
pub const REG_ACQ_BASE_LO: u64 = 0x20;
pub const REG_ACQ_BASE_HI: u64 = 0x24;
pub const REG_ACQ_CAPS: u64 = 0x28;
pub const REG_AQ_DB: u64 = 0x2c;
pub const REG_ACQ_TAIL: u64 = 0x30;
pub const REG_AENQ_CAPS: u64 = 0x34;
pub const REG_AENQ_BASE_LO: u64 = 0x38;
pub const REG_AENQ_BASE_HI: u64 = 0x3c;
pub const REG_AENQ_HEAD_DB: u64 = 0x40;
pub const REG_AENQ_TAIL: u64 = 0x44;
pub const REG_INTR_MASK: u64 = 0x4c;
pub const REG_DEV_CTL: u64 = 0x54;
pub const REG_DEV_STS: u64 = 0x58;
pub const REG_MMIO_REG_READ: u64 = 0x5c;
pub const REG_MMIO_RESP_LO: u64 = 0x60;
pub const REG_MMIO_RESP_HI: u64 = 0x64;
pub const REG_RSS_IND_ENTRY_UPDATE: u64 = 0x68;

/// Device-chosen per-queue register windows inside BAR0.
pub const SQ_DB_BASE: u64 = 0x1000;
pub const UNMASK_BASE: u64 = 0x2000;
pub const NUMA_BASE: u64 = 0x3000;
pub const BAR0_SIZE: u64 = 0x4000;

const DEV_STS_READY: u32 = 1 << 0;
const DEV_STS_RESET_IN_PROGRESS: u32 = 1 << 3;
const DEV_STS_FATAL: u32 = 1 << 5;

pub const MAX_QUEUES: u16 = 32;
pub const MAX_DEPTH: u16 = 4096;
const ADMIN_ENTRY: u64 = 64;
const AENQ_ENTRY: u64 = 64;
const MAX_TX_DESCS_PER_PKT: usize = 19;
const MAX_RX_DESCS_PER_PKT: usize = 16;
const RSS_TABLE_LOG: u16 = 7;
const RSS_TABLE: usize = 1 << RSS_TABLE_LOG;
const BACKLOG_FRAMES: usize = 1024;

// Admin opcodes and status codes.
const OP_CREATE_SQ: u8 = 1;
const OP_DESTROY_SQ: u8 = 2;
const OP_CREATE_CQ: u8 = 3;
const OP_DESTROY_CQ: u8 = 4;
const OP_GET_FEATURE: u8 = 8;
const OP_SET_FEATURE: u8 = 9;
const OP_GET_STATS: u8 = 11;
pub const ST_OK: u8 = 0;
pub const ST_RESOURCE: u8 = 1;
pub const ST_UNSUPPORTED: u8 = 3;
pub const ST_MALFORMED: u8 = 4;
pub const ST_ILLEGAL: u8 = 5;
pub const ST_BUSY: u8 = 7;

// Feature ids.
const F_DEVICE_ATTRIBUTES: u8 = 1;
const F_MAX_QUEUES_NUM: u8 = 2;
const F_MAX_QUEUES_EXT: u8 = 7;
const F_RSS_HASH_FUNCTION: u8 = 10;
const F_STATELESS_OFFLOAD: u8 = 11;
const F_RSS_IND_TABLE: u8 = 12;
const F_MTU: u8 = 14;
const F_RSS_HASH_INPUT: u8 = 18;
const F_INTR_MODERATION: u8 = 20;
const F_AENQ_CONFIG: u8 = 26;
const F_LINK_CONFIG: u8 = 27;
const F_HOST_ATTR: u8 = 28;

// AENQ groups.
pub const AENQ_LINK_CHANGE: u16 = 0;
pub const AENQ_FATAL_ERROR: u16 = 1;
pub const AENQ_WARNING: u16 = 2;
pub const AENQ_KEEP_ALIVE: u16 = 4;
const AENQ_SUPPORTED: u32 = 0x1f;

const TOEPLITZ: u32 = 1;

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn addr48(lo: u32, hi: u16) -> u64 {
    lo as u64 | (hi as u64) << 32
}

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub mac: [u8; 6],
    pub queues: u16,
    /// Revision bit 0 clear: the driver reads registers through DMA.
    pub readless: bool,
    /// Honour the rx/tx delays of unmask writes (F(20) advertised).
    pub moderation: bool,
    pub max_mtu: u32,
}

impl Config {
    pub fn msix_vectors(&self) -> u16 {
        self.queues + 1
    }
}

/// Run-time fault injection. Counters apply to the next N events.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    pub drop_tx_comp: u32,
    pub drop_rx_comp: u32,
    pub corrupt_tx_req_id: u32,
    pub corrupt_rx_req_id: u32,
    pub bad_rx_len: u32,
    pub stale_phase: u32,
    /// Only TX (`Some(true)`) or only RX (`Some(false)`) completions get the
    /// stale phase; `None`: whichever comes next.
    pub stale_phase_tx: Option<bool>,
    pub stop_keepalive: bool,
    pub admin_delay_ms: u32,
    /// How many of the next admin commands get `admin_delay_ms`.
    pub admin_delay_count: u32,
    pub drop_admin_irq: u32,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub tx_pkts: u64,
    pub tx_bytes: u64,
    pub rx_pkts: u64,
    pub rx_bytes: u64,
    pub rx_drops: u64,
    pub tx_drops: u64,
    pub irqs: u64,
    pub guest_errors: u64,
    pub dma_errors: u64,
    pub admin_cmds: u64,
    /// TX packets (without TSO) whose first descriptor asked for L4
    /// checksum offload, and how many of them were CHECKSUM_PARTIAL
    /// (the driver left the pseudo-header sum for the device to complete).
    pub tx_csum: u64,
    pub tx_csum_partial: u64,
    /// TX packets with TSO, and the segments the device made of them.
    pub tso_pkts: u64,
    pub tso_segs: u64,
    /// RX packets whose L4 checksum the device verified, and the bad ones.
    pub rx_csum_checked: u64,
    pub rx_csum_bad: u64,
    /// Register reads the driver made by a BAR0 load, and through the
    /// read-less protocol (MMIO_REG_READ): with `--readless` a driver that
    /// honours the mode makes none of the first kind.
    pub reg_reads_direct: u64,
    pub reg_reads_readless: u64,
    /// RX frames delivered to the driver over 1514 B (an untagged frame
    /// without FCS at a 1500-byte MTU): proof that jumbo frames crossed.
    pub rx_jumbo: u64,
}

/// How often each distinct interval value was asked for in unmask-register
/// writes: what the driver's static or adaptive (lib/dim) interrupt
/// moderation actually programmed, for the guest tests to compare before
/// and after a load. Bounded: values past the first [`Self::MAX_VALUES`]
/// distinct ones are only counted in `other`.
#[derive(Default, Debug, Clone)]
pub struct IntervalHist {
    /// (interval in device units, writes), sorted by interval.
    pub counts: Vec<(u32, u64)>,
    pub other: u64,
}

impl IntervalHist {
    const MAX_VALUES: usize = 32;

    fn add(&mut self, v: u32) {
        match self.counts.binary_search_by_key(&v, |&(k, _)| k) {
            Ok(i) => self.counts[i].1 += 1,
            Err(i) if self.counts.len() < Self::MAX_VALUES => self.counts.insert(i, (v, 1)),
            Err(_) => self.other += 1,
        }
    }

    /// `VALUExCOUNT ...` (then `otherxN` if any), or `-` when empty, so the
    /// field is never missing from the status line.
    fn render(&self) -> String {
        let mut s: Vec<String> = self
            .counts
            .iter()
            .map(|(v, n)| format!("{v}x{n}"))
            .collect();
        if self.other > 0 {
            s.push(format!("otherx{}", self.other));
        }
        if s.is_empty() {
            "-".into()
        } else {
            s.join(" ")
        }
    }
}

#[derive(Default)]
pub struct Vector {
    pub fd: Option<OwnedFd>,
    pub masked: bool,
    pending_rx: bool,
    pending_tx: bool,
    deadline: Option<Instant>,
    rx_delay: u32,
    tx_delay: u32,
    pub fired: u64,
    /// Writes to this vector's unmask register, and the rx/tx intervals
    /// they asked for (cumulative over resets, like `Stats`).
    pub unmask_writes: u64,
    pub rx_hist: IntervalHist,
    pub tx_hist: IntervalHist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Tx,
    Rx,
}

/// Stored TX meta (meta_store): parsed and kept per queue as the driver
/// expects; the geometry is only needed for TSO, which is not offered yet.
#[derive(Debug, Clone, Copy, Default)]
#[allow(dead_code)]
struct Meta {
    l3_off: u8,
    l3_len: u8,
    l4_len: u8,
    mss: u16,
}

struct Sq {
    dir: Dir,
    cq: usize,
    depth: u16,
    base: u64,
    head: u16,
    tail: u16,
    meta: Meta,
    broken: bool,
    backlog: VecDeque<Vec<u8>>,
    pkts: u64,
    bytes: u64,
}

struct Cq {
    depth: u16,
    base: u64,
    words: u8,
    vector: usize,
    tail: u16,
    bound: bool,
}

impl Cq {
    fn slot(&self) -> (u64, u8) {
        let idx = (self.tail & (self.depth - 1)) as u64;
        let phase = if (self.tail / self.depth) & 1 == 0 {
            1
        } else {
            0
        };
        (self.base + idx * (self.words as u64) * 4, phase)
    }
}

/// RX completion descriptor of one buffer.
struct RxBuf {
    req_id: u16,
    addr: u64,
    len: usize,
}

pub struct Ena {
    pub cfg: Config,
    pub mem: DmaMap,
    pub vectors: Vec<Vector>,
    pub stats: Stats,
    pub faults: Faults,
    pub link_up: bool,
    /// Frames the guest transmitted, to be handed to the backend by the caller.
    pub tx_out: Vec<Vec<u8>>,
    /// Set when an earlier timer deadline was armed (the timer thread should wake).
    pub timer_kick: bool,
    start: Instant,

    // registers
    aq_base: u64,
    aq_caps: u32,
    acq_base: u64,
    acq_caps: u32,
    aenq_base: u64,
    aenq_caps: u32,
    aenq_head_db: u16,
    intr_mask: u32,
    dev_sts: u32,
    mmio_resp: u64,
    pub last_reset_reason: u32,
    pub resets: u64,
    /// How often each DEV_CTL reset reason (4 bits) was seen.
    pub reset_reasons: [u64; 16],

    aq_head: u16,
    acq_tail: u16,
    aenq_tail: u16,
    aenq_pending: VecDeque<[u8; 64]>,
    link_announced: bool,
    next_keepalive: Instant,
    delayed_admin: VecDeque<(Instant, [u8; 64])>,

    // features
    aenq_enabled: u32,
    mtu: u32,
    rss_func: u32,
    rss_init: u32,
    rss_key: [u8; 40],
    rss_table: [u16; RSS_TABLE],
    rss_fields: [u16; 16],
    rss_sort: u16,

    sqs: Vec<Option<Sq>>,
    cqs: Vec<Option<Cq>>,
    scratch: Vec<u8>,
}

fn log(name: &str, msg: std::fmt::Arguments<'_>) {
    eprintln!("ena-model[{name}]: {msg}");
}

macro_rules! elog {
    ($s:expr, $($a:tt)*) => { log(&$s.cfg.name, format_args!($($a)*)) };
}

impl Ena {
    pub fn new(cfg: Config) -> Self {
        let nvec = cfg.msix_vectors() as usize;
        let q = cfg.queues as usize;
        let mut e = Ena {
            vectors: (0..nvec).map(|_| Vector::default()).collect(),
            mem: DmaMap::new(),
            stats: Stats::default(),
            faults: Faults::default(),
            link_up: true,
            tx_out: Vec::new(),
            timer_kick: false,
            start: Instant::now(),
            aq_base: 0,
            aq_caps: 0,
            acq_base: 0,
            acq_caps: 0,
            aenq_base: 0,
            aenq_caps: 0,
            aenq_head_db: 0,
            intr_mask: 0,
            dev_sts: DEV_STS_READY,
            mmio_resp: 0,
            last_reset_reason: 0,
            resets: 0,
            reset_reasons: [0; 16],
            aq_head: 0,
            acq_tail: 0,
            aenq_tail: 0,
            aenq_pending: VecDeque::new(),
            link_announced: false,
            next_keepalive: Instant::now(),
            delayed_admin: VecDeque::new(),
            aenq_enabled: 0,
            mtu: 1500,
            rss_func: 0,
            rss_init: 0,
            rss_key: [0; 40],
            rss_table: [0; RSS_TABLE],
            rss_fields: [0; 16],
            rss_sort: 0,
            sqs: (0..2 * q).map(|_| None).collect(),
            cqs: (0..2 * q).map(|_| None).collect(),
            scratch: Vec::with_capacity(64),
            cfg,
        };
        e.reset_state();
        e
    }

    fn guest_error(&mut self, msg: String) {
        self.stats.guest_errors += 1;
        log(&self.cfg.name, format_args!("guest error: {msg}"));
    }

    fn dma_error(&mut self, what: &str, e: DmaError) {
        self.stats.dma_errors += 1;
        log(&self.cfg.name, format_args!("{what}: {e}"));
    }

    /// Everything the driver programs goes back to its power-on value.
    fn reset_state(&mut self) {
        self.aq_base = 0;
        self.aq_caps = 0;
        self.acq_base = 0;
        self.acq_caps = 0;
        self.aenq_base = 0;
        self.aenq_caps = 0;
        self.aenq_head_db = 0;
        self.intr_mask = 0;
        self.mmio_resp = 0;
        self.aq_head = 0;
        self.acq_tail = 0;
        self.aenq_tail = 0;
        self.aenq_pending.clear();
        self.link_announced = false;
        self.delayed_admin.clear();
        self.aenq_enabled = 0;
        self.mtu = 1500;
        self.rss_func = TOEPLITZ;
        self.rss_init = 0xffff_ffff;
        self.rss_key = DEFAULT_KEY;
        for (i, t) in self.rss_table.iter_mut().enumerate() {
            *t = (i % self.cfg.queues as usize) as u16;
        }
        self.rss_fields = [0; 16];
        for p in 0..4 {
            self.rss_fields[p] = 0x3c;
        }
        self.rss_fields[4] = 0x0c;
        self.rss_fields[5] = 0x0c;
        self.rss_fields[6] = 0x0c;
        self.rss_fields[7] = 0x03;
        self.rss_sort = 0x6;
        for s in self.sqs.iter_mut() {
            *s = None;
        }
        for c in self.cqs.iter_mut() {
            *c = None;
        }
        for v in self.vectors.iter_mut() {
            v.masked = true;
            v.pending_rx = false;
            v.pending_tx = false;
            v.deadline = None;
        }
    }

    /// vfio-user DEVICE_RESET (PCI function level reset).
    pub fn flr(&mut self) {
        self.reset_state();
        self.dev_sts = DEV_STS_READY;
    }

    fn revision(&self) -> u8 {
        if self.cfg.readless { 0 } else { 1 }
    }

    pub fn pci_revision(&self) -> u8 {
        self.revision()
    }

    fn caps(&self) -> u32 {
        // reset_timeout 16 × 100 ms, DMA width 48, admin timeout default.
        (16 << 1) | (48 << 8)
    }

    pub fn supported_features(&self) -> u32 {
        let mut f = (1 << F_DEVICE_ATTRIBUTES)
            | (1 << F_MAX_QUEUES_EXT)
            | (1 << F_STATELESS_OFFLOAD)
            | (1 << F_AENQ_CONFIG)
            | (1 << F_MTU)
            | (1 << F_RSS_HASH_FUNCTION)
            | (1 << F_RSS_IND_TABLE)
            | (1 << F_RSS_HASH_INPUT)
            | (1 << F_LINK_CONFIG)
            | (1 << F_HOST_ATTR);
        if self.cfg.moderation {
            f |= 1 << F_INTR_MODERATION;
        }
        f
    }

    // ---- registers ---------------------------------------------------------

    /// A register read by the driver's load from BAR0 (counted; the
    /// read-less path and the model's own reads use `mmio_read`).
    pub fn bar_read(&mut self, off: u64) -> u32 {
        self.stats.reg_reads_direct += 1;
        self.mmio_read(off)
    }

    pub fn mmio_read(&mut self, off: u64) -> u32 {
        match off {
            REG_VERSION => 0x0000_0200,
            REG_CTRL_VERSION => 0x0000_0001,
            REG_CAPS => self.caps(),
            REG_CAPS_EXT => 0,
            REG_DEV_STS => self.dev_sts,
            REG_AQ_BASE_LO => self.aq_base as u32,
            REG_AQ_BASE_HI => (self.aq_base >> 32) as u32,
            REG_AQ_CAPS => self.aq_caps,
            REG_ACQ_BASE_LO => self.acq_base as u32,
            REG_ACQ_BASE_HI => (self.acq_base >> 32) as u32,
            REG_ACQ_CAPS => self.acq_caps,
            REG_AENQ_CAPS => self.aenq_caps,
            REG_AENQ_BASE_LO => self.aenq_base as u32,
            REG_AENQ_BASE_HI => (self.aenq_base >> 32) as u32,
            REG_AENQ_HEAD_DB => self.aenq_head_db as u32,
            REG_AENQ_TAIL => self.aenq_tail as u32,
            REG_ACQ_TAIL => self.acq_tail as u32,
            REG_INTR_MASK => self.intr_mask,
            _ => 0,
        }
    }

    pub fn mmio_write(&mut self, off: u64, val: u32) {
        match off {
            REG_AQ_BASE_LO => self.aq_base = (self.aq_base & !0xffff_ffff) | val as u64,
            REG_AQ_BASE_HI => self.aq_base = (self.aq_base & 0xffff_ffff) | (val as u64) << 32,
            REG_AQ_CAPS => self.aq_caps = val,
            REG_ACQ_BASE_LO => self.acq_base = (self.acq_base & !0xffff_ffff) | val as u64,
            REG_ACQ_BASE_HI => self.acq_base = (self.acq_base & 0xffff_ffff) | (val as u64) << 32,
            REG_ACQ_CAPS => self.acq_caps = val,
            REG_AQ_DB => self.admin_doorbell(val as u16),
            REG_AENQ_CAPS => self.aenq_caps = val,
            REG_AENQ_BASE_LO => self.aenq_base = (self.aenq_base & !0xffff_ffff) | val as u64,
            REG_AENQ_BASE_HI => {
                self.aenq_base = (self.aenq_base & 0xffff_ffff) | (val as u64) << 32
            }
            REG_AENQ_HEAD_DB => self.aenq_doorbell(val as u16),
            REG_INTR_MASK => self.intr_mask = val,
            REG_DEV_CTL => self.dev_ctl(val),
            REG_MMIO_REG_READ => self.readless(val),
            REG_MMIO_RESP_LO => self.mmio_resp = (self.mmio_resp & !0xffff_ffff) | val as u64,
            REG_MMIO_RESP_HI => {
                self.mmio_resp = (self.mmio_resp & 0xffff_ffff) | (val as u64) << 32
            }
            REG_RSS_IND_ENTRY_UPDATE => {}
            o if (SQ_DB_BASE..UNMASK_BASE).contains(&o) && o % 4 == 0 => {
                let idx = ((o - SQ_DB_BASE) / 8) as usize;
                let rx = (o - SQ_DB_BASE) % 8 == 4;
                self.sq_doorbell(idx, rx, val as u16);
            }
            o if (UNMASK_BASE..NUMA_BASE).contains(&o) && o % 4 == 0 => {
                self.unmask((o - UNMASK_BASE) as usize / 4, val);
            }
            o if (NUMA_BASE..BAR0_SIZE).contains(&o) => {}
            o => self.guest_error(format!("write {val:#x} to unknown BAR0 offset {o:#x}")),
        }
    }

    fn readless(&mut self, val: u32) {
        let req_id = val as u16;
        let off = (val >> 16) as u64;
        if self.mmio_resp == 0 {
            self.guest_error("read-less request with no response buffer".into());
            return;
        }
        self.stats.reg_reads_readless += 1;
        let v = self.mmio_read(off);
        let mut b = [0u8; 8];
        put16(&mut b, 0, req_id);
        put16(&mut b, 2, off as u16);
        put32(&mut b, 4, v);
        if let Err(e) = self.mem.publish(self.mmio_resp, &b, 0..2) {
            self.dma_error("read-less response", e);
        }
    }

    fn dev_ctl(&mut self, val: u32) {
        if val & 1 != 0 {
            self.last_reset_reason = val >> 28;
            self.resets += 1;
            self.reset_reasons[(val >> 28) as usize] += 1;
            elog!(self, "device reset (reason {})", self.last_reset_reason);
            let link = self.link_up;
            self.reset_state();
            self.link_up = link;
            self.dev_sts = DEV_STS_READY | DEV_STS_RESET_IN_PROGRESS;
        } else if self.dev_sts & DEV_STS_RESET_IN_PROGRESS != 0 {
            self.dev_sts = DEV_STS_READY;
        }
    }

    // ---- interrupts ---------------------------------------------------------

    fn signal(&mut self, v: usize) {
        let Some(vec) = self.vectors.get_mut(v) else {
            return;
        };
        vec.fired += 1;
        self.stats.irqs += 1;
        if let Some(fd) = &vec.fd {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writing 8 bytes from a live buffer to an eventfd we own.
            let r = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), 8) };
            if r != 8 {
                log(
                    &self.cfg.name,
                    format_args!(
                        "eventfd write for vector {v} failed: {}",
                        std::io::Error::last_os_error()
                    ),
                );
            }
        }
    }

    /// A completion landed on IO vector `v`: fire now, after the moderation
    /// delay, or remember it until the driver unmasks.
    fn cq_event(&mut self, v: usize, rx: bool, now: Instant) {
        let moderation = self.cfg.moderation;
        let Some(vec) = self.vectors.get_mut(v) else {
            return;
        };
        if rx {
            vec.pending_rx = true;
        } else {
            vec.pending_tx = true;
        }
        if vec.masked || vec.deadline.is_some() {
            return;
        }
        let delay = if !moderation {
            0
        } else if rx {
            vec.rx_delay
        } else {
            vec.tx_delay
        };
        if delay == 0 {
            vec.masked = true;
            vec.pending_rx = false;
            vec.pending_tx = false;
            self.signal(v);
        } else {
            vec.deadline = Some(now + Duration::from_micros(delay as u64));
            self.timer_kick = true;
        }
    }

    fn unmask(&mut self, v: usize, val: u32) {
        if v == 0 || v >= self.vectors.len() {
            self.guest_error(format!("unmask write for vector {v} ({val:#x})"));
            return;
        }
        let vec = &mut self.vectors[v];
        vec.rx_delay = val & 0x7fff;
        vec.tx_delay = (val >> 15) & 0x7fff;
        vec.unmask_writes += 1;
        vec.rx_hist.add(vec.rx_delay);
        vec.tx_hist.add(vec.tx_delay);
        if val & (1 << 30) == 0 {
            return;
        }
        vec.masked = false;
        let (rx, tx) = (vec.pending_rx, vec.pending_tx);
        vec.pending_rx = false;
        vec.pending_tx = false;
        let now = Instant::now();
        if rx {
            self.cq_event(v, true, now);
        }
        if tx {
            self.cq_event(v, false, now);
        }
    }

    /// Timer work: moderation deadlines, delayed admin completions and
    /// keep-alives. Returns when it wants to be called next.
    pub fn tick(&mut self, now: Instant) -> Instant {
        let mut next = now + Duration::from_secs(1);
        for v in 0..self.vectors.len() {
            if let Some(d) = self.vectors[v].deadline {
                if d <= now {
                    let vec = &mut self.vectors[v];
                    vec.deadline = None;
                    vec.masked = true;
                    vec.pending_rx = false;
                    vec.pending_tx = false;
                    self.signal(v);
                } else {
                    next = next.min(d);
                }
            }
        }
        while let Some((t, _)) = self.delayed_admin.front() {
            if *t > now {
                next = next.min(*t);
                break;
            }
            if let Some((_, c)) = self.delayed_admin.pop_front() {
                self.post_acq(c);
            }
        }
        if now >= self.next_keepalive {
            self.next_keepalive = now + Duration::from_secs(1);
            if !self.faults.stop_keepalive {
                let mut d = [0u8; 48];
                put32(&mut d, 0, self.stats.rx_drops as u32);
                put32(&mut d, 4, (self.stats.rx_drops >> 32) as u32);
                put32(&mut d, 8, self.stats.tx_drops as u32);
                put32(&mut d, 12, (self.stats.tx_drops >> 32) as u32);
                self.aenq_post(AENQ_KEEP_ALIVE, 0, &d);
            }
        }
        next.min(self.next_keepalive)
    }

    // ---- AENQ -------------------------------------------------------------------

    fn aenq_depth(&self) -> u16 {
        let d = (self.aenq_caps & 0xffff) as u16;
        if d.is_power_of_two() { d } else { 0 }
    }

    pub fn aenq_post(&mut self, group: u16, syndrome: u16, data: &[u8; 48]) {
        if self.aenq_enabled & (1 << group) == 0 {
            return;
        }
        let mut e = [0u8; 64];
        put16(&mut e, 0, group);
        put16(&mut e, 2, syndrome);
        let ts = self.start.elapsed().as_millis() as u64;
        put32(&mut e, 8, ts as u32);
        put32(&mut e, 12, (ts >> 32) as u32);
        e[16..].copy_from_slice(data);
        if self.aenq_pending.len() >= 64 {
            self.aenq_pending.pop_front();
        }
        self.aenq_pending.push_back(e);
        self.aenq_flush();
    }

    fn aenq_flush(&mut self) {
        let depth = self.aenq_depth();
        if depth == 0 || self.aenq_base == 0 {
            return;
        }
        let mut posted = false;
        while let Some(mut e) = self.aenq_pending.front().copied() {
            if (self.aenq_head_db.wrapping_sub(self.aenq_tail) as i16) <= 0 {
                break;
            }
            let slot = (self.aenq_tail & (depth - 1)) as u64;
            e[4] = if (self.aenq_tail / depth) & 1 == 0 {
                1
            } else {
                0
            };
            let addr = self.aenq_base.wrapping_add(slot * AENQ_ENTRY);
            if let Err(err) = self.mem.publish(addr, &e, 4..8) {
                self.dma_error("AENQ entry", err);
                break;
            }
            self.aenq_pending.pop_front();
            self.aenq_tail = self.aenq_tail.wrapping_add(1);
            posted = true;
        }
        if posted {
            self.signal(0);
        }
    }

    fn aenq_doorbell(&mut self, head: u16) {
        self.aenq_head_db = head;
        if !self.link_announced && self.aenq_base != 0 {
            self.link_announced = true;
            self.post_link();
        }
        self.aenq_flush();
    }

    fn post_link(&mut self) {
        let mut d = [0u8; 48];
        put32(&mut d, 0, self.link_up as u32);
        self.aenq_post(AENQ_LINK_CHANGE, 0, &d);
    }

    pub fn set_link(&mut self, up: bool) {
        self.link_up = up;
        if self.link_announced {
            self.post_link();
        }
    }

    pub fn raise_fatal(&mut self) {
        self.dev_sts |= DEV_STS_FATAL;
        self.aenq_post(AENQ_FATAL_ERROR, 0, &[0; 48]);
    }

    // ---- admin queue --------------------------------------------------------

    fn admin_doorbell(&mut self, tail: u16) {
        let depth = (self.aq_caps & 0xffff) as u16;
        let acq_depth = (self.acq_caps & 0xffff) as u16;
        if !depth.is_power_of_two() || !acq_depth.is_power_of_two() || self.aq_base == 0 {
            self.guest_error(format!(
                "admin doorbell {tail} with AQ caps {:#x} ACQ caps {:#x} base {:#x}",
                self.aq_caps, self.acq_caps, self.aq_base
            ));
            return;
        }
        let pending = tail.wrapping_sub(self.aq_head);
        if pending > depth {
            self.guest_error(format!(
                "admin doorbell {tail} is {pending} entries past head {} (depth {depth})",
                self.aq_head
            ));
            self.aq_head = tail;
            return;
        }
        while self.aq_head != tail {
            let slot = (self.aq_head & (depth - 1)) as u64;
            let mut cmd = [0u8; 64];
            let addr = self.aq_base.wrapping_add(slot * ADMIN_ENTRY);
            self.aq_head = self.aq_head.wrapping_add(1);
            if let Err(e) = self.mem.read(addr, &mut cmd) {
                self.dma_error("admin command fetch", e);
                continue;
            }
            self.stats.admin_cmds += 1;
            let mut resp = [0u8; 64];
            let status = self.admin_command(&cmd, &mut resp);
            put16(&mut resp, 0, le16(&cmd, 0) & 0xfff);
            resp[2] = status;
            if self.faults.admin_delay_count > 0 {
                self.faults.admin_delay_count -= 1;
                elog!(
                    self,
                    "fault: admin completion delayed {} ms",
                    self.faults.admin_delay_ms
                );
                let t = Instant::now() + Duration::from_millis(self.faults.admin_delay_ms as u64);
                self.delayed_admin.push_back((t, resp));
                self.timer_kick = true;
            } else {
                self.post_acq(resp);
            }
        }
    }

    fn post_acq(&mut self, mut resp: [u8; 64]) {
        let depth = (self.acq_caps & 0xffff) as u16;
        if !depth.is_power_of_two() || self.acq_base == 0 {
            return;
        }
        let slot = (self.acq_tail & (depth - 1)) as u64;
        resp[3] = if (self.acq_tail / depth) & 1 == 0 {
            1
        } else {
            0
        };
        if let Err(e) =
            self.mem
                .publish(self.acq_base.wrapping_add(slot * ADMIN_ENTRY), &resp, 0..4)
        {
            self.dma_error("admin completion", e);
            return;
        }
        self.acq_tail = self.acq_tail.wrapping_add(1);
        if self.intr_mask & 1 == 0 {
            if self.faults.drop_admin_irq > 0 {
                self.faults.drop_admin_irq -= 1;
                elog!(self, "fault: admin interrupt withheld");
            } else {
                self.signal(0);
            }
        }
    }

    /// Control buffer of a GET/SET/GET_STATS command: (address, length).
    fn ctrl_buf(cmd: &[u8; 64]) -> (u64, usize) {
        (addr48(le32(cmd, 8), le16(cmd, 12)), le32(cmd, 4) as usize)
    }

    fn admin_command(&mut self, cmd: &[u8; 64], resp: &mut [u8; 64]) -> u8 {
        let op = cmd[2];
        match op {
            OP_CREATE_CQ => self.create_cq(cmd, resp),
            OP_CREATE_SQ => self.create_sq(cmd, resp),
            OP_DESTROY_SQ => self.destroy_sq(cmd),
            OP_DESTROY_CQ => self.destroy_cq(cmd),
            OP_GET_FEATURE => self.get_feature(cmd, resp),
            OP_SET_FEATURE => self.set_feature(cmd),
            OP_GET_STATS => self.get_stats(cmd, resp),
            _ => {
                self.guest_error(format!("unknown admin opcode {op}"));
                ST_UNSUPPORTED
            }
        }
    }

    fn ring_ok(&mut self, base: u64, bytes: u64, what: &str) -> bool {
        // Touch the first and last byte: the whole ring must be mapped RAM.
        let mut b = [0u8; 1];
        let ok = base != 0
            && self.mem.read(base, &mut b).is_ok()
            && self.mem.read(base + bytes - 1, &mut b).is_ok();
        if !ok {
            self.guest_error(format!(
                "{what} ring at {base:#x} (+{bytes:#x}) is not guest RAM"
            ));
        }
        ok
    }

    fn create_cq(&mut self, cmd: &[u8; 64], resp: &mut [u8; 64]) -> u8 {
        let words = cmd[5] & 0x1f;
        let depth = le16(cmd, 6);
        let vector = le32(cmd, 8) as usize;
        let base = addr48(le32(cmd, 12), le16(cmd, 16));
        if (words != 2 && words != 4) || !depth.is_power_of_two() || depth > MAX_DEPTH {
            self.guest_error(format!("CREATE_CQ words {words} depth {depth}"));
            return ST_ILLEGAL;
        }
        if vector == 0 || vector >= self.vectors.len() {
            self.guest_error(format!("CREATE_CQ on MSI-X vector {vector}"));
            return ST_ILLEGAL;
        }
        if !self.ring_ok(base, depth as u64 * words as u64 * 4, "CQ") {
            return ST_ILLEGAL;
        }
        let Some(idx) = self.cqs.iter().position(|c| c.is_none()) else {
            return ST_RESOURCE;
        };
        self.cqs[idx] = Some(Cq {
            depth,
            base,
            words,
            vector,
            tail: 0,
            bound: false,
        });
        put16(resp, 8, idx as u16);
        put16(resp, 10, depth);
        put32(resp, 12, (NUMA_BASE + 4 * idx as u64) as u32);
        put32(resp, 16, 0);
        put32(resp, 20, (UNMASK_BASE + 4 * vector as u64) as u32);
        ST_OK
    }

    fn create_sq(&mut self, cmd: &[u8; 64], resp: &mut [u8; 64]) -> u8 {
        let dir = match cmd[4] >> 5 {
            1 => Dir::Tx,
            2 => Dir::Rx,
            d => {
                self.guest_error(format!("CREATE_SQ direction {d}"));
                return ST_ILLEGAL;
            }
        };
        let placement = cmd[6] & 0xf;
        let cq = le16(cmd, 8) as usize;
        let depth = le16(cmd, 10);
        let base = addr48(le32(cmd, 12), le16(cmd, 16));
        if placement != 1 {
            self.guest_error(format!("CREATE_SQ placement {placement} (only host)"));
            return ST_UNSUPPORTED;
        }
        if !depth.is_power_of_two() || depth > MAX_DEPTH {
            self.guest_error(format!("CREATE_SQ depth {depth}"));
            return ST_ILLEGAL;
        }
        let want_words = if dir == Dir::Tx { 2 } else { 4 };
        match self.cqs.get(cq) {
            Some(Some(c)) if !c.bound && c.words == want_words => {}
            _ => {
                self.guest_error(format!("CREATE_SQ {dir:?} on unusable CQ {cq}"));
                return ST_ILLEGAL;
            }
        }
        if !self.ring_ok(base, depth as u64 * 16, "SQ") {
            return ST_ILLEGAL;
        }
        let q = self.cfg.queues as usize;
        let range = if dir == Dir::Tx { 0..q } else { q..2 * q };
        let Some(slot) = range.clone().find(|&i| self.sqs[i].is_none()) else {
            return ST_RESOURCE;
        };
        if let Some(Some(c)) = self.cqs.get_mut(cq) {
            c.bound = true;
        }
        self.sqs[slot] = Some(Sq {
            dir,
            cq,
            depth,
            base,
            head: 0,
            tail: 0,
            meta: Meta::default(),
            broken: false,
            backlog: VecDeque::new(),
            pkts: 0,
            bytes: 0,
        });
        let idx = (slot - range.start) as u64;
        put16(resp, 8, idx as u16);
        let db = SQ_DB_BASE + 8 * idx + if dir == Dir::Rx { 4 } else { 0 };
        put32(resp, 12, db as u32);
        ST_OK
    }

    fn sq_slot(&self, dir: Dir, idx: usize) -> Option<usize> {
        let q = self.cfg.queues as usize;
        if idx >= q {
            return None;
        }
        Some(if dir == Dir::Tx { idx } else { q + idx })
    }

    fn destroy_sq(&mut self, cmd: &[u8; 64]) -> u8 {
        let idx = le16(cmd, 4) as usize;
        let dir = match cmd[6] >> 5 {
            1 => Dir::Tx,
            2 => Dir::Rx,
            _ => return ST_ILLEGAL,
        };
        let Some(slot) = self.sq_slot(dir, idx) else {
            return ST_ILLEGAL;
        };
        match self.sqs[slot].take() {
            Some(sq) => {
                if let Some(Some(c)) = self.cqs.get_mut(sq.cq) {
                    c.bound = false;
                }
                ST_OK
            }
            None => {
                self.guest_error(format!("DESTROY_SQ of absent {dir:?} SQ {idx}"));
                ST_ILLEGAL
            }
        }
    }

    fn destroy_cq(&mut self, cmd: &[u8; 64]) -> u8 {
        let idx = le16(cmd, 4) as usize;
        match self.cqs.get(idx) {
            Some(Some(c)) if c.bound => ST_BUSY,
            Some(Some(_)) => {
                self.cqs[idx] = None;
                ST_OK
            }
            _ => {
                self.guest_error(format!("DESTROY_CQ of absent CQ {idx}"));
                ST_ILLEGAL
            }
        }
    }

    fn get_feature(&mut self, cmd: &[u8; 64], resp: &mut [u8; 64]) -> u8 {
        let id = cmd[17];
        let (buf, len) = Self::ctrl_buf(cmd);
        let p = &mut resp[8..];
        match id {
            F_DEVICE_ATTRIBUTES => {
                put32(p, 8, self.supported_features());
                put32(p, 12, 0);
                put32(p, 16, 48);
                put32(p, 20, 48);
                p[24..30].copy_from_slice(&self.cfg.mac);
                put32(p, 32, self.cfg.max_mtu);
            }
            F_MAX_QUEUES_EXT => {
                let q = self.cfg.queues as u32;
                p[0] = 1;
                for o in [4, 8, 12, 16] {
                    put32(p, o, q);
                }
                for o in [20, 24, 28, 32] {
                    put32(p, o, MAX_DEPTH as u32);
                }
                put32(p, 36, 128);
                put16(p, 40, MAX_TX_DESCS_PER_PKT as u16);
                put16(p, 42, MAX_RX_DESCS_PER_PKT as u16);
            }
            F_MAX_QUEUES_NUM => {
                let q = self.cfg.queues as u32;
                put32(p, 0, q);
                put32(p, 4, MAX_DEPTH as u32);
                put32(p, 8, q);
                put32(p, 12, MAX_DEPTH as u32);
                put32(p, 24, 128);
                put16(p, 28, MAX_TX_DESCS_PER_PKT as u16);
                put16(p, 30, MAX_RX_DESCS_PER_PKT as u16);
            }
            F_AENQ_CONFIG => {
                put32(p, 0, AENQ_SUPPORTED);
                put32(p, 4, self.aenq_enabled);
            }
            F_STATELESS_OFFLOAD => {
                // TX: L4 partial checksum and TSO for IPv4 and IPv6.
                // RX: L4 csum v4/v6, hash.
                put32(p, 0, (1 << 1) | (1 << 3) | (1 << 5) | (1 << 6));
                put32(p, 4, (1 << 1) | (1 << 2) | (1 << 3));
            }
            F_RSS_HASH_FUNCTION => {
                put32(p, 0, 1 << TOEPLITZ);
                put32(p, 4, 1 << self.rss_func);
                put32(p, 8, self.rss_init);
                if len != 0 {
                    if len < 48 {
                        return ST_MALFORMED;
                    }
                    let mut b = [0u8; 48];
                    put32(&mut b, 0, 10);
                    b[8..48].copy_from_slice(&self.rss_key);
                    if let Err(e) = self.mem.write(buf, &b) {
                        self.dma_error("RSS key", e);
                        return ST_MALFORMED;
                    }
                }
            }
            F_RSS_IND_TABLE => {
                put16(p, 0, RSS_TABLE_LOG);
                put16(p, 2, RSS_TABLE_LOG);
                put16(p, 4, RSS_TABLE_LOG);
                put32(p, 8, 0xffff_ffff);
                if len != 0 {
                    if len < RSS_TABLE * 4 {
                        return ST_MALFORMED;
                    }
                    let mut b = vec![0u8; RSS_TABLE * 4];
                    for (i, t) in self.rss_table.iter().enumerate() {
                        put16(&mut b, i * 4, *t);
                    }
                    if let Err(e) = self.mem.write(buf, &b) {
                        self.dma_error("RSS table", e);
                        return ST_MALFORMED;
                    }
                }
            }
            F_RSS_HASH_INPUT => {
                put16(p, 0, 0x6);
                put16(p, 2, self.rss_sort);
                if len != 0 {
                    if len < 256 {
                        return ST_MALFORMED;
                    }
                    let mut b = [0u8; 256];
                    for i in 0..8 {
                        put16(
                            &mut b,
                            i * 4,
                            [0x3c, 0x3c, 0x3c, 0x3c, 0x0c, 0x0c, 0x0c, 0x03][i],
                        );
                    }
                    for (i, f) in self.rss_fields.iter().enumerate() {
                        put16(&mut b, 64 + i * 4, *f);
                    }
                    if let Err(e) = self.mem.write(buf, &b) {
                        self.dma_error("RSS hash input", e);
                        return ST_MALFORMED;
                    }
                }
            }
            F_INTR_MODERATION if self.cfg.moderation => put16(p, 0, 1),
            F_LINK_CONFIG => {
                put32(p, 0, 100_000);
                put32(p, 4, 0x80);
                put32(p, 8, 0x2);
            }
            _ => return ST_UNSUPPORTED,
        }
        ST_OK
    }

    fn set_feature(&mut self, cmd: &[u8; 64]) -> u8 {
        let id = cmd[17];
        let (buf, len) = Self::ctrl_buf(cmd);
        let p = &cmd[20..];
        match id {
            F_HOST_ATTR => ST_OK,
            F_AENQ_CONFIG => {
                let want = le32(p, 4);
                if want & !AENQ_SUPPORTED != 0 {
                    self.guest_error(format!("AENQ groups {want:#x} not supported"));
                }
                self.aenq_enabled = want & AENQ_SUPPORTED;
                ST_OK
            }
            F_MTU => {
                let mtu = le32(p, 0);
                if !(68..=self.cfg.max_mtu).contains(&mtu) {
                    self.guest_error(format!("MTU {mtu} outside 68..={}", self.cfg.max_mtu));
                    return ST_ILLEGAL;
                }
                self.mtu = mtu;
                ST_OK
            }
            F_RSS_HASH_FUNCTION => {
                let sel = le32(p, 4);
                if sel != 1 << TOEPLITZ {
                    self.guest_error(format!("RSS function mask {sel:#x}"));
                    return ST_ILLEGAL;
                }
                self.rss_init = le32(p, 8);
                if len != 0 {
                    let mut b = [0u8; 48];
                    if len < 48 {
                        return ST_MALFORMED;
                    }
                    if let Err(e) = self.mem.read(buf, &mut b) {
                        self.dma_error("RSS key", e);
                        return ST_MALFORMED;
                    }
                    self.rss_key.copy_from_slice(&b[8..48]);
                }
                ST_OK
            }
            F_RSS_IND_TABLE => {
                let size = le16(p, 4);
                if size != RSS_TABLE_LOG || len < RSS_TABLE * 4 {
                    self.guest_error(format!("RSS table size 2^{size}, buffer {len}"));
                    return ST_ILLEGAL;
                }
                let mut b = vec![0u8; RSS_TABLE * 4];
                if let Err(e) = self.mem.read(buf, &mut b) {
                    self.dma_error("RSS table", e);
                    return ST_MALFORMED;
                }
                let mut t = [0u16; RSS_TABLE];
                for (i, e) in t.iter_mut().enumerate() {
                    *e = le16(&b, i * 4);
                    if *e >= self.cfg.queues {
                        self.guest_error(format!("RSS entry {i} names RX SQ {e}"));
                        return ST_ILLEGAL;
                    }
                }
                self.rss_table = t;
                ST_OK
            }
            F_RSS_HASH_INPUT => {
                self.rss_sort = le16(p, 2) & 0x6;
                if len != 0 {
                    if len < 256 {
                        return ST_MALFORMED;
                    }
                    let mut b = [0u8; 256];
                    if let Err(e) = self.mem.read(buf, &mut b) {
                        self.dma_error("RSS hash input", e);
                        return ST_MALFORMED;
                    }
                    for i in 0..16 {
                        self.rss_fields[i] = le16(&b, 64 + i * 4) & 0x3f;
                    }
                }
                ST_OK
            }
            _ => ST_UNSUPPORTED,
        }
    }

    fn get_stats(&mut self, cmd: &[u8; 64], resp: &mut [u8; 64]) -> u8 {
        if cmd[16] != 0 {
            return ST_UNSUPPORTED;
        }
        let s = self.stats;
        let p = &mut resp[8..];
        for (i, v) in [
            s.tx_bytes, s.tx_pkts, s.rx_bytes, s.rx_pkts, s.rx_drops, s.tx_drops,
        ]
        .iter()
        .enumerate()
        {
            put32(p, i * 8, *v as u32);
            put32(p, i * 8 + 4, (*v >> 32) as u32);
        }
        ST_OK
    }

    // ---- IO -----------------------------------------------------------------

    fn sq_doorbell(&mut self, idx: usize, rx: bool, tail: u16) {
        let dir = if rx { Dir::Rx } else { Dir::Tx };
        let Some(slot) = self.sq_slot(dir, idx) else {
            self.guest_error(format!("doorbell for {dir:?} SQ {idx}"));
            return;
        };
        let Some(sq) = self.sqs[slot].as_mut() else {
            self.guest_error(format!("doorbell for absent {dir:?} SQ {idx}"));
            return;
        };
        let ahead = tail.wrapping_sub(sq.head);
        if ahead >= sq.depth {
            let (h, d) = (sq.head, sq.depth);
            self.guest_error(format!(
                "{dir:?} SQ {idx} doorbell {tail}: {ahead} past head {h}, depth {d}"
            ));
            return;
        }
        sq.tail = tail;
        if rx {
            self.drain_backlog(slot);
        } else {
            self.process_tx(slot);
        }
    }

    fn desc_phase_ok(&mut self, counter: u16, depth: u16, phase: u8, what: &str) -> bool {
        let want = if (counter / depth) & 1 == 0 { 1 } else { 0 };
        if phase != want {
            self.guest_error(format!(
                "{what} descriptor {counter} has phase {phase}, expected {want}"
            ));
            return false;
        }
        true
    }

    fn process_tx(&mut self, slot: usize) {
        let now = Instant::now();
        let mut fired = false;
        loop {
            let Some(sq) = self.sqs[slot].as_ref() else {
                return;
            };
            if sq.head == sq.tail || sq.broken {
                break;
            }
            let (base, depth, start, tail, cq) = (sq.base, sq.depth, sq.head, sq.tail, sq.cq);
            let mut meta = sq.meta;
            let mut i = start;
            let mut frame: Vec<u8> = Vec::with_capacity(1514);
            let mut req_id: Option<u16> = None;
            let mut ctrl = 0u32;
            let mut bad = false;
            let mut ndesc = 0;
            let mut complete = false;
            while i != tail {
                let mut d = [0u8; 16];
                let addr = base + (i & (depth - 1)) as u64 * 16;
                if let Err(e) = self.mem.read(addr, &mut d) {
                    self.dma_error("TX descriptor", e);
                    if let Some(s) = self.sqs[slot].as_mut() {
                        s.broken = true;
                    }
                    return;
                }
                let w0 = le32(&d, 0);
                if !self.desc_phase_ok(i, depth, ((w0 >> 24) & 1) as u8, "TX") {
                    // Not (yet) valid: stop here, the driver will ring again.
                    return;
                }
                i = i.wrapping_add(1);
                ndesc += 1;
                if ndesc > MAX_TX_DESCS_PER_PKT + 2 {
                    bad = true;
                }
                let last = w0 & (1 << 27) != 0;
                if w0 & (1 << 23) != 0 {
                    // Meta descriptor: offload geometry, remembered if meta_store.
                    let w2 = le32(&d, 8);
                    meta = Meta {
                        l3_len: w2 as u8,
                        l3_off: (w2 >> 8) as u8,
                        l4_len: ((w2 >> 16) & 0x3f) as u8,
                        mss: (((w0 >> 16) & 0xf) << 10 | (w2 >> 22)) as u16,
                    };
                } else {
                    let w1 = le32(&d, 4);
                    let len = (w0 & 0xffff) as usize;
                    let baddr = addr48(le32(&d, 8), le16(&d, 12));
                    if req_id.is_none() {
                        req_id = Some((((w0 >> 16) & 0x3f) << 10 | (w1 >> 22)) as u16);
                        ctrl = w1;
                    }
                    if !bad {
                        let at = frame.len();
                        if at + len > self.max_tx_frame(ctrl) {
                            bad = true;
                        } else {
                            frame.resize(at + len, 0);
                            if let Err(e) = self.mem.read(baddr, &mut frame[at..]) {
                                self.dma_error("TX buffer", e);
                                bad = true;
                            }
                        }
                    }
                }
                if last {
                    complete = true;
                    break;
                }
            }
            if !complete {
                // The packet's last descriptor is not there yet.
                break;
            }
            if let Some(s) = self.sqs[slot].as_mut() {
                s.head = i;
                s.meta = meta;
            }
            let Some(mut rid) = req_id else {
                self.guest_error("TX packet without a buffer descriptor".into());
                continue;
            };
            if bad || frame.len() < pkt::ETH_HLEN {
                self.stats.tx_drops += 1;
                self.guest_error(format!(
                    "malformed TX packet ({} bytes) dropped",
                    frame.len()
                ));
            } else {
                let mut frames = self.tx_offload(frame, ctrl, meta.mss);
                for f in frames.iter_mut() {
                    if f.len() < 60 {
                        f.resize(60, 0);
                    }
                    self.stats.tx_pkts += 1;
                    self.stats.tx_bytes += f.len() as u64;
                    if let Some(s) = self.sqs[slot].as_mut() {
                        s.pkts += 1;
                        s.bytes += f.len() as u64;
                    }
                }
                if self.link_up {
                    self.tx_out.append(&mut frames);
                } else {
                    self.stats.tx_drops += frames.len() as u64;
                }
            }
            if self.faults.drop_tx_comp > 0 {
                self.faults.drop_tx_comp -= 1;
                elog!(self, "fault: TX completion for req_id {rid} dropped");
                continue;
            }
            if self.faults.corrupt_tx_req_id > 0 {
                self.faults.corrupt_tx_req_id -= 1;
                rid ^= 0x8000;
                elog!(self, "fault: TX completion req_id corrupted to {rid}");
            }
            if self.write_tx_comp(cq, rid) {
                fired = true;
            }
        }
        let vector = self.sqs[slot]
            .as_ref()
            .and_then(|s| self.cqs.get(s.cq))
            .and_then(|c| c.as_ref())
            .map(|c| c.vector);
        if let (true, Some(v)) = (fired, vector) {
            self.cq_event(v, false, now);
        }
    }

    fn max_tx_frame(&self, ctrl: u32) -> usize {
        if ctrl & (1 << 7) != 0 {
            65536 + 256
        } else {
            self.max_frame()
        }
    }

    fn max_frame(&self) -> usize {
        self.cfg.max_mtu as usize + pkt::ETH_HLEN + 8
    }

    /// Apply the TX offloads of the first buffer descriptor's `ctrl`: TSO
    /// (segmentation by the stored meta's MSS, full checksums) or L4
    /// checksum completion. Returns the frames that go on the wire.
    fn tx_offload(&mut self, mut frame: Vec<u8>, ctrl: u32, mss: u16) -> Vec<Vec<u8>> {
        let l4_csum = ctrl & (1 << 14) != 0;
        let partial = ctrl & (1 << 17) != 0;
        let tso = ctrl & (1 << 7) != 0;
        if tso {
            return match pkt::tso_segment(&frame, mss as usize) {
                Some(segs) => {
                    self.stats.tso_pkts += 1;
                    self.stats.tso_segs += segs.len() as u64;
                    segs
                }
                None => {
                    self.stats.tx_drops += 1;
                    self.guest_error(format!(
                        "TSO requested (ctrl {ctrl:#x}, mss {mss}) on a {}-byte frame that cannot be segmented",
                        frame.len()
                    ));
                    Vec::new()
                }
            };
        }
        if l4_csum {
            self.stats.tx_csum += 1;
            if partial {
                self.stats.tx_csum_partial += 1;
            }
            let p = pkt::parse(&frame);
            let ok = if partial {
                pkt::tx_complete_l4_csum(&mut frame, &p)
            } else {
                pkt::fill_l4_csum(&mut frame)
            };
            if !ok {
                self.guest_error(format!(
                    "TX checksum offload requested (ctrl {ctrl:#x}) on a frame that cannot take it"
                ));
            }
        }
        if frame.len() > self.max_frame() {
            self.stats.tx_drops += 1;
            self.guest_error(format!("{}-byte TX frame without TSO dropped", frame.len()));
            return Vec::new();
        }
        vec![frame]
    }

    fn stale_phase(&mut self, phase: u8, tx: bool) -> u8 {
        if self.faults.stale_phase > 0 && self.faults.stale_phase_tx.is_none_or(|t| t == tx) {
            self.faults.stale_phase -= 1;
            elog!(self, "fault: completion written with stale phase");
            phase ^ 1
        } else {
            phase
        }
    }

    fn write_tx_comp(&mut self, cq: usize, req_id: u16) -> bool {
        let Some(Some(c)) = self.cqs.get(cq) else {
            return false;
        };
        let (addr, phase) = c.slot();
        let phase = self.stale_phase(phase, true);
        let mut e = [0u8; 8];
        put16(&mut e, 0, req_id);
        e[3] = phase;
        if let Err(err) = self.mem.publish(addr, &e, 0..4) {
            self.dma_error("TX completion", err);
            return false;
        }
        if let Some(Some(c)) = self.cqs.get_mut(cq) {
            c.tail = c.tail.wrapping_add(1);
        }
        true
    }

    /// RX SQ slot a frame goes to: Toeplitz hash through the indirection table.
    fn rx_select(&mut self, frame: &[u8]) -> (usize, u32, pkt::Parsed) {
        let p = pkt::parse(frame);
        let fields = self.rss_fields[pkt::flow_proto(&p)];
        let mut input = std::mem::take(&mut self.scratch);
        pkt::hash_input(frame, &p, fields, &mut input);
        let hash = if input.is_empty() {
            0
        } else {
            pkt::toeplitz(&self.rss_key, &input)
        };
        self.scratch = input;
        let q = self.cfg.queues as usize;
        let mut idx = self.rss_table[hash as usize & (RSS_TABLE - 1)] as usize % q;
        if self.sqs[q + idx].is_none() {
            idx = (0..q).find(|&i| self.sqs[q + i].is_some()).unwrap_or(0);
        }
        (q + idx, hash, p)
    }

    /// A frame arrived from the wire. Returns false if it was dropped.
    pub fn receive(&mut self, frame: Vec<u8>) -> bool {
        if !self.link_up || frame.len() < pkt::ETH_HLEN || frame.len() > self.max_frame() {
            self.stats.rx_drops += 1;
            return false;
        }
        let (slot, hash, p) = self.rx_select(&frame);
        let Some(sq) = self.sqs[slot].as_mut() else {
            self.stats.rx_drops += 1;
            return false;
        };
        if !sq.backlog.is_empty() {
            if sq.backlog.len() >= BACKLOG_FRAMES {
                self.stats.rx_drops += 1;
                return false;
            }
            sq.backlog.push_back(frame);
            return true;
        }
        match self.rx_one(slot, &frame, hash, &p) {
            RxOutcome::Done => {
                self.rx_kick(slot);
                true
            }
            RxOutcome::NoBuffers => {
                if let Some(sq) = self.sqs[slot].as_mut() {
                    sq.backlog.push_back(frame);
                }
                true
            }
            RxOutcome::Dropped => false,
        }
    }

    fn rx_kick(&mut self, slot: usize) {
        let Some(sq) = self.sqs[slot].as_ref() else {
            return;
        };
        if let Some(Some(c)) = self.cqs.get(sq.cq) {
            let v = c.vector;
            self.cq_event(v, true, Instant::now());
        }
    }

    fn drain_backlog(&mut self, slot: usize) {
        let mut any = false;
        loop {
            let Some(sq) = self.sqs[slot].as_mut() else {
                return;
            };
            let Some(frame) = sq.backlog.pop_front() else {
                break;
            };
            let (_, hash, p) = self.rx_select(&frame);
            match self.rx_one(slot, &frame, hash, &p) {
                RxOutcome::Done => any = true,
                RxOutcome::Dropped => {}
                RxOutcome::NoBuffers => {
                    if let Some(sq) = self.sqs[slot].as_mut() {
                        sq.backlog.push_front(frame);
                    }
                    break;
                }
            }
        }
        if any {
            self.rx_kick(slot);
        }
    }

    fn rx_one(&mut self, slot: usize, frame: &[u8], hash: u32, p: &pkt::Parsed) -> RxOutcome {
        let Some(sq) = self.sqs[slot].as_ref() else {
            return RxOutcome::Dropped;
        };
        if sq.broken {
            self.stats.rx_drops += 1;
            return RxOutcome::Dropped;
        }
        let (base, depth, mut i, tail, cq) = (sq.base, sq.depth, sq.head, sq.tail, sq.cq);
        let mut bufs: [Option<RxBuf>; MAX_RX_DESCS_PER_PKT] = Default::default();
        let mut n = 0;
        let mut have = 0usize;
        while have < frame.len() {
            if i == tail {
                return RxOutcome::NoBuffers;
            }
            if n == MAX_RX_DESCS_PER_PKT {
                self.stats.rx_drops += 1;
                return RxOutcome::Dropped;
            }
            let mut d = [0u8; 16];
            if let Err(e) = self.mem.read(base + (i & (depth - 1)) as u64 * 16, &mut d) {
                self.dma_error("RX descriptor", e);
                self.rx_break(slot);
                return RxOutcome::Dropped;
            }
            if !self.desc_phase_ok(i, depth, d[3] & 1, "RX") {
                return RxOutcome::NoBuffers;
            }
            let len = match le16(&d, 0) {
                0 => 65536,
                l => l as usize,
            };
            bufs[n] = Some(RxBuf {
                req_id: le16(&d, 4),
                addr: addr48(le32(&d, 8), le16(&d, 12)),
                len,
            });
            n += 1;
            have += len;
            i = i.wrapping_add(1);
        }
        // Commit: copy the data, then one completion per buffer.
        let mut off = 0;
        for b in bufs.iter().take(n).flatten() {
            let chunk = (frame.len() - off).min(b.len);
            if let Err(e) = self.mem.write(b.addr, &frame[off..off + chunk]) {
                self.dma_error("RX buffer", e);
                self.rx_break(slot);
                return RxOutcome::Dropped;
            }
            off += chunk;
        }
        let csum = pkt::rx_verify(frame, p);
        let mut status = 0u32;
        match p.ip {
            4 => status |= 8,
            6 => status |= 11,
            _ => {}
        }
        if p.ip != 0 && !p.frag {
            match p.l4_proto {
                6 => status |= 12 << 8,
                17 => status |= 13 << 8,
                _ => {}
            }
        }
        if csum.l3_err {
            status |= 1 << 13;
        }
        if csum.l4_err {
            status |= 1 << 14;
        }
        if p.frag {
            status |= 1 << 15;
        }
        if csum.l4_checked {
            status |= 1 << 16;
            self.stats.rx_csum_checked += 1;
        }
        if csum.l3_err || csum.l4_err {
            self.stats.rx_csum_bad += 1;
        }
        let mut off = 0;
        for (k, b) in bufs.iter().take(n).flatten().enumerate() {
            let chunk = (frame.len() - off).min(b.len);
            off += chunk;
            let Some(Some(c)) = self.cqs.get(cq) else {
                return RxOutcome::Dropped;
            };
            let (addr, phase) = c.slot();
            let phase = self.stale_phase(phase, false);
            let mut st = (phase as u32) << 24;
            if k == 0 {
                st |= 1 << 26;
            }
            if k == n - 1 {
                st |= 1 << 27 | status;
            }
            let mut len = chunk as u16;
            if self.faults.bad_rx_len > 0 {
                self.faults.bad_rx_len -= 1;
                len = 0xfff0;
                elog!(self, "fault: RX completion length {len}");
            }
            let mut rid = b.req_id;
            if self.faults.corrupt_rx_req_id > 0 {
                self.faults.corrupt_rx_req_id -= 1;
                rid ^= 0x8000;
                elog!(self, "fault: RX completion req_id corrupted to {rid}");
            }
            let mut e = [0u8; 16];
            put32(&mut e, 0, st);
            put16(&mut e, 4, len);
            put16(&mut e, 6, rid);
            put32(&mut e, 8, hash);
            if self.faults.drop_rx_comp > 0 {
                self.faults.drop_rx_comp -= 1;
                elog!(self, "fault: RX completion dropped");
                continue;
            }
            if let Err(err) = self.mem.publish(addr, &e, 0..4) {
                self.dma_error("RX completion", err);
                self.rx_break(slot);
                return RxOutcome::Dropped;
            }
            if let Some(Some(c)) = self.cqs.get_mut(cq) {
                c.tail = c.tail.wrapping_add(1);
            }
        }
        if let Some(sq) = self.sqs[slot].as_mut() {
            sq.head = i;
            sq.pkts += 1;
            sq.bytes += frame.len() as u64;
        }
        self.stats.rx_pkts += 1;
        self.stats.rx_bytes += frame.len() as u64;
        if frame.len() > 1514 {
            self.stats.rx_jumbo += 1;
        }
        RxOutcome::Done
    }

    /// A DMA error on an RX queue: the queue stops (as hardware would) and the
    /// device reports a warning through the AENQ.
    fn rx_break(&mut self, slot: usize) {
        if let Some(sq) = self.sqs[slot].as_mut() {
            sq.broken = true;
        }
        self.stats.rx_drops += 1;
        self.aenq_post(AENQ_WARNING, 0, &[0; 48]);
    }

    /// Human-readable state summary (for the control socket).
    pub fn summary(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "{}: link {} tx {} pkts {} B, rx {} pkts {} B, drops rx {} tx {}, irqs {}, \
             admin {}, guest_errors {}, dma_errors {}, resets {} (last reason {}), dma maps {}\n\
             \x20 reset reasons:{}\n\
             \x20 offload: tx_csum {} (partial {}), tso {} pkts -> {} segs, rx_csum checked {} bad {}\n\
             \x20 register reads: direct {}, read-less {}\n\
             \x20 rx frames over 1514 B: {}\n",
            self.cfg.name,
            if self.link_up { "up" } else { "down" },
            s.tx_pkts,
            s.tx_bytes,
            s.rx_pkts,
            s.rx_bytes,
            s.rx_drops,
            s.tx_drops,
            s.irqs,
            s.admin_cmds,
            s.guest_errors,
            s.dma_errors,
            self.resets,
            self.last_reset_reason,
            self.mem.count(),
            // Every reason, zeros included: a reader can tell "never" from
            // "not reported".
            self.reset_reasons
                .iter()
                .enumerate()
                .map(|(r, n)| format!(" r{r}={n}"))
                .collect::<String>(),
            s.tx_csum,
            s.tx_csum_partial,
            s.tso_pkts,
            s.tso_segs,
            s.rx_csum_checked,
            s.rx_csum_bad,
            s.reg_reads_direct,
            s.reg_reads_readless,
            s.rx_jumbo,
        );
        // IO vectors (vector v serves queue pair v - 1): interrupts fired and
        // the moderation intervals (device units; the model advertises a
        // resolution of 1 µs) the driver asked for when unmasking.
        for (v, vec) in self.vectors.iter().enumerate().skip(1) {
            out += &format!(
                "  vector {v}: irqs {}, unmask writes {}, last rx {} tx {}, rx_usecs {}, tx_usecs {}\n",
                vec.fired,
                vec.unmask_writes,
                vec.rx_delay,
                vec.tx_delay,
                vec.rx_hist.render(),
                vec.tx_hist.render(),
            );
        }
        for (i, sq) in self.sqs.iter().enumerate() {
            if let Some(sq) = sq {
                out += &format!(
                    "  {:?} sq {} depth {} head {} tail {} pkts {} bytes {}{}\n",
                    sq.dir,
                    i % self.cfg.queues as usize,
                    sq.depth,
                    sq.head,
                    sq.tail,
                    sq.pkts,
                    sq.bytes,
                    if sq.broken { " BROKEN" } else { "" }
                );
            }
        }
        out
    }
}

enum RxOutcome {
    Done,
    NoBuffers,
    Dropped,
}

/// Power-on RSS key (the driver replaces it with its own at init).
const DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
