// SPDX-License-Identifier: GPL-2.0

//! An NVMe submission/completion queue pair in host memory, with its
//! doorbells.
//!
//! Every completion entry comes from the device and is untrusted: the phase
//! bit decides whether an entry is new, the submission queue head and id it
//! reports are checked, and the command identifier is only used to look up a
//! command through a checked table by the caller.

use crate::nvme::{Command, Completion};
use crate::rust_bindings::{
    device::Bound,
    device::Device,
    dma::CoherentAllocation,
    io::{dma_rmb, Io},
    sync::TryLock,
};
use crate::NvmeBar;
use kernel::{new_spinlock, prelude::*, sync::Arc, sync::SpinLock};

/// Where the submission side stands.
struct SqState {
    tail: u16,
    /// Tail value last written to the doorbell.
    rung_tail: u16,
}

/// Where the completion side stands.
pub(crate) struct CqState {
    head: u16,
    phase: bool,
}

/// A queue pair: `depth` 64-byte submission entries and `depth` 16-byte
/// completion entries.
#[pin_data]
pub(crate) struct QueuePair {
    pub(crate) qid: u16,
    pub(crate) depth: u16,
    sq: CoherentAllocation<[u32; 16]>,
    cq: CoherentAllocation<[u32; 4]>,
    #[pin]
    sq_state: SpinLock<SqState>,
    cq_state: TryLock<CqState>,
    sq_doorbell: usize,
    cq_doorbell: usize,
    bar: Arc<NvmeBar>,
}

impl QueuePair {
    /// Allocates the rings of queue `qid`. Doorbell offsets are checked
    /// against the BAR here, so later doorbell writes cannot fail.
    pub(crate) fn new(
        dev: &Device<Bound>,
        bar: Arc<NvmeBar>,
        qid: u16,
        depth: u16,
        doorbell_stride: usize,
    ) -> Result<impl PinInit<Self, Error>> {
        let sq_doorbell = crate::nvme::reg::DOORBELLS + 2 * usize::from(qid) * doorbell_stride;
        let cq_doorbell = sq_doorbell + doorbell_stride;
        bar.io_addr::<u32>(cq_doorbell)?;
        let sq = CoherentAllocation::alloc_coherent(dev, usize::from(depth), GFP_KERNEL)?;
        let cq = CoherentAllocation::alloc_coherent(dev, usize::from(depth), GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            qid,
            depth,
            sq,
            cq,
            sq_state <- new_spinlock!(SqState { tail: 0, rung_tail: 0 }),
            cq_state: TryLock::new(CqState { head: 0, phase: true }),
            sq_doorbell,
            cq_doorbell,
            bar,
        }? Error))
    }

    pub(crate) fn sq_dma(&self) -> u64 {
        self.sq.dma_handle()
    }

    pub(crate) fn cq_dma(&self) -> u64 {
        self.cq.dma_handle()
    }

    /// Copies `cmd` into the next submission slot and, if `ring`, writes the
    /// doorbell. The caller keeps fewer than `depth` commands outstanding.
    pub(crate) fn submit(&self, cmd: &Command, ring: bool) {
        let mut sq = self.sq_state.lock();
        // `tail < depth` always holds, so the write cannot fail.
        let _ = self.sq.write(usize::from(sq.tail), cmd.0);
        sq.tail = if sq.tail + 1 == self.depth {
            0
        } else {
            sq.tail + 1
        };
        if ring {
            self.ring_locked(&mut sq);
        }
    }

    /// Writes the doorbell for commands submitted without ringing.
    pub(crate) fn ring(&self) {
        let mut sq = self.sq_state.lock();
        self.ring_locked(&mut sq);
    }

    fn ring_locked(&self, sq: &mut SqState) {
        if sq.tail != sq.rung_tail {
            // `writel` orders the entry's memory writes before the doorbell.
            let _ = self.bar.try_write32(u32::from(sq.tail), self.sq_doorbell);
            sq.rung_tail = sq.tail;
        }
    }

    /// Handles up to `budget` new completion entries with `f`, then tells
    /// the device how far we got. Returns how many were handled, or 0 if
    /// another context is draining the queue right now.
    pub(crate) fn drain(&self, budget: u32, mut f: impl FnMut(&Completion)) -> u32 {
        let Some(mut cq) = self.cq_state.try_lock() else {
            return 0;
        };
        let mut done = 0;
        while done < budget {
            let Ok(raw) = self.cq.read(usize::from(cq.head)) else {
                break;
            };
            let cqe = Completion::from_dwords(raw);
            if cqe.phase != cq.phase {
                break;
            }
            // The phase bit said the entry is complete; read nothing of it
            // (or of the data it describes) before that.
            dma_rmb();
            let cqe = match self.cq.read(usize::from(cq.head)) {
                Ok(raw) => Completion::from_dwords(raw),
                Err(_) => break,
            };
            cq.head += 1;
            if cq.head == self.depth {
                cq.head = 0;
                cq.phase = !cq.phase;
            }
            done += 1;
            f(&cqe);
        }
        if done > 0 {
            let _ = self.bar.try_write32(u32::from(cq.head), self.cq_doorbell);
        }
        done
    }

    /// Whether a new completion entry is waiting (a peek; `false` while
    /// another context is draining).
    pub(crate) fn has_completion(&self) -> bool {
        let Some(cq) = self.cq_state.try_lock() else {
            return false;
        };
        self.cq
            .read(usize::from(cq.head))
            .map(|raw| Completion::from_dwords(raw).phase == cq.phase)
            .unwrap_or(false)
    }

    /// Whether the submission queue head a completion reports is plausible.
    pub(crate) fn valid_sq_head(&self, cqe: &Completion) -> bool {
        cqe.sq_head < self.depth && cqe.sq_id == self.qid
    }

    /// Forgets all ring state after the controller was disabled, so that
    /// the next enable starts both rings at 0 with phase 1. Returns `false`
    /// if a poller holds the completion side right now (retry).
    pub(crate) fn reset(&self) -> bool {
        let Some(mut cq) = self.cq_state.try_lock() else {
            return false;
        };
        cq.head = 0;
        cq.phase = true;
        for i in 0..usize::from(self.depth) {
            let _ = self.cq.write(i, [0; 4]);
        }
        let mut sq = self.sq_state.lock();
        sq.tail = 0;
        sq.rung_tail = 0;
        true
    }
}
