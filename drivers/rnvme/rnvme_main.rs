// SPDX-License-Identifier: GPL-2.0

//! rnvme: an NVMe PCIe block driver in Rust.
//!
//! Binds NVMe-class PCI functions (class 01:08:02), brings the controller
//! up (disable, admin queue, enable, identify, number of queues), creates
//! one interrupt-driven I/O queue pair per CPU (up to what the controller
//! and its MSI-X vectors allow) plus `poll_queues` polled ones, and exposes
//! each active namespace as a block device `rnvme<N>n<nsid>`, which cannot
//! collide with the C driver's `nvme<N>n<nsid>`.
//!
//! Completions are handled NAPI-style: the interrupt handler only schedules
//! an `irq_poll` round, which drains up to `poll_budget` entries from the
//! completion queue in softirq context and re-arms.
//!
//! Both this driver and the C `nvme` match the NVMe class; see the README
//! for choosing per device with `driver_override` and `match_class=0`.

use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::{
    c_str, new_mutex, prelude::*, sync::Arc, sync::Mutex, types::ARef, types::ScopeGuard,
};

#[path = "../../rust-bindings/rust_bindings.rs"]
pub mod rust_bindings;

mod nvme;
mod queue;

use nvme::{admin, cc, cns, csts, feature, io, reg, Cap, Command, IdCtrl, IdNs};
use queue::QueuePair;
use rust_bindings::{
    block::mq::{
        self, BlkStatus, CompletionBatch, GenDisk, GenDiskBuilder, HctxType, Op, QueueMaps,
        Request, TagSet, TagSetConfig,
    },
    delay::{msleep, num_online_cpus},
    device::{Bound, Core},
    dma::{CoherentAllocation, DmaMask, DmaPool, DmaPoolBlock},
    error::etimedout,
    io::IoKnownSize,
    irq,
    irq_poll::{IrqPoll, IrqPollHandler},
    pci,
    sync::Completion,
};

module_param_u32!(
    POLL_QUEUES,
    "poll_queues",
    default: 0,
    min: 0,
    max: 64,
    perm: 0o444,
    desc: "Number of I/O queues without interrupts, polled by io_uring IOPOLL (fio --hipri)"
);
module_param_u32!(
    IO_QUEUE_DEPTH,
    "io_queue_depth",
    default: 256,
    min: 16,
    max: 4095,
    perm: 0o444,
    desc: "Entries per I/O queue (capped by the controller's CAP.MQES)"
);
module_param_u32!(
    MAX_IO_QUEUES,
    "max_io_queues",
    default: 0,
    min: 0,
    max: 256,
    perm: 0o444,
    desc: "Most interrupt-driven I/O queues (0: one per online CPU)"
);
module_param_u32!(
    POLL_BUDGET,
    "poll_budget",
    default: 64,
    min: 1,
    max: 4096,
    perm: 0o444,
    desc: "Completions handled per irq_poll round before yielding (like a NAPI budget)"
);
module_param_u32!(
    IRQ_COALESCE_TIME,
    "irq_coalesce_time",
    default: 0,
    min: 0,
    max: 255,
    perm: 0o444,
    desc: "Interrupt coalescing time in 100 us units (feature 08h); 0 with threshold 0 leaves it alone"
);
module_param_u32!(
    IRQ_COALESCE_THRESHOLD,
    "irq_coalesce_threshold",
    default: 0,
    min: 0,
    max: 255,
    perm: 0o444,
    desc: "Interrupt coalescing threshold in completions, 0-based (feature 08h)"
);
module_param_u32!(
    SGL_THRESHOLD,
    "sgl_threshold",
    default: 32768,
    min: 0,
    max: 1 << 30,
    perm: 0o444,
    desc: "Use SGLs (when the controller has them) for I/O whose average segment is at least this many bytes; 0: PRPs only"
);
module_param_u32!(
    MATCH_CLASS,
    "match_class",
    default: 1,
    min: 0,
    max: 1,
    perm: 0o444,
    desc: "1: bind every NVMe-class device; 0: only devices whose driver_override is rnvme"
);

pub(crate) type NvmeBar = pci::Bar<{ reg::BAR_MIN }>;

const ADMIN_DEPTH: u16 = 32;
const ADMIN_TIMEOUT_MS: u32 = 15_000;
const SHUTDOWN_TIMEOUT_MS: u32 = 5_000;
const PAGE_SIZE: u64 = 4096;
/// Scatterlist entries per request; with page-boundary splitting a request
/// needs at most one PRP entry per segment plus one.
const MAX_SEGMENTS: u16 = 64;
/// PRP list entries in one pool block (one page).
const PRP_LIST_ENTRIES: usize = 512;
/// Discard ranges that fit in one pool block (16 bytes each).
const MAX_DISCARD_RANGES: usize = 256;
/// Command identifiers carry the tag in bits 11:0 and a generation in
/// 15:12, so a late completion for a reused tag is recognised as stale.
const TAG_BITS: u32 = 12;

/// Returns whether the `n`-th occurrence of a problem should be logged:
/// the first ten, then one in a thousand.
fn ratelimit(counter: &AtomicU32) -> bool {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    n < 10 || n % 1000 == 0
}

/// Controller instance numbers (`rnvme<N>`), up to 64 controllers.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

struct Instance(u32);

impl Instance {
    fn alloc() -> Result<Self> {
        let mut cur = INSTANCES.load(Ordering::Relaxed);
        loop {
            let free = (!cur).trailing_zeros();
            if free >= 64 {
                return Err(EBUSY);
            }
            match INSTANCES.compare_exchange(
                cur,
                cur | (1 << free),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Self(free)),
                Err(now) => cur = now,
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        INSTANCES.fetch_and(!(1u64 << self.0), Ordering::AcqRel);
    }
}

/// An admin command that failed at the controller.
struct AdminStatus(u16);

const NO_COMMAND: u32 = u32::MAX;

/// The admin queue: one command at a time, completed by the admin
/// interrupt or, if that is late, by the waiter polling the queue itself.
#[pin_data]
struct AdminQueue {
    #[pin]
    q: QueuePair,
    /// Serialises commands; holds the next command identifier.
    #[pin]
    next_cid: Mutex<u16>,
    #[pin]
    done: Completion,
    /// The command identifier being waited for, or `NO_COMMAND`.
    waiting: AtomicU32,
    result: AtomicU32,
    status: AtomicU32,
    stray: AtomicU32,
}

impl AdminQueue {
    fn handle_completions(&self) -> u32 {
        self.q.drain(u32::from(ADMIN_DEPTH), |cqe| {
            if self.waiting.load(Ordering::Acquire) == u32::from(cqe.cid) {
                self.result.store(cqe.result, Ordering::Relaxed);
                self.status.store(u32::from(cqe.status), Ordering::Relaxed);
                self.waiting.store(NO_COMMAND, Ordering::Release);
                self.done.complete_all();
            } else {
                // A completion nobody waits for: late (timed out) or bogus.
                self.stray.fetch_add(1, Ordering::Relaxed);
            }
        })
    }

    /// Runs one admin command and returns its completion's dword 0, or the
    /// controller's status.
    fn exec(
        &self,
        pdev: &pci::Device,
        cmd: Command,
    ) -> Result<core::result::Result<u32, AdminStatus>> {
        let mut next = self.next_cid.lock();
        let cid = *next;
        *next = next.wrapping_add(1);
        let mut cmd = cmd;
        cmd.0[0] = (cmd.0[0] & 0xffff) | (u32::from(cid) << 16);
        self.done.reinit();
        self.waiting.store(u32::from(cid), Ordering::Release);
        self.q.submit(&cmd, true);
        let mut waited = 0;
        while self.waiting.load(Ordering::Acquire) != NO_COMMAND {
            if self.done.wait_for_completion_timeout(10).is_ok() {
                break;
            }
            // The admin interrupt may not be set up yet, or be lost.
            self.handle_completions();
            waited += 10;
            if waited >= ADMIN_TIMEOUT_MS && self.waiting.load(Ordering::Acquire) != NO_COMMAND {
                self.waiting.store(NO_COMMAND, Ordering::Release);
                dev_err!(
                    pdev,
                    "admin command {:#04x} timed out after {} ms\n",
                    cmd.opcode(),
                    waited
                );
                return Err(etimedout());
            }
        }
        let status = self.status.load(Ordering::Relaxed) as u16;
        if status & 0x7ff != 0 {
            return Ok(Err(AdminStatus(status)));
        }
        Ok(Ok(self.result.load(Ordering::Relaxed)))
    }

    /// Gives up on the command being waited for (the controller was reset).
    fn abandon(&self) {
        self.waiting.store(NO_COMMAND, Ordering::Release);
        self.done.complete_all();
    }

    /// Like `exec`, but a controller error is an `EIO` with a message.
    fn exec_ok(&self, pdev: &pci::Device, what: &str, cmd: Command) -> Result<u32> {
        match self.exec(pdev, cmd)? {
            Ok(result) => Ok(result),
            Err(AdminStatus(status)) => {
                dev_err!(
                    pdev,
                    "{what} failed: status {:#x} (type {}, code {:#04x})\n",
                    status,
                    (status >> 8) & 7,
                    status & 0xff
                );
                Err(EIO)
            }
        }
    }
}

/// The admin queue's interrupt: drain completions in hard-IRQ context
/// (there is at most one command in flight).
struct AdminIrq(Arc<AdminQueue>);

impl irq::Handler for AdminIrq {
    fn handle(&self) -> irq::IrqReturn {
        self.0.handle_completions();
        irq::IrqReturn::Handled
    }
}

/// Per-request driver data.
struct RqData {
    /// PRP list, SGL segment or discard ranges; one page from the pool.
    list: DmaPoolBlock<u64>,
    /// Generation of the command identifier.
    gen: AtomicU8,
    /// Submission queue the command went to (for Abort).
    qid: AtomicU16,
    /// An Abort was already sent for this use of the request.
    aborted: AtomicBool,
}

/// An I/O queue pair, the data of one blk-mq hardware queue.
#[pin_data]
struct IoQueue {
    #[pin]
    q: QueuePair,
    hctx_idx: u32,
    /// MSI-X vector of an interrupt-driven queue; `None` for a polled one.
    vector: Option<u16>,
    /// Cleared when the controller is gone for good: I/O then fails.
    live: AtomicBool,
    pdev: ARef<pci::Device>,
    /// Completions that named no command in flight, or a stale one.
    bad_completions: AtomicU32,
    io_errors: AtomicU32,
    bad_heads: AtomicU32,
}

fn blk_status(cqe: &nvme::Completion) -> BlkStatus {
    use nvme::status::*;
    if cqe.is_ok() {
        return BlkStatus::OK;
    }
    match (cqe.sct(), cqe.sc()) {
        (SCT_GENERIC, INVALID_OPCODE | INVALID_FIELD) => BlkStatus::NOTSUPP,
        (SCT_GENERIC, CAPACITY_EXCEEDED) => BlkStatus::NOSPC,
        // Aborted after a timeout: an I/O error, as the C driver reports it.
        (SCT_GENERIC, ABORT_REQUESTED) => BlkStatus::IOERR,
        (SCT_MEDIA, _) => BlkStatus::MEDIUM,
        _ => BlkStatus::IOERR,
    }
}

impl IoQueue {
    /// Ends the requests of up to `budget` new completions; successful ones
    /// go into `batch` and end together when it is flushed (after the CQ
    /// doorbell, as in the C driver).
    fn complete(
        &self,
        tagset: &TagSet<Ops>,
        budget: u32,
        batch: &mut CompletionBatch<'_, Ops>,
    ) -> u32 {
        self.q.drain(budget, |cqe| {
            if !self.q.valid_sq_head(cqe) && ratelimit(&self.bad_heads) {
                dev_warn!(
                    &*self.pdev,
                    "queue {}: completion reports SQ {} head {} (depth {})\n",
                    self.q.qid,
                    cqe.sq_id,
                    cqe.sq_head,
                    self.q.depth
                );
            }
            let tag = u32::from(cqe.cid) & ((1 << TAG_BITS) - 1);
            let gen = (cqe.cid >> TAG_BITS) as u8;
            let rq = match tagset.request_for_tag(self.hctx_idx, tag) {
                Some(rq) if rq.data().gen.load(Ordering::Acquire) == gen => rq,
                _ => {
                    if ratelimit(&self.bad_completions) {
                        dev_warn!(
                            &*self.pdev,
                            "queue {}: ignoring completion for command id {:#06x}: no such command in flight\n",
                            self.q.qid,
                            cqe.cid
                        );
                    }
                    return;
                }
            };
            let status = blk_status(cqe);
            if status != BlkStatus::OK && ratelimit(&self.io_errors) {
                dev_err!(
                    &*self.pdev,
                    "queue {}: I/O error: status {:#x} (type {}, code {:#04x}), sector {}\n",
                    self.q.qid,
                    cqe.status,
                    cqe.sct(),
                    cqe.sc(),
                    rq.sector()
                );
            }
            rq.end_batched(status, batch);
        })
    }
}

/// The `irq_poll` work of an interrupt-driven queue.
struct IoPoller {
    queue: Arc<IoQueue>,
    tagset: Arc<TagSet<Ops>>,
}

impl IrqPollHandler for IoPoller {
    fn poll(&self, budget: u32) -> u32 {
        let done = self
            .queue
            .complete(&self.tagset, budget, &mut CompletionBatch::new());
        // Only a new maximum writes the shared word: the common case is
        // one load.
        let max = &self.tagset.data().poll_round_max;
        if done > max.load(Ordering::Relaxed) {
            max.fetch_max(done, Ordering::Relaxed);
        }
        done
    }

    fn has_work(&self) -> bool {
        self.queue.q.has_completion()
    }
}

/// An I/O queue's interrupt: only schedules the poll.
struct IoIrq(Arc<IrqPoll<IoPoller>>);

impl irq::Handler for IoIrq {
    fn handle(&self) -> irq::IrqReturn {
        self.0.schedule();
        irq::IrqReturn::Handled
    }
}

/// A namespace: the queue data of its disk.
struct Namespace {
    nsid: u32,
    lba_shift: u32,
    /// The controller takes SGLs (and `sgl_threshold` is not 0).
    sgl: bool,
}

/// Lets the request timeout handler reach the controller, which is created
/// after the tag set; cleared at unbind (the controller holds the tag set).
#[pin_data]
struct ResetHook {
    #[pin]
    ctrl: Mutex<Option<Arc<Ctrl>>>,
}

/// Shared by all hardware queues.
struct SetData {
    queues: KVec<Arc<IoQueue>>,
    hook: Arc<ResetHook>,
    list_pool: Arc<DmaPool<u64>>,
    pdev: ARef<pci::Device>,
    nr_irq_queues: u32,
    nr_poll_queues: u32,
    /// Write commands submitted with the FUA bit set, read from sysfs
    /// (`rnvme_fua_writes`): QEMU's controller neither traces nor uses the
    /// bit, so this is the only way a test can see that FUA reached it.
    fua_writes: AtomicU64,
    /// The most completions one `irq_poll` round of an interrupt-driven
    /// queue handled (`rnvme_poll_round_max`): never above `poll_budget`,
    /// which is how a test sees that the budget is kept.
    poll_round_max: AtomicU32,
}

struct Ops;

impl Ops {
    /// Describes a mapped request's data with SGL descriptors: one data
    /// block in the command, or a last-segment descriptor pointing to a
    /// list of data blocks in the request's pool block.
    fn map_sgl(rq: &Request<Ops>, cmd: Command) -> core::result::Result<Command, BlkStatus> {
        use nvme::sgl;
        let mut segments = rq.dma_map().map_err(|_| BlkStatus::RESOURCE)?;
        let n = segments.remaining() as usize;
        if n == 1 {
            let (addr, len) = segments.next().ok_or(BlkStatus::IOERR)?;
            if len != rq.bytes() {
                return Err(BlkStatus::IOERR);
            }
            return Ok(cmd.sgl(addr, len, sgl::DATA_BLOCK));
        }
        if n == 0 || n > PRP_LIST_ENTRIES / 2 {
            return Err(BlkStatus::IOERR);
        }
        let list = &rq.data().list;
        let mut total = 0u64;
        for (i, (addr, len)) in segments.enumerate() {
            total += u64::from(len);
            let descriptor = u64::from(len) | (u64::from(sgl::DATA_BLOCK) << 56);
            list.write(2 * i, addr).map_err(|_| BlkStatus::IOERR)?;
            list.write(2 * i + 1, descriptor)
                .map_err(|_| BlkStatus::IOERR)?;
        }
        if total != u64::from(rq.bytes()) {
            return Err(BlkStatus::IOERR);
        }
        Ok(cmd.sgl(
            list.dma_handle(),
            n as u32 * sgl::DESCRIPTOR_SIZE,
            sgl::LAST_SEGMENT,
        ))
    }

    /// Builds the PRP entries for a mapped request: PRP1 and either PRP2 or
    /// the address of a PRP list in the request's pool block.
    fn map_prps(rq: &Request<Ops>) -> core::result::Result<(u64, u64), BlkStatus> {
        let segments = rq.dma_map().map_err(|_| BlkStatus::RESOURCE)?;
        let list = &rq.data().list;
        let mut prp1 = None;
        let mut entries = 0usize;
        let mut total = 0u64;
        for (addr, len) in segments {
            total += u64::from(len);
            let end = addr + u64::from(len);
            let mut page = addr;
            while page < end {
                if prp1.is_none() {
                    prp1 = Some(page);
                } else {
                    // Every entry after the first must start a page: the
                    // disk's virt_boundary_mask guarantees it.
                    if page & (PAGE_SIZE - 1) != 0 || entries >= PRP_LIST_ENTRIES {
                        return Err(BlkStatus::IOERR);
                    }
                    list.write(entries, page).map_err(|_| BlkStatus::IOERR)?;
                    entries += 1;
                }
                page = (page & !(PAGE_SIZE - 1)) + PAGE_SIZE;
            }
        }
        let prp1 = prp1.ok_or(BlkStatus::IOERR)?;
        if total != u64::from(rq.bytes()) {
            return Err(BlkStatus::IOERR);
        }
        let prp2 = match entries {
            0 => 0,
            1 => list.read(0).map_err(|_| BlkStatus::IOERR)?,
            _ => list.dma_handle(),
        };
        Ok((prp1, prp2))
    }

    fn build_command(
        ns: &Namespace,
        rq: &Request<Ops>,
        cid: u16,
    ) -> core::result::Result<Command, BlkStatus> {
        let lba_shift = ns.lba_shift;
        let slba = rq.sector() >> (lba_shift - 9);
        let blocks = rq.bytes() >> lba_shift;
        let rw = |opcode| -> core::result::Result<Command, BlkStatus> {
            if blocks == 0 || blocks > 0x1_0000 {
                return Err(BlkStatus::IOERR);
            }
            let fua = if rq.is_fua() { nvme::RW_FUA } else { 0 };
            let cmd = Command::new(opcode, cid)
                .nsid(ns.nsid)
                .cdw(10, slba as u32)
                .cdw(11, (slba >> 32) as u32)
                .cdw(12, (blocks - 1) | fua);
            // Like the C driver: SGLs pay off for large segments only.
            let segments = u32::from(rq.nr_phys_segments()).max(1);
            let threshold = SGL_THRESHOLD.get();
            if ns.sgl && threshold > 0 && rq.bytes() / segments >= threshold {
                Self::map_sgl(rq, cmd)
            } else {
                let (prp1, prp2) = Self::map_prps(rq)?;
                Ok(cmd.prp(prp1, prp2))
            }
        };
        match rq.op() {
            Op::Read => rw(io::READ),
            Op::Write => rw(io::WRITE),
            Op::Flush => Ok(Command::new(io::FLUSH, cid).nsid(ns.nsid)),
            Op::WriteZeroes => {
                if blocks == 0 || blocks > 0x1_0000 {
                    return Err(BlkStatus::IOERR);
                }
                Ok(Command::new(io::WRITE_ZEROES, cid)
                    .nsid(ns.nsid)
                    .cdw(10, slba as u32)
                    .cdw(11, (slba >> 32) as u32)
                    .cdw(12, blocks - 1))
            }
            Op::Discard => {
                let list = &rq.data().list;
                let mut n = 0usize;
                let mut bad = false;
                rq.discard_ranges(|sector, sectors| {
                    let count = u64::from(sectors) >> (lba_shift - 9);
                    if n >= MAX_DISCARD_RANGES || count == 0 || count > u64::from(u32::MAX) {
                        bad = true;
                        return;
                    }
                    // Range: context attributes (0), block count, start LBA.
                    let ok = list.write(2 * n, count << 32).is_ok()
                        && list.write(2 * n + 1, sector >> (lba_shift - 9)).is_ok();
                    bad |= !ok;
                    n += 1;
                });
                if bad || n == 0 {
                    return Err(BlkStatus::IOERR);
                }
                Ok(Command::new(io::DSM, cid)
                    .nsid(ns.nsid)
                    .prp(list.dma_handle(), 0)
                    .cdw(10, n as u32 - 1)
                    // Attribute: deallocate.
                    .cdw(11, 1 << 2))
            }
            Op::Other(_) => Err(BlkStatus::NOTSUPP),
        }
    }
}

#[vtable]
impl mq::Operations for Ops {
    type RequestData = RqData;
    type HwData = IoQueue;
    type TagSetData = SetData;
    type QueueData = Namespace;

    fn new_request_data(set: &SetData) -> Result<RqData> {
        Ok(RqData {
            list: set.list_pool.alloc(GFP_KERNEL)?,
            gen: AtomicU8::new(0),
            qid: AtomicU16::new(0),
            aborted: AtomicBool::new(false),
        })
    }

    fn init_hctx(set: &SetData, hctx_idx: u32) -> Result<Arc<IoQueue>> {
        set.queues.get(hctx_idx as usize).cloned().ok_or(EINVAL)
    }

    fn queue_rq(
        hw: &IoQueue,
        ns: &Namespace,
        rq: &Request<Self>,
        is_last: bool,
    ) -> core::result::Result<(), BlkStatus> {
        let tag = rq.tag();
        if tag >= 1 << TAG_BITS || !hw.live.load(Ordering::Acquire) {
            return Err(BlkStatus::IOERR);
        }
        let gen = rq.data().gen.load(Ordering::Relaxed).wrapping_add(1) & 0xf;
        rq.data().gen.store(gen, Ordering::Release);
        let cid = ((u32::from(gen) << TAG_BITS) | tag) as u16;
        let cmd = Self::build_command(ns, rq, cid)?;
        rq.data().qid.store(hw.q.qid, Ordering::Relaxed);
        rq.data().aborted.store(false, Ordering::Relaxed);
        rq.start();
        if cmd.opcode() == io::WRITE && cmd.0[12] & nvme::RW_FUA != 0 {
            rq.tagset_data().fua_writes.fetch_add(1, Ordering::Relaxed);
        }
        hw.q.submit(&cmd, is_last);
        Ok(())
    }

    fn commit_rqs(hw: &IoQueue) {
        hw.q.ring();
    }

    fn poll(tagset: &TagSet<Self>, hw: &IoQueue, batch: &mut CompletionBatch<'_, Self>) -> u32 {
        hw.complete(tagset, POLL_BUDGET.get(), batch)
    }

    fn timeout(rq: &Request<Self>) -> mq::TimeoutAction {
        let ctrl = rq.tagset_data().hook.ctrl.lock().clone();
        match ctrl {
            Some(ctrl) => ctrl.handle_timeout(rq),
            None => mq::TimeoutAction::ResetTimer,
        }
    }

    fn map_queues(set: &SetData, maps: &mut QueueMaps<'_>) {
        // Queue i (0-based) uses vector i + 1; vector 0 is the admin queue's.
        let _ = maps.map_pci_affinity(HctxType::Default, set.nr_irq_queues, 0, &set.pdev, 1);
        let _ = maps.map_cpus(HctxType::Read, 0, 0);
        if set.nr_poll_queues > 0 {
            let _ = maps.map_cpus(HctxType::Poll, set.nr_poll_queues, set.nr_irq_queues);
        }
    }
}

/// Views an identify buffer as the 4096-byte page it is.
fn as_page(buf: &KVec<u8>) -> Result<&[u8; 4096]> {
    buf.as_slice().try_into().map_err(|_| EINVAL)
}

/// Waits until CSTS.RDY equals `ready`; fails on a fatal status, a
/// vanished device (all ones) or after `timeout_ms`.
fn wait_ready(pdev: &pci::Device, bar: &NvmeBar, ready: bool, timeout_ms: u32) -> Result {
    let mut waited = 0;
    loop {
        let status = bar.read32(reg::CSTS);
        if status == u32::MAX {
            dev_err!(pdev, "controller not responding (CSTS reads all ones)\n");
            return Err(ENODEV);
        }
        if ready && status & csts::FATAL != 0 {
            dev_err!(
                pdev,
                "controller fatal status while enabling (CSTS {status:#x})\n"
            );
            return Err(EIO);
        }
        if (status & csts::READY != 0) == ready {
            return Ok(());
        }
        if waited >= timeout_ms {
            dev_err!(
                pdev,
                "controller did not become {} within {} ms (CSTS {status:#x})\n",
                if ready { "ready" } else { "disabled" },
                timeout_ms
            );
            return Err(etimedout());
        }
        msleep(10);
        waited += 10;
    }
}

fn disable_controller(pdev: &pci::Device, bar: &NvmeBar, cap: Cap) -> Result {
    let cc_value = bar.read32(reg::CC);
    bar.write32(cc_value & !cc::ENABLE, reg::CC);
    wait_ready(pdev, bar, false, cap.timeout_ms())
}

/// Normal shutdown (CC.SHN), as before power-off or removal.
fn shutdown_controller(pdev: &pci::Device, bar: &NvmeBar) {
    let cc_value = bar.read32(reg::CC);
    bar.write32((cc_value & !cc::SHN_MASK) | cc::SHN_NORMAL, reg::CC);
    let mut waited = 0;
    while bar.read32(reg::CSTS) & csts::SHST_MASK != csts::SHST_COMPLETE {
        if waited >= SHUTDOWN_TIMEOUT_MS {
            dev_warn!(
                pdev,
                "controller shutdown did not complete within {SHUTDOWN_TIMEOUT_MS} ms\n"
            );
            return;
        }
        msleep(10);
        waited += 10;
    }
}

/// Enables the controller on the admin queue already programmed in memory.
fn start_admin(pdev: &pci::Device, bar: &NvmeBar, cap: Cap, admin: &AdminQueue) -> Result {
    let depth = u32::from(ADMIN_DEPTH - 1);
    bar.write32((depth << 16) | depth, reg::AQA);
    bar.write64(admin.q.sq_dma(), reg::ASQ);
    bar.write64(admin.q.cq_dma(), reg::ACQ);
    bar.write32(cc::ENABLE | cc::CSS_NVM | cc::IOSQES | cc::IOCQES, reg::CC);
    wait_ready(pdev, bar, true, cap.timeout_ms())
}

/// Asks for `wanted` I/O queues; returns how many the controller grants.
fn negotiate_queues(pdev: &pci::Device, admin: &AdminQueue, wanted: u32) -> Result<u32> {
    let granted = admin.exec_ok(
        pdev,
        "set number of queues",
        Command::new(admin::SET_FEATURES, 0)
            .cdw(10, feature::NUM_QUEUES)
            .cdw(11, ((wanted - 1) << 16) | (wanted - 1)),
    )?;
    Ok(((granted & 0xffff) + 1).min((granted >> 16) + 1))
}

fn set_irq_coalescing(pdev: &pci::Device, admin: &AdminQueue) -> Result {
    let time = IRQ_COALESCE_TIME.get();
    let thr = IRQ_COALESCE_THRESHOLD.get();
    if time == 0 && thr == 0 {
        return Ok(());
    }
    let cmd = Command::new(admin::SET_FEATURES, 0)
        .cdw(10, feature::IRQ_COALESCING)
        .cdw(11, (time << 8) | thr);
    match admin.exec(pdev, cmd)? {
        Ok(_) => {
            dev_info!(
                pdev,
                "interrupt coalescing set: time {} x 100 us, threshold {} completions\n",
                time,
                thr + 1
            );
            // QEMU's controller (1b36:0010) stores the value but never
            // delays interrupts; say so rather than let users assume.
            if pdev.vendor_id() == 0x1b36 {
                dev_info!(pdev, "note: QEMU's NVMe controller accepts but does not apply interrupt coalescing\n");
            }
        }
        Err(AdminStatus(status)) => dev_warn!(
            pdev,
            "controller rejected interrupt coalescing (status {status:#x}); interrupts are not coalesced\n"
        ),
    }
    Ok(())
}

/// Creates `queue`'s completion and submission queues on the controller.
fn create_queue_on_device(pdev: &pci::Device, admin: &AdminQueue, queue: &IoQueue) -> Result {
    let qid = u32::from(queue.q.qid);
    let size = u32::from(queue.q.depth - 1) << 16;
    let irq_flags = match queue.vector {
        // Physically contiguous, interrupts enabled on `vector`.
        Some(v) => (u32::from(v) << 16) | 0b11,
        None => 0b01,
    };
    admin.exec_ok(
        pdev,
        "create I/O completion queue",
        Command::new(admin::CREATE_CQ, 0)
            .prp(queue.q.cq_dma(), 0)
            .cdw(10, size | qid)
            .cdw(11, irq_flags),
    )?;
    admin.exec_ok(
        pdev,
        "create I/O submission queue",
        Command::new(admin::CREATE_SQ, 0)
            .prp(queue.q.sq_dma(), 0)
            .cdw(10, size | qid)
            .cdw(11, (qid << 16) | 1),
    )?;
    Ok(())
}

/// A running controller: what a reset needs to rebuild it.
#[pin_data]
struct Ctrl {
    pdev: ARef<pci::Device>,
    bar: Arc<NvmeBar>,
    cap: Cap,
    admin: Arc<AdminQueue>,
    tagset: Arc<TagSet<Ops>>,
    id: IdCtrl,
    #[pin]
    disks: Mutex<KVec<GenDisk<Ops>>>,
    #[pin]
    polls: Mutex<KVec<Arc<IrqPoll<IoPoller>>>>,
    /// Serialises resets; `true` once the controller is being removed or
    /// could not be brought back (no more resets).
    #[pin]
    reset_lock: Mutex<bool>,
    resets: AtomicU32,
}

impl Ctrl {
    /// Brings the controller back after it was disabled and its rings were
    /// reset: admin queue, queue count, I/O queues.
    fn reinit(&self) -> Result {
        let pdev = &*self.pdev;
        start_admin(pdev, &self.bar, self.cap, &self.admin)?;
        let queues = &self.tagset.data().queues;
        let granted = negotiate_queues(pdev, &self.admin, queues.len() as u32)?;
        if (granted as usize) < queues.len() {
            dev_err!(
                pdev,
                "after reset the controller grants {} of {} I/O queues\n",
                granted,
                queues.len()
            );
            return Err(EIO);
        }
        set_irq_coalescing(pdev, &self.admin)?;
        for queue in queues.iter() {
            create_queue_on_device(pdev, &self.admin, queue)?;
        }
        Ok(())
    }

    /// Resets the controller: stops I/O, disables it, ends what it finished,
    /// requeues everything else, brings it back and resumes I/O. If it does
    /// not come back, the queues fail all I/O from then on.
    fn reset(&self, reason: &str) -> Result {
        let pdev = &*self.pdev;
        let mut dead = self.reset_lock.lock();
        if *dead {
            return Err(ENODEV);
        }
        let n = self.resets.fetch_add(1, Ordering::Relaxed) + 1;
        dev_warn!(pdev, "resetting controller ({reason}), reset #{n}\n");
        let disks = self.disks.lock();
        for disk in disks.iter() {
            disk.quiesce();
        }
        let polls = self.polls.lock();
        for poll in polls.iter() {
            poll.disable();
        }
        let _ = disable_controller(pdev, &self.bar, self.cap);

        // The controller no longer touches the queues: finish what it
        // completed, hand the rest back to the block layer.
        let queues = &self.tagset.data().queues;
        for queue in queues.iter() {
            queue.complete(&self.tagset, u32::MAX, &mut CompletionBatch::new());
        }
        let mut requeued = 0u32;
        self.tagset.for_each_in_flight(|rq| {
            if rq.requeue() {
                requeued += 1;
            }
        });
        self.admin.abandon();
        let mut rings_reset = self.admin.q.reset();
        for queue in queues.iter() {
            // A poll-queue poller may hold the completion side for a moment.
            let mut tries = 0;
            while !queue.q.reset() && tries < 100 {
                msleep(1);
                tries += 1;
            }
            rings_reset &= tries < 100;
        }

        let result = if rings_reset {
            self.reinit()
        } else {
            Err(EBUSY)
        };
        for poll in polls.iter() {
            poll.enable();
        }
        match &result {
            Ok(()) => dev_info!(
                pdev,
                "controller reset done; {requeued} request(s) requeued\n"
            ),
            Err(e) => {
                dev_err!(
                    pdev,
                    "controller reset failed (error {}); failing all I/O\n",
                    e.to_errno()
                );
                *dead = true;
                for queue in queues.iter() {
                    queue.live.store(false, Ordering::Release);
                }
                let _ = disable_controller(pdev, &self.bar, self.cap);
            }
        }
        for disk in disks.iter() {
            disk.unquiesce();
            disk.kick_requeue_list();
        }
        result
    }

    /// A request did not complete in time: reset the controller, which
    /// requeues it; once the controller is gone, fail it.
    fn handle_timeout(&self, rq: &Request<Ops>) -> mq::TimeoutAction {
        if !rq.is_in_flight() {
            return mq::TimeoutAction::Done;
        }
        let status = self.bar.read32(reg::CSTS);
        let reason = if status == u32::MAX {
            "I/O timeout, controller not responding"
        } else if status & csts::FATAL != 0 {
            "I/O timeout, controller fatal status"
        } else {
            "I/O timeout"
        };
        dev_warn!(
            &*self.pdev,
            "request timed out: tag {}, sector {}, {} bytes (CSTS {status:#x})\n",
            rq.tag(),
            rq.sector(),
            rq.bytes()
        );
        // First try to abort just this command (a healthy controller then
        // completes it with "abort requested"); if that does not help by the
        // next timeout, reset the controller.
        let healthy = status != u32::MAX && status & csts::FATAL == 0;
        if healthy && !rq.data().aborted.swap(true, Ordering::AcqRel) {
            let qid = u32::from(rq.data().qid.load(Ordering::Relaxed));
            let cid = (u32::from(rq.data().gen.load(Ordering::Relaxed)) << TAG_BITS) | rq.tag();
            let abort = Command::new(admin::ABORT, 0).cdw(10, (cid << 16) | qid);
            if self.admin.exec_ok(&self.pdev, "abort", abort).is_ok() {
                dev_warn!(
                    &*self.pdev,
                    "sent abort for command {cid:#06x} on queue {qid}\n"
                );
                return mq::TimeoutAction::ResetTimer;
            }
        }
        if self.reset(reason).is_err() && rq.end(BlkStatus::IOERR) {
            return mq::TimeoutAction::Done;
        }
        if rq.is_in_flight() {
            mq::TimeoutAction::ResetTimer
        } else {
            mq::TimeoutAction::Done
        }
    }
}

struct Rnvme {
    // Drop order matters: the I/O interrupts first (their polls hold the
    // tag set), then the controller (rings, tag set), then the admin
    // interrupt and the vectors.
    _io_irqs: KVec<Pin<KBox<irq::Registration<IoIrq>>>>,
    ctrl: Arc<Ctrl>,
    _admin_irq: Pin<KBox<irq::Registration<AdminIrq>>>,
    _vectors: pci::IrqVectors,
    _instance: Instance,
}

pci_device_table!(
    RNVME_PCI_TABLE,
    RNVME_MODULE_PCI_TABLE,
    (),
    [(pci::DeviceId::from_class(0x01_08_02, 0xff_ff_ff), ())]
);

impl Rnvme {
    fn identify(
        pdev: &pci::Device<Core>,
        admin: &AdminQueue,
        cns_value: u32,
        nsid: u32,
    ) -> Result<KVec<u8>> {
        let buf = CoherentAllocation::<u8>::alloc_coherent(pdev.as_ref(), 4096, GFP_KERNEL)?;
        admin.exec_ok(
            pdev,
            "identify",
            Command::new(admin::IDENTIFY, 0)
                .nsid(nsid)
                .prp(buf.dma_handle(), 0)
                .cdw(10, cns_value),
        )?;
        let mut page = KVec::from_elem(0u8, 4096, GFP_KERNEL)?;
        buf.read_slice(0, &mut page)?;
        Ok(page)
    }

    fn alloc_io_queue(
        pdev: &pci::Device<Core>,
        bar: &Arc<NvmeBar>,
        cap: Cap,
        qid: u16,
        depth: u16,
        vector: Option<u16>,
    ) -> Result<Arc<IoQueue>> {
        let rings = QueuePair::new(
            pdev.as_ref(),
            bar.clone(),
            qid,
            depth,
            cap.doorbell_stride(),
        )?;
        Arc::pin_init(
            try_pin_init!(IoQueue {
                q <- rings,
                hctx_idx: u32::from(qid) - 1,
                vector,
                live: AtomicBool::new(true),
                pdev: ARef::from(&***pdev),
                bad_completions: AtomicU32::new(0),
                io_errors: AtomicU32::new(0),
                bad_heads: AtomicU32::new(0),
            }? Error),
            GFP_KERNEL,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn add_namespaces(
        pdev: &pci::Device<Core>,
        admin: &AdminQueue,
        id: &IdCtrl,
        ctrl: &Ctrl,
        instance: u32,
        poll: bool,
    ) -> Result {
        let list = Self::identify(pdev, admin, cns::ACTIVE_NS_LIST, 0)?;
        let list = as_page(&list)?;
        let max_sectors = match id.mdts {
            0 => u32::MAX,
            // 2^(12 + mdts) bytes; capped so the shift stays within u32.
            mdts => (4096u32 << mdts.min(19)) >> 9,
        }
        .min((u32::from(MAX_SEGMENTS) - 1) * 8);
        for i in 0..1024 {
            let nsid = nvme::le_u32(list, 4 * i);
            if nsid == 0 {
                break;
            }
            let ns = IdNs::parse(as_page(&Self::identify(
                pdev,
                admin,
                cns::NAMESPACE,
                nsid,
            )?)?);
            if ns.nsze == 0 {
                continue;
            }
            if ns.metadata != 0 || !(9..=12).contains(&ns.lba_shift) {
                dev_warn!(
                    pdev,
                    "namespace {nsid}: LBA format with {}-byte blocks and {} metadata bytes is not supported; skipped\n",
                    1u64 << ns.lba_shift.min(63),
                    ns.metadata
                );
                continue;
            }
            let block = 1u32 << ns.lba_shift;
            let mut builder = GenDiskBuilder::new()
                .capacity_sectors(ns.nsze << (ns.lba_shift - 9))
                .logical_block_size(block)?
                .physical_block_size(block)?
                .max_hw_sectors(max_sectors)
                .max_segments(MAX_SEGMENTS)
                .virt_boundary_mask(PAGE_SIZE - 1)
                .dma_alignment(3)
                .write_cache(id.has_volatile_cache(), true)
                .poll(poll);
            if id.has_dsm() {
                builder =
                    builder.discard(u32::MAX >> 9 << 9 >> 9, MAX_DISCARD_RANGES as u16, block);
            }
            if id.has_write_zeroes() {
                // The command counts blocks in 16 bits.
                builder = builder.max_write_zeroes_sectors(
                    (0x1_0000u32 << (ns.lba_shift - 9)).min(u32::MAX >> 1),
                );
            }
            let namespace = Arc::new(
                Namespace {
                    nsid,
                    lba_shift: ns.lba_shift,
                    sgl: id.has_sgls(),
                },
                GFP_KERNEL,
            )?;
            let disk = builder.build(
                pdev.as_ref(),
                format_args!("rnvme{}n{}", instance, nsid),
                ctrl.tagset.clone(),
                namespace,
            )?;
            dev_info!(
                pdev,
                "{}: namespace {nsid}, {} blocks of {} bytes\n",
                disk.name(),
                ns.nsze,
                block
            );
            ctrl.disks.lock().push(disk, GFP_KERNEL)?;
        }
        Ok(())
    }
}

impl pci::Driver for Rnvme {
    type IdInfo = ();
    const ID_TABLE: pci::IdTable<()> = &RNVME_PCI_TABLE;
    const ATTRIBUTES: &'static [pci::Attribute] = &[
        pci::Attribute::write_only(c_str!("rnvme_reset")),
        pci::Attribute::read_only(c_str!("serial")),
        pci::Attribute::read_only(c_str!("model")),
        pci::Attribute::read_only(c_str!("firmware_rev")),
        pci::Attribute::read_only(c_str!("rnvme_resets")),
        pci::Attribute::read_only(c_str!("rnvme_fua_writes")),
        pci::Attribute::read_only(c_str!("rnvme_poll_round_max")),
    ];

    fn show_attribute(
        _dev: &pci::Device<Bound>,
        this: Pin<&Self>,
        index: usize,
        out: &mut pci::AttributeWriter<'_>,
    ) -> Result {
        use core::fmt::Write;
        let id = &this.ctrl.id;
        let written = match index {
            1 => writeln!(out, "{}", nvme::trimmed(&id.serial)),
            2 => writeln!(out, "{}", nvme::trimmed(&id.model)),
            3 => writeln!(out, "{}", nvme::trimmed(&id.firmware)),
            4 => writeln!(out, "{}", this.ctrl.resets.load(Ordering::Relaxed)),
            5 => writeln!(
                out,
                "{}",
                this.ctrl.tagset.data().fua_writes.load(Ordering::Relaxed)
            ),
            6 => writeln!(
                out,
                "{}",
                this.ctrl
                    .tagset
                    .data()
                    .poll_round_max
                    .load(Ordering::Relaxed)
            ),
            _ => return Err(EINVAL),
        };
        written.map_err(|_| EINVAL)
    }

    fn probe(pdev: &pci::Device<Core>, _info: &()) -> Result<Pin<KBox<Self>>> {
        if MATCH_CLASS.get() == 0 && !pdev.matched_by_driver_override() {
            dev_info!(
                pdev,
                "not claimed: match_class=0 and driver_override is not rnvme\n"
            );
            return Err(ENODEV);
        }
        pdev.enable_device_mem()?;
        pdev.set_master();
        pdev.dma_set_mask_and_coherent(DmaMask::new::<64>())?;
        let bar = Arc::new(
            pdev.iomap_region_sized::<{ reg::BAR_MIN }>(0, c_str!("rnvme"))?,
            GFP_KERNEL,
        )?;

        let cap = Cap(bar.read64(reg::CAP));
        let version = bar.read32(reg::VS);
        if cap.0 == u64::MAX {
            dev_err!(pdev, "controller not responding (CAP reads all ones)\n");
            return Err(ENODEV);
        }
        if !cap.nvm_command_set() || cap.mps_min_shift() > 12 || cap.mps_max_shift() < 12 {
            dev_err!(
                pdev,
                "unsupported controller: CAP {:#x} (needs the NVM command set and 4 KiB pages)\n",
                cap.0
            );
            return Err(ENODEV);
        }
        let instance = Instance::alloc()?;

        disable_controller(pdev, &bar, cap)?;
        let admin_rings = QueuePair::new(
            pdev.as_ref(),
            bar.clone(),
            0,
            ADMIN_DEPTH,
            cap.doorbell_stride(),
        )?;
        let admin = Arc::pin_init(
            try_pin_init!(AdminQueue {
                q <- admin_rings,
                next_cid <- new_mutex!(0),
                done <- Completion::new(),
                waiting: AtomicU32::new(NO_COMMAND),
                result: AtomicU32::new(0),
                status: AtomicU32::new(0),
                stray: AtomicU32::new(0),
            }? Error),
            GFP_KERNEL,
        )?;

        // One vector for the admin queue and one per interrupt-driven queue.
        let cpus = num_online_cpus().max(1);
        let wanted_irq_queues = match MAX_IO_QUEUES.get() {
            0 => cpus,
            n => n.min(cpus),
        };
        let vectors = pdev
            .alloc_irq_vectors_affinity(2, 1 + wanted_irq_queues, pci::IrqTypes::MSIX, 1)
            .inspect_err(|e| {
                dev_err!(
                    pdev,
                    "needs MSI-X with at least 2 vectors (admin + one I/O queue): error {}\n",
                    e.to_errno()
                )
            })?;
        let admin_irq = KBox::pin_init(
            irq::Registration::new(
                vectors.request(0)?,
                irq::Flags::NONE,
                c_str!("rnvme-admin"),
                AdminIrq(admin.clone()),
            ),
            GFP_KERNEL,
        )?;

        // From here on the controller may DMA into the queues: disable it
        // again if anything below fails, before they are freed.
        let enabled = ScopeGuard::new_with_data((pdev, bar.clone()), |(pdev, bar)| {
            let _ = disable_controller(pdev, &bar, cap);
        });
        start_admin(pdev, &bar, cap, &admin)?;

        let id = IdCtrl::parse(as_page(&Self::identify(pdev, &admin, cns::CONTROLLER, 0)?)?);
        dev_info!(
            pdev,
            "{} (serial {}, firmware {}), NVMe {}.{}, {} namespace(s)\n",
            nvme::trimmed(&id.model),
            nvme::trimmed(&id.serial),
            nvme::trimmed(&id.firmware),
            version >> 16,
            (version >> 8) & 0xff,
            id.nn
        );
        if id.sqes & 0xf > 6 || id.cqes & 0xf > 4 {
            dev_err!(
                pdev,
                "controller requires larger queue entries (SQES {:#x}, CQES {:#x})\n",
                id.sqes,
                id.cqes
            );
            return Err(ENODEV);
        }

        // Queue counts: interrupt-driven queues limited by the vectors we
        // got, poll queues on top; the controller may grant fewer.
        let mut nr_irq = (vectors.len() - 1).min(wanted_irq_queues);
        let mut nr_poll = POLL_QUEUES.get();
        let granted = negotiate_queues(pdev, &admin, nr_irq + nr_poll)?;
        if granted < nr_irq + nr_poll {
            nr_irq = nr_irq.min(granted);
            nr_poll = nr_poll.min(granted - nr_irq);
            dev_info!(pdev, "controller granted {granted} I/O queues\n");
        }
        set_irq_coalescing(pdev, &admin)?;

        let depth = IO_QUEUE_DEPTH.get().min(cap.mqes()).clamp(2, 1 << TAG_BITS) as u16;
        let mut queues = KVec::with_capacity((nr_irq + nr_poll) as usize, GFP_KERNEL)?;
        for qid in 1..=(nr_irq + nr_poll) as u16 {
            let vector = (u32::from(qid) <= nr_irq).then_some(qid);
            let queue = Self::alloc_io_queue(pdev, &bar, cap, qid, depth, vector)?;
            create_queue_on_device(pdev, &admin, &queue)?;
            queues.push(queue, GFP_KERNEL)?;
        }

        let hook = Arc::pin_init(
            pin_init!(ResetHook { ctrl <- new_mutex!(None) }),
            GFP_KERNEL,
        )?;
        let set_data = SetData {
            queues,
            hook: hook.clone(),
            list_pool: DmaPool::<u64>::new(
                c_str!("rnvme-prp"),
                pdev.as_ref(),
                PRP_LIST_ENTRIES,
                4096,
                0,
            )?,
            pdev: ARef::from(&***pdev),
            nr_irq_queues: nr_irq,
            nr_poll_queues: nr_poll,
            fua_writes: AtomicU64::new(0),
            poll_round_max: AtomicU32::new(0),
        };
        let config = TagSetConfig {
            nr_hw_queues: nr_irq + nr_poll,
            queue_depth: u32::from(depth) - 1,
            nr_maps: if nr_poll > 0 { 3 } else { 1 },
            max_segments: MAX_SEGMENTS,
            timeout_ms: 30_000,
        };
        let tagset: Arc<TagSet<Ops>> =
            Arc::pin_init(TagSet::new(pdev.as_ref(), config, set_data), GFP_KERNEL)?;

        let mut io_irqs = KVec::with_capacity(nr_irq as usize, GFP_KERNEL)?;
        let mut polls = KVec::with_capacity(nr_irq as usize, GFP_KERNEL)?;
        for (i, queue) in tagset
            .data()
            .queues
            .iter()
            .take(nr_irq as usize)
            .enumerate()
        {
            let poller = IoPoller {
                queue: queue.clone(),
                tagset: tagset.clone(),
            };
            let poll = Arc::pin_init(IrqPoll::new(poller, POLL_BUDGET.get()), GFP_KERNEL)?;
            polls.push(poll.clone(), GFP_KERNEL)?;
            let reg = KBox::pin_init(
                irq::Registration::new(
                    vectors.request(i as u32 + 1)?,
                    irq::Flags::NONE,
                    c_str!("rnvme-io"),
                    IoIrq(poll),
                ),
                GFP_KERNEL,
            )?;
            io_irqs.push(reg, GFP_KERNEL)?;
        }

        let ctrl_admin = admin.clone();
        let ctrl_id = id.clone();
        let ctrl = Arc::pin_init(
            try_pin_init!(Ctrl {
                pdev: ARef::from(&***pdev),
                bar,
                cap,
                admin: ctrl_admin,
                tagset,
                id: ctrl_id,
                disks <- new_mutex!(KVec::new()),
                polls <- new_mutex!(polls),
                reset_lock <- new_mutex!(false),
                resets: AtomicU32::new(0),
            }? Error),
            GFP_KERNEL,
        )?;
        *hook.ctrl.lock() = Some(ctrl.clone());
        // The hook and the polls refer back to the controller's tag set:
        // break those cycles if the rest of probe fails.
        let teardown = ScopeGuard::new_with_data(&ctrl, Self::teardown);

        Self::add_namespaces(pdev, &admin, &id, &ctrl, instance.0, nr_poll > 0)?;
        let data_pointers = if id.has_sgls() && SGL_THRESHOLD.get() > 0 {
            "PRPs, SGLs for large segments"
        } else {
            "PRPs"
        };
        dev_info!(
            pdev,
            "rnvme{}: {} interrupt-driven and {} polled I/O queues of depth {}, {} disk(s), {}\n",
            instance.0,
            nr_irq,
            nr_poll,
            depth,
            ctrl.disks.lock().len(),
            data_pointers
        );

        teardown.dismiss();
        enabled.dismiss();
        Ok(KBox::pin(
            Self {
                _io_irqs: io_irqs,
                ctrl,
                _admin_irq: admin_irq,
                _vectors: vectors,
                _instance: instance,
            },
            GFP_KERNEL,
        )?)
    }

    fn unbind(pdev: &pci::Device<Core>, this: Pin<&Self>) {
        Self::teardown(&this.ctrl);
        shutdown_controller(pdev, &this.ctrl.bar);
        let stray = this.ctrl.admin.stray.load(Ordering::Relaxed);
        if stray > 0 {
            dev_warn!(pdev, "{stray} stray admin completion(s) were ignored\n");
        }
    }

    fn store_attribute(
        _dev: &pci::Device<Bound>,
        this: Pin<&Self>,
        index: usize,
        _input: &[u8],
    ) -> Result {
        match index {
            0 => this.ctrl.reset("requested through sysfs"),
            _ => Err(EINVAL),
        }
    }
}

impl Rnvme {
    /// Stops resets, removes the disks (waiting for their I/O) and breaks
    /// the reference cycles through the tag set.
    fn teardown(ctrl: &Arc<Ctrl>) {
        *ctrl.reset_lock.lock() = true;
        let disks = core::mem::replace(&mut *ctrl.disks.lock(), KVec::new());
        drop(disks);
        ctrl.tagset.data().hook.ctrl.lock().take();
        let polls = core::mem::replace(&mut *ctrl.polls.lock(), KVec::new());
        drop(polls);
    }
}

module_pci_driver! {
    type: Rnvme,
    name: "rnvme",
    author: "rfl-drivers",
    description: "NVMe PCIe block driver in Rust",
    license: "GPL",
}
