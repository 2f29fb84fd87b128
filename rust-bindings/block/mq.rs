// SPDX-License-Identifier: GPL-2.0

//! blk-mq: tag sets with several hardware queues, per-queue and per-request
//! driver data, DMA mapping of request data, and disks.
//!
//! The 6.12 `kernel::block::mq` cannot be extended from a module (no queue
//! or per-request data, `to_blk_status` is crate-private), so this is our
//! own, with the names of the later upstream abstraction (6.18 rnull
//! `Operations`, `TagSet`, `GenDisk`) and the in-flight extensions
//! (`RequestData`, `HwData`, `TagSetData`, `init_hctx`, `poll`,
//! `map_queues`).
//!
//! Request ownership: the block layer hands a request to
//! [`Operations::queue_rq`]; [`Request::start`] marks it in flight; from then
//! on it is ended exactly once, by [`Request::end`] (completion, usually
//! after [`TagSet::request_for_tag`] found it by the tag the device
//! returned) or by the abstraction if `queue_rq` fails. A tag from the
//! device that is out of range or not in flight finds nothing, so a buggy or
//! hostile device cannot end a request twice or end an idle one.

use crate::rust_bindings::{
    bindings,
    device::{Bound, Device},
    pci,
};
use core::{
    fmt,
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering},
};
use kernel::{
    error::{from_result, to_result},
    init::{pin_init_from_closure, PinInit},
    prelude::*,
    str::CString,
    sync::Arc,
    types::{ARef, Opaque},
};

/// A block-layer status (`blk_status_t`). The values are checked against the
/// C ones at build time in `helpers.c`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlkStatus(u8);

impl BlkStatus {
    /// Success.
    pub const OK: Self = Self(0);
    /// The operation is not supported.
    pub const NOTSUPP: Self = Self(1);
    /// Timed out.
    pub const TIMEOUT: Self = Self(2);
    /// No space left.
    pub const NOSPC: Self = Self(3);
    /// Target error (critical, do not retry).
    pub const TARGET: Self = Self(5);
    /// Medium error.
    pub const MEDIUM: Self = Self(7);
    /// Protection information error.
    pub const PROTECTION: Self = Self(8);
    /// Out of a resource: requeue and retry later.
    pub const RESOURCE: Self = Self(9);
    /// Generic I/O error.
    pub const IOERR: Self = Self(10);
    /// Out of a device resource that frees up by itself: requeue.
    pub const DEV_RESOURCE: Self = Self(13);

    /// Converts a kernel error (`errno_to_blk_status`).
    pub fn from_error(err: Error) -> Self {
        // SAFETY: Pure function of its argument.
        Self(unsafe { bindings::errno_to_blk_status(err.to_errno()) })
    }

    /// The raw value.
    pub fn raw(self) -> u8 {
        self.0
    }
}

impl From<Error> for BlkStatus {
    fn from(err: Error) -> Self {
        Self::from_error(err)
    }
}

/// The operation of a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    /// Read data.
    Read,
    /// Write data.
    Write,
    /// Flush the volatile write cache.
    Flush,
    /// Discard (deallocate) blocks.
    Discard,
    /// Write zeroes to blocks.
    WriteZeroes,
    /// Any other operation (zoned, passthrough, ...), with its `req_op`.
    Other(u32),
}

/// What a request timeout handler decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeoutAction {
    /// The request was ended (or will be, by the driver): stop the timer.
    Done,
    /// Keep waiting: restart the timer.
    ResetTimer,
}

/// Hardware queue types (`enum hctx_type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HctxType {
    /// Queues for everything not below.
    Default,
    /// Queues for reads, when separated.
    Read,
    /// Polled queues (no interrupt): io_uring IOPOLL / `RWF_HIPRI`.
    Poll,
}

impl HctxType {
    fn index(self) -> usize {
        match self {
            Self::Default => bindings::hctx_type_HCTX_TYPE_DEFAULT as usize,
            Self::Read => bindings::hctx_type_HCTX_TYPE_READ as usize,
            Self::Poll => bindings::hctx_type_HCTX_TYPE_POLL as usize,
        }
    }
}

/// The block driver callbacks.
#[vtable]
pub trait Operations: Sized + 'static {
    /// Per-request driver data, kept in the request's PDU.
    type RequestData: Send + Sync;
    /// Per hardware queue driver data.
    type HwData: Send + Sync;
    /// Data of the tag set, shared by every queue.
    type TagSetData: Send + Sync;
    /// Per-disk (request queue) data, e.g. the namespace of a disk.
    type QueueData: Send + Sync;

    /// Creates the driver data of one request (once per tag, at set-up).
    fn new_request_data(tagset: &Self::TagSetData) -> Result<Self::RequestData>;

    /// Creates the data of hardware queue `hctx_idx` (0-based, over all
    /// queue types in map order).
    fn init_hctx(tagset: &Self::TagSetData, hctx_idx: u32) -> Result<Arc<Self::HwData>>;

    /// Queues a request. Call [`Request::start`] before handing it to the
    /// device; once the device may see it, return `Ok`.
    fn queue_rq(
        hw: &Self::HwData,
        queue: &Self::QueueData,
        rq: &Request<Self>,
        is_last: bool,
    ) -> Result<(), BlkStatus>;

    /// Rings the doorbell for requests queued with `is_last == false`.
    fn commit_rqs(_hw: &Self::HwData) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Polls a (poll-type) queue for completions, ending them into the
    /// caller's `batch`; returns how many were found.
    fn poll(
        _tagset: &TagSet<Self>,
        _hw: &Self::HwData,
        _batch: &mut CompletionBatch<'_, Self>,
    ) -> u32 {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// A request has not completed in time.
    fn timeout(_rq: &Request<Self>) -> TimeoutAction {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Maps CPUs to hardware queues for each queue type.
    fn map_queues(_tagset: &Self::TagSetData, _maps: &mut QueueMaps<'_>) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }
}

const RQ_IDLE: u8 = 0;
const RQ_IN_FLIGHT: u8 = 1;

/// What the abstraction keeps in each request's PDU.
struct Pdu<T: Operations> {
    state: AtomicU8,
    /// Number of mapped scatterlist entries, 0 when not mapped.
    mapped_nents: AtomicU32,
    /// `nents` passed to `dma_map_sg` (needed again to unmap); 0 when the
    /// data was mapped as one bio_vec without a scatterlist.
    mapped_sg_count: AtomicU32,
    /// The one-bio_vec mapping: bus address and length.
    single_addr: AtomicU64,
    single_len: AtomicU32,
    mapped_dir: AtomicU32,
    sg: KVec<Opaque<bindings::scatterlist>>,
    data: T::RequestData,
}

/// Requests completed together (`struct io_comp_batch`), ended with one
/// `blk_mq_end_request_batch` call as the C drivers do from their
/// interrupt and poll paths.
///
/// Either our own batch, flushed when dropped, or the block layer's (in
/// [`Operations::poll`]), which its caller flushes.
///
/// # Invariants
///
/// `external`, if set, is a valid batch for `'a`; requests in either
/// batch belong to a `TagSet<T>` and were claimed by `end_batched`.
pub struct CompletionBatch<'a, T: Operations> {
    own: bindings::io_comp_batch,
    external: Option<NonNull<bindings::io_comp_batch>>,
    _p: PhantomData<(&'a mut bindings::io_comp_batch, T)>,
}

impl<T: Operations> CompletionBatch<'static, T> {
    /// An empty batch of our own.
    pub fn new() -> Self {
        Self {
            own: bindings::io_comp_batch::default(),
            external: None,
            _p: PhantomData,
        }
    }
}

impl<T: Operations> Default for CompletionBatch<'static, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Operations> CompletionBatch<'_, T> {
    fn raw(&mut self) -> *mut bindings::io_comp_batch {
        match self.external {
            Some(p) => p.as_ptr(),
            None => &mut self.own,
        }
    }
}

impl<T: Operations> Drop for CompletionBatch<'_, T> {
    fn drop(&mut self) {
        if self.external.is_some() {
            return;
        }
        if let Some(complete) = self.own.complete {
            // SAFETY: Our batch, filled by `end_batched` with this callback.
            unsafe { complete(&mut self.own) };
        }
    }
}

/// The batch's `complete` callback: unmaps each request, then ends them
/// all.
extern "C" fn complete_batch<T: Operations>(iob: *mut bindings::io_comp_batch) {
    // SAFETY: The block layer or our `Drop` passes the batch that
    // `end_batched` filled with claimed requests of a `TagSet<T>`.
    unsafe {
        let mut rq = bindings::rb_iob_first(iob);
        while !rq.is_null() {
            Request::<T>::from_raw(rq).dma_unmap();
            rq = bindings::rb_rq_next(rq);
        }
        bindings::blk_mq_end_request_batch(iob);
    }
}

/// A block request (`struct request`).
///
/// # Invariants
///
/// The request belongs to a [`TagSet<T>`] and its PDU holds an initialized
/// `Pdu<T>` for the lifetime of every reference to this type.
#[repr(transparent)]
pub struct Request<T: Operations>(Opaque<bindings::request>, PhantomData<T>);

impl<T: Operations> Request<T> {
    /// # Safety
    ///
    /// `ptr` must be a request of a `TagSet<T>`, valid for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::request) -> &'a Self {
        // SAFETY: Transparent wrapper; the caller guarantees validity.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_raw(&self) -> *mut bindings::request {
        self.0.get()
    }

    fn pdu(&self) -> &Pdu<T> {
        // SAFETY: By the type invariant the PDU holds an initialized `Pdu<T>`.
        unsafe { &*bindings::rb_blk_mq_rq_to_pdu(self.as_raw()).cast::<Pdu<T>>() }
    }

    fn tagset(&self) -> &TagSet<T> {
        // SAFETY: A request of a tag set points to its queue, whose tag set
        // is a `TagSet<T>` (type invariant) that outlives its requests.
        unsafe {
            let set = (*(*self.as_raw()).q).tag_set;
            &*(*set).driver_data.cast::<TagSet<T>>()
        }
    }

    /// The driver data of the request's tag set.
    pub fn tagset_data(&self) -> &T::TagSetData {
        &self.tagset().data
    }

    /// The driver data of this request.
    pub fn data(&self) -> &T::RequestData {
        &self.pdu().data
    }

    /// The request's tag, unique among the in-flight requests of its
    /// hardware queue; below the tag set's queue depth.
    pub fn tag(&self) -> u32 {
        // SAFETY: The request is valid; `tag` is set before `queue_rq`.
        unsafe { (*self.as_raw()).tag as u32 }
    }

    /// The operation.
    pub fn op(&self) -> Op {
        // SAFETY: The request is valid.
        let op = unsafe { (*self.as_raw()).cmd_flags } & 0xff;
        match op {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            other => Op::Other(other),
        }
    }

    /// Whether the write must reach stable media before completing (FUA).
    pub fn is_fua(&self) -> bool {
        // SAFETY: The request is valid.
        unsafe { (*self.as_raw()).cmd_flags & (1 << bindings::req_flag_bits___REQ_FUA) != 0 }
    }

    /// Start position in 512-byte sectors.
    pub fn sector(&self) -> u64 {
        // SAFETY: The request is valid.
        unsafe { bindings::rb_blk_rq_pos(self.as_raw()) }
    }

    /// Remaining data length in bytes.
    pub fn bytes(&self) -> u32 {
        // SAFETY: The request is valid.
        unsafe { bindings::rb_blk_rq_bytes(self.as_raw()) }
    }

    /// Number of physical segments of the data.
    pub fn nr_phys_segments(&self) -> u16 {
        // SAFETY: The request is valid.
        unsafe { bindings::rb_blk_rq_nr_phys_segments(self.as_raw()) }
    }

    /// For discard requests: the ranges (start sector, sector count) of its
    /// bios, which may be several when discards were merged.
    pub fn discard_ranges(&self, mut f: impl FnMut(u64, u32)) {
        // SAFETY: The request is valid and owned by the driver while it is
        // being queued; its bio chain is stable until it is ended.
        unsafe {
            let mut bio = (*self.as_raw()).bio;
            while !bio.is_null() {
                let iter = (*bio).bi_iter;
                f(iter.bi_sector, iter.bi_size >> 9);
                bio = (*bio).bi_next;
            }
        }
    }

    /// Marks the request in flight and tells the block layer (starts the
    /// timeout timer). Call before the device can see the request.
    pub fn start(&self) {
        self.pdu().state.store(RQ_IN_FLIGHT, Ordering::Release);
        // SAFETY: The request is valid and being queued.
        unsafe { bindings::blk_mq_start_request(self.as_raw()) };
    }

    /// Whether the request is in flight (started and not ended).
    pub fn is_in_flight(&self) -> bool {
        self.pdu().state.load(Ordering::Acquire) == RQ_IN_FLIGHT
    }

    /// Takes the request out of flight; `false` if it already was.
    fn claim(&self) -> bool {
        self.pdu()
            .state
            .compare_exchange(RQ_IN_FLIGHT, RQ_IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Ends the request with `status`, unmapping its data first. Returns
    /// `false` (and does nothing) if it was not in flight: someone else
    /// ended it, or a device reported a stale tag.
    pub fn end(&self, status: BlkStatus) -> bool {
        if !self.claim() {
            return false;
        }
        self.dma_unmap();
        // SAFETY: We won the claim, so this is the only end of this use of
        // the request.
        unsafe { bindings::blk_mq_end_request(self.as_raw(), status.0) };
        true
    }

    /// Ends the request with `status` as part of `batch`: a successful one
    /// is collected and ended (unmapped, then `blk_mq_end_request_batch`)
    /// when the batch is flushed; anything else ends now as with
    /// [`Request::end`]. Returns `false` if it was not in flight.
    pub fn end_batched(&self, status: BlkStatus, batch: &mut CompletionBatch<'_, T>) -> bool {
        if !self.claim() {
            return false;
        }
        if status == BlkStatus::OK {
            // SAFETY: We won the claim; the batch is valid and ends the
            // request through `complete_batch::<T>` exactly once.
            let added = unsafe {
                bindings::rb_blk_mq_add_to_batch(
                    self.as_raw(),
                    batch.raw(),
                    false,
                    Some(complete_batch::<T>),
                )
            };
            if added {
                return true;
            }
        }
        self.dma_unmap();
        // SAFETY: We won the claim, so this is the only end of this use of
        // the request.
        unsafe { bindings::blk_mq_end_request(self.as_raw(), status.0) };
        true
    }

    /// Takes the request out of flight and gives it back to the block layer
    /// to be queued again later (after a controller reset); `false` if it
    /// was not in flight. Call [`TagSet::kick_requeue_list`] on the disk
    /// when the device is back.
    pub fn requeue(&self) -> bool {
        if !self.claim() {
            return false;
        }
        self.dma_unmap();
        // SAFETY: We own this use of the request (claim above).
        unsafe { bindings::blk_mq_requeue_request(self.as_raw(), false) };
        true
    }

    /// Maps the request's data for DMA by the tag set's device. The mapping
    /// is undone when the request ends. Returns the mapped segments.
    pub fn dma_map(&self) -> Result<DmaSegments<'_>> {
        let pdu = self.pdu();
        if pdu.mapped_nents.load(Ordering::Acquire) != 0 {
            return Err(EBUSY);
        }
        let segs = usize::from(self.nr_phys_segments());
        if segs == 0 || segs > pdu.sg.len() {
            return Err(EINVAL);
        }
        let dir = if self.op() == Op::Write {
            bindings::dma_data_direction_DMA_TO_DEVICE
        } else {
            bindings::dma_data_direction_DMA_FROM_DEVICE
        };
        let dev = self.tagset().dma_dev.as_raw();
        if segs == 1 {
            // The common small I/O: map the one bio_vec directly, without
            // building a scatterlist (as the C nvme driver does).
            let mut len = 0u32;
            // SAFETY: The request is being queued, has data (one segment)
            // and `dev` is the tag set's device.
            let addr =
                unsafe { bindings::rb_blk_rq_map_single_bvec(dev, self.as_raw(), dir, &mut len) };
            if addr != u64::MAX {
                if len == self.bytes() {
                    pdu.mapped_sg_count.store(0, Ordering::Relaxed);
                    pdu.single_addr.store(addr, Ordering::Relaxed);
                    pdu.single_len.store(len, Ordering::Relaxed);
                    pdu.mapped_dir.store(dir, Ordering::Relaxed);
                    pdu.mapped_nents.store(1, Ordering::Release);
                    return Ok(DmaSegments {
                        next: core::ptr::null_mut(),
                        left: 1,
                        single: Some((addr, len)),
                        _rq: PhantomData,
                    });
                }
                // One physical segment made of several bio_vecs: undo and
                // use the scatterlist path.
                // SAFETY: Mapped just above with these arguments.
                unsafe { bindings::rb_dma_unmap_page(dev, addr, len as usize, dir) };
            }
        }
        let sg = pdu.sg.as_ptr().cast_mut().cast::<bindings::scatterlist>();
        // SAFETY: `sg` has `pdu.sg.len() >= segs` entries, owned by this
        // request while it is being queued; the queue is this request's.
        // Only `segs` entries are initialized: the block layer never maps
        // more entries than the request has physical segments.
        let count = unsafe {
            bindings::rb_sg_init_table(sg, segs as u32);
            bindings::rb_blk_rq_map_sg((*self.as_raw()).q, self.as_raw(), sg)
        };
        if count <= 0 || count as usize > segs {
            return Err(EIO);
        }
        // SAFETY: `sg` holds `count` initialized entries; `dev` is the tag
        // set's device, kept alive by the tag set.
        let nents = unsafe { bindings::dma_map_sg_attrs(dev, sg, count, dir, 0) };
        if nents == 0 {
            return Err(ENOMEM);
        }
        pdu.mapped_sg_count.store(count as u32, Ordering::Relaxed);
        pdu.mapped_dir.store(dir, Ordering::Relaxed);
        pdu.mapped_nents.store(nents, Ordering::Release);
        Ok(DmaSegments {
            next: sg,
            left: nents,
            single: None,
            _rq: PhantomData,
        })
    }

    fn dma_unmap(&self) {
        let pdu = self.pdu();
        if pdu.mapped_nents.swap(0, Ordering::AcqRel) == 0 {
            return;
        }
        let count = pdu.mapped_sg_count.load(Ordering::Relaxed);
        let dir = pdu.mapped_dir.load(Ordering::Relaxed);
        if count == 0 {
            // SAFETY: Mapped by `dma_map`'s one-bio_vec path with these
            // arguments, unmapped once (the swap above).
            unsafe {
                bindings::rb_dma_unmap_page(
                    self.tagset().dma_dev.as_raw(),
                    pdu.single_addr.load(Ordering::Relaxed),
                    pdu.single_len.load(Ordering::Relaxed) as usize,
                    dir,
                )
            };
            return;
        }
        let sg = pdu.sg.as_ptr().cast_mut().cast::<bindings::scatterlist>();
        // SAFETY: Mapped by `dma_map` with these arguments, unmapped once
        // (the swap above).
        unsafe {
            bindings::dma_unmap_sg_attrs(self.tagset().dma_dev.as_raw(), sg, count as i32, dir, 0)
        };
    }
}

/// The DMA segments (bus address, length) of a mapped request.
pub struct DmaSegments<'a> {
    next: *mut bindings::scatterlist,
    left: u32,
    /// The segment of a request mapped without a scatterlist.
    single: Option<(u64, u32)>,
    _rq: PhantomData<&'a ()>,
}

impl DmaSegments<'_> {
    /// Number of segments not yet returned.
    pub fn remaining(&self) -> u32 {
        self.left
    }
}

impl Iterator for DmaSegments<'_> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        if let Some(segment) = self.single.take() {
            self.left = 0;
            return Some(segment);
        }
        if self.left == 0 || self.next.is_null() {
            return None;
        }
        let sg = self.next;
        self.left -= 1;
        // SAFETY: `sg` is one of the mapped entries of the request, which
        // stays mapped while this borrow of it lives.
        unsafe {
            self.next = if self.left > 0 {
                bindings::rb_sg_next(sg)
            } else {
                core::ptr::null_mut()
            };
            Some((bindings::rb_sg_dma_address(sg), bindings::rb_sg_dma_len(sg)))
        }
    }
}

/// The CPU-to-queue maps of a tag set, filled in [`Operations::map_queues`].
pub struct QueueMaps<'a> {
    set: *mut bindings::blk_mq_tag_set,
    _set: PhantomData<&'a mut ()>,
}

impl QueueMaps<'_> {
    fn map(&mut self, ty: HctxType) -> Option<*mut bindings::blk_mq_queue_map> {
        // SAFETY: `set` is valid during the `map_queues` callback.
        let nr_maps = unsafe { (*self.set).nr_maps } as usize;
        if ty.index() >= nr_maps {
            return None;
        }
        // SAFETY: In bounds of the `map` array (`nr_maps <= HCTX_MAX_TYPES`).
        Some(unsafe { core::ptr::addr_of_mut!((*self.set).map[ty.index()]) })
    }

    /// Gives queue type `ty` `nr_queues` hardware queues starting at
    /// `offset`, spread over the CPUs evenly.
    pub fn map_cpus(&mut self, ty: HctxType, nr_queues: u32, offset: u32) -> Result {
        let map = self.map(ty).ok_or(EINVAL)?;
        // SAFETY: `map` is a valid map of the set being configured.
        unsafe {
            (*map).nr_queues = nr_queues;
            (*map).queue_offset = offset;
            if nr_queues > 0 {
                bindings::blk_mq_map_queues(map);
            }
        }
        Ok(())
    }

    /// Like [`QueueMaps::map_cpus`], but following the CPU affinity of the
    /// device's interrupt vectors, the first at `first_vector`.
    pub fn map_pci_affinity(
        &mut self,
        ty: HctxType,
        nr_queues: u32,
        offset: u32,
        pdev: &pci::Device,
        first_vector: u32,
    ) -> Result {
        let map = self.map(ty).ok_or(EINVAL)?;
        // SAFETY: `map` is valid; `pdev` is a valid device.
        unsafe {
            (*map).nr_queues = nr_queues;
            (*map).queue_offset = offset;
            if nr_queues > 0 {
                bindings::blk_mq_pci_map_queues(map, pdev.as_raw(), first_vector as i32);
            }
        }
        Ok(())
    }
}

/// Parameters of a new tag set.
pub struct TagSetConfig {
    /// Number of hardware queues over all types.
    pub nr_hw_queues: u32,
    /// Tags (requests in flight) per hardware queue.
    pub queue_depth: u32,
    /// Number of queue types in use (1 to 3, see [`HctxType`]).
    pub nr_maps: u32,
    /// Scatterlist entries reserved per request: the disk's `max_segments`.
    pub max_segments: u16,
    /// Request timeout in milliseconds (0: the block layer's 30 s).
    pub timeout_ms: u32,
}

/// A blk-mq tag set (`struct blk_mq_tag_set`) with its driver data.
///
/// # Invariants
///
/// `set` is allocated with `blk_mq_alloc_tag_set` from initialization until
/// drop, its `driver_data` points to `self`, and every request's PDU holds
/// an initialized `Pdu<T>`.
#[pin_data(PinnedDrop)]
pub struct TagSet<T: Operations> {
    #[pin]
    set: Opaque<bindings::blk_mq_tag_set>,
    data: T::TagSetData,
    dma_dev: ARef<Device>,
    max_segments: u16,
}

impl<T: Operations> TagSet<T> {
    /// Allocates a tag set whose requests are DMA-mapped for `dma_dev`.
    pub fn new(
        dma_dev: &Device<Bound>,
        config: TagSetConfig,
        data: T::TagSetData,
    ) -> impl PinInit<Self, Error> {
        let dma_dev = ARef::from(&**dma_dev);
        let init = move |slot: *mut Self| {
            if config.max_segments == 0 || config.nr_maps == 0 || config.nr_maps > 3 {
                return Err(EINVAL);
            }
            // SAFETY: `slot` is valid for writes of every field.
            unsafe {
                core::ptr::addr_of_mut!((*slot).data).write(data);
                core::ptr::addr_of_mut!((*slot).dma_dev).write(dma_dev);
                core::ptr::addr_of_mut!((*slot).max_segments).write(config.max_segments);
            }
            // SAFETY: As above.
            let set = Opaque::raw_get(unsafe { core::ptr::addr_of!((*slot).set) });
            let timeout = if config.timeout_ms == 0 {
                0
            } else {
                // SAFETY: Pure function.
                unsafe { bindings::rb_msecs_to_jiffies(config.timeout_ms) as u32 }
            };
            let c_set = bindings::blk_mq_tag_set {
                ops: OperationsVTable::<T>::build(),
                nr_hw_queues: config.nr_hw_queues,
                queue_depth: config.queue_depth,
                nr_maps: config.nr_maps,
                cmd_size: core::mem::size_of::<Pdu<T>>() as u32,
                numa_node: -1,
                timeout,
                flags: bindings::BLK_MQ_F_SHOULD_MERGE,
                driver_data: slot.cast(),
                ..Default::default()
            };
            // SAFETY: `set` is writable; it stays pinned in `slot`.
            unsafe { set.write(c_set) };
            // SAFETY: `set` is initialized; its callbacks find `data` and
            // `max_segments` through `driver_data`, both written above.
            if let Err(e) = to_result(unsafe { bindings::blk_mq_alloc_tag_set(set) }) {
                // SAFETY: Written above, dropped once.
                unsafe {
                    core::ptr::drop_in_place(core::ptr::addr_of_mut!((*slot).data));
                    core::ptr::drop_in_place(core::ptr::addr_of_mut!((*slot).dma_dev));
                }
                return Err(e);
            }
            Ok(())
        };
        // SAFETY: On success every field is initialized; on failure the ones
        // written were dropped.
        unsafe { pin_init_from_closure(init) }
    }

    /// The driver data of the tag set.
    pub fn data(&self) -> &T::TagSetData {
        &self.data
    }

    fn raw(&self) -> *mut bindings::blk_mq_tag_set {
        self.set.get()
    }

    /// Finds the in-flight request with `tag` on hardware queue `hctx_idx`,
    /// as reported by a device; `None` if either is out of range or the
    /// request is not in flight.
    pub fn request_for_tag(&self, hctx_idx: u32, tag: u32) -> Option<&Request<T>> {
        // SAFETY: The set is allocated (type invariant); `tags` has
        // `nr_hw_queues` entries.
        let rq = unsafe {
            let set = self.raw();
            if hctx_idx >= (*set).nr_hw_queues || (*set).tags.is_null() {
                return None;
            }
            let tags = *(*set).tags.add(hctx_idx as usize);
            if tags.is_null() {
                return None;
            }
            // Checks `tag` against the number of tags.
            bindings::rb_blk_mq_tag_to_rq(tags, tag)
        };
        if rq.is_null() {
            return None;
        }
        // SAFETY: A request of this tag set; requests live as long as it.
        let rq = unsafe { Request::<T>::from_raw(rq) };
        rq.is_in_flight().then_some(rq)
    }

    /// Calls `f` on every request in flight on any queue (for reset and
    /// teardown). `f` may end or requeue them.
    pub fn for_each_in_flight(&self, mut f: impl FnMut(&Request<T>)) {
        // SAFETY: The set is allocated; `tags` has `nr_hw_queues` entries.
        let (nr, tags_arr, depth) = unsafe {
            (
                (*self.raw()).nr_hw_queues,
                (*self.raw()).tags,
                (*self.raw()).queue_depth,
            )
        };
        if tags_arr.is_null() {
            return;
        }
        for hctx in 0..nr {
            // SAFETY: `hctx < nr_hw_queues`.
            let tags = unsafe { *tags_arr.add(hctx as usize) };
            if tags.is_null() {
                continue;
            }
            for tag in 0..depth {
                // SAFETY: As in `request_for_tag`.
                let rq = unsafe { bindings::rb_blk_mq_tag_to_rq(tags, tag) };
                if rq.is_null() {
                    continue;
                }
                // SAFETY: A request of this tag set.
                let rq = unsafe { Request::<T>::from_raw(rq) };
                if rq.is_in_flight() {
                    f(rq);
                }
            }
        }
    }
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for TagSet<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Allocated by the type invariant; no disk uses it anymore
        // (every `GenDisk` holds an `Arc` of it). This runs `exit_request`
        // for every request, dropping their PDUs.
        unsafe { bindings::blk_mq_free_tag_set(self.raw()) };
    }
}

// SAFETY: The C tag set is designed for concurrent use; our fields are Send.
unsafe impl<T: Operations> Send for TagSet<T> {}
// SAFETY: `&self` methods only read the set or use the C API, which locks
// internally; `data` is `Sync`.
unsafe impl<T: Operations> Sync for TagSet<T> {}

/// The C callbacks of an [`Operations`] implementation.
struct OperationsVTable<T: Operations>(PhantomData<T>);

impl<T: Operations> OperationsVTable<T> {
    /// # Safety
    ///
    /// `set` must be the tag set of a `TagSet<T>` (its `driver_data`).
    unsafe fn tagset<'a>(set: *mut bindings::blk_mq_tag_set) -> &'a TagSet<T> {
        // SAFETY: By the caller's guarantee.
        unsafe { &*(*set).driver_data.cast::<TagSet<T>>() }
    }

    /// # Safety
    ///
    /// `hctx` must be a hardware context initialized by `init_hctx_callback`.
    unsafe fn hw_data<'a>(hctx: *mut bindings::blk_mq_hw_ctx) -> &'a T::HwData {
        // SAFETY: `driver_data` is an `Arc<T::HwData>` from `init_hctx`.
        unsafe { &*(*hctx).driver_data.cast::<T::HwData>() }
    }

    extern "C" fn queue_rq_callback(
        hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: blk-mq passes an initialized hctx and a valid request of
        // our tag set, on a queue made by `GenDiskBuilder::build`, whose
        // `queuedata` is an `Arc<T::QueueData>` that outlives the disk.
        let (hw, queue, rq, last) = unsafe {
            (
                Self::hw_data(hctx),
                &*(*(*hctx).queue).queuedata.cast::<T::QueueData>(),
                Request::<T>::from_raw((*bd).rq),
                (*bd).last,
            )
        };
        match T::queue_rq(hw, queue, rq, last) {
            Ok(()) => BlkStatus::OK.0,
            Err(status) => {
                // If it was started, take it back out of flight; if someone
                // ended it meanwhile, it is done: do not let blk-mq end it
                // a second time.
                if rq.is_in_flight() && !rq.claim() {
                    return BlkStatus::OK.0;
                }
                rq.dma_unmap();
                status.0
            }
        }
    }

    extern "C" fn commit_rqs_callback(hctx: *mut bindings::blk_mq_hw_ctx) {
        // SAFETY: An initialized hctx.
        T::commit_rqs(unsafe { Self::hw_data(hctx) })
    }

    extern "C" fn poll_callback(
        hctx: *mut bindings::blk_mq_hw_ctx,
        iob: *mut bindings::io_comp_batch,
    ) -> core::ffi::c_int {
        // SAFETY: An initialized hctx of a queue of our tag set.
        let (tagset, hw) = unsafe { (Self::tagset((*(*hctx).queue).tag_set), Self::hw_data(hctx)) };
        // INVARIANT: the caller's batch (if any) lives across this call and
        // is flushed by it.
        let mut batch = CompletionBatch {
            own: bindings::io_comp_batch::default(),
            external: NonNull::new(iob),
            _p: PhantomData,
        };
        T::poll(tagset, hw, &mut batch) as core::ffi::c_int
    }

    extern "C" fn timeout_callback(rq: *mut bindings::request) -> bindings::blk_eh_timer_return {
        // SAFETY: A request of our tag set.
        match T::timeout(unsafe { Request::<T>::from_raw(rq) }) {
            TimeoutAction::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
            TimeoutAction::ResetTimer => bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER,
        }
    }

    extern "C" fn init_hctx_callback(
        hctx: *mut bindings::blk_mq_hw_ctx,
        set_data: *mut core::ffi::c_void,
        hctx_idx: core::ffi::c_uint,
    ) -> core::ffi::c_int {
        // SAFETY: `set_data` is the set's `driver_data`: our `TagSet<T>`.
        let tagset = unsafe { &*set_data.cast::<TagSet<T>>() };
        from_result(|| {
            let hw = T::init_hctx(&tagset.data, hctx_idx)?;
            // SAFETY: `hctx` is valid; the `Arc` is reclaimed in `exit_hctx`.
            unsafe { (*hctx).driver_data = Arc::into_raw(hw).cast_mut().cast() };
            Ok(0)
        })
    }

    extern "C" fn exit_hctx_callback(hctx: *mut bindings::blk_mq_hw_ctx, _idx: core::ffi::c_uint) {
        // SAFETY: `driver_data` came from `Arc::into_raw` in `init_hctx`.
        unsafe {
            let ptr = (*hctx).driver_data.cast::<T::HwData>();
            if !ptr.is_null() {
                drop(Arc::from_raw(ptr));
                (*hctx).driver_data = core::ptr::null_mut();
            }
        }
    }

    extern "C" fn init_request_callback(
        set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: core::ffi::c_uint,
        _numa_node: core::ffi::c_uint,
    ) -> core::ffi::c_int {
        // SAFETY: `set` is the C set of our `TagSet<T>`.
        let tagset = unsafe { Self::tagset(set) };
        from_result(|| {
            let n = usize::from(tagset.max_segments);
            let mut sg = KVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                sg.push(Opaque::uninit(), GFP_KERNEL)?;
            }
            let pdu = Pdu::<T> {
                state: AtomicU8::new(RQ_IDLE),
                mapped_nents: AtomicU32::new(0),
                mapped_sg_count: AtomicU32::new(0),
                single_addr: AtomicU64::new(0),
                single_len: AtomicU32::new(0),
                mapped_dir: AtomicU32::new(0),
                sg,
                data: T::new_request_data(&tagset.data)?,
            };
            // SAFETY: The PDU is `cmd_size == size_of::<Pdu<T>>()` bytes,
            // suitably aligned by blk-mq, and not yet initialized.
            unsafe {
                bindings::rb_blk_mq_rq_to_pdu(rq)
                    .cast::<Pdu<T>>()
                    .write(pdu)
            };
            Ok(0)
        })
    }

    extern "C" fn exit_request_callback(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: core::ffi::c_uint,
    ) {
        // SAFETY: Initialized by `init_request_callback`, dropped once.
        unsafe { core::ptr::drop_in_place(bindings::rb_blk_mq_rq_to_pdu(rq).cast::<Pdu<T>>()) };
    }

    extern "C" fn map_queues_callback(set: *mut bindings::blk_mq_tag_set) {
        // SAFETY: `set` is the C set of our `TagSet<T>`.
        let tagset = unsafe { Self::tagset(set) };
        let mut maps = QueueMaps {
            set,
            _set: PhantomData,
        };
        T::map_queues(&tagset.data, &mut maps);
    }

    const VTABLE: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq_callback),
        commit_rqs: if T::HAS_COMMIT_RQS {
            Some(Self::commit_rqs_callback)
        } else {
            None
        },
        queue_rqs: None,
        get_budget: None,
        put_budget: None,
        set_rq_budget_token: None,
        get_rq_budget_token: None,
        timeout: if T::HAS_TIMEOUT {
            Some(Self::timeout_callback)
        } else {
            None
        },
        poll: if T::HAS_POLL {
            Some(Self::poll_callback)
        } else {
            None
        },
        complete: None,
        init_hctx: Some(Self::init_hctx_callback),
        exit_hctx: Some(Self::exit_hctx_callback),
        init_request: Some(Self::init_request_callback),
        exit_request: Some(Self::exit_request_callback),
        cleanup_rq: None,
        busy: None,
        map_queues: if T::HAS_MAP_QUEUES {
            Some(Self::map_queues_callback)
        } else {
            None
        },
        // Only present with CONFIG_BLK_DEBUG_FS (off in the debug flavour).
        #[cfg(CONFIG_BLK_DEBUG_FS)]
        show_rq: None,
    };

    fn build() -> &'static bindings::blk_mq_ops {
        &Self::VTABLE
    }
}

/// A `block_device_operations` table whose owner is this module, so the
/// module stays loaded while one of its disks is open.
#[repr(transparent)]
struct BlockFops(bindings::block_device_operations);

// SAFETY: Read-only after initialization; only C reads it.
unsafe impl Sync for BlockFops {}

extern "C" {
    /// This module's `struct module`, defined by modpost in `<module>.mod.c`.
    /// Declared as a byte: only its address is used.
    static __this_module: u8;
}

static BLOCK_FOPS: BlockFops = BlockFops(bindings::block_device_operations {
    // Only the address of the module's own `struct module` is taken.
    owner: core::ptr::addr_of!(__this_module)
        .cast::<bindings::module>()
        .cast_mut(),
    // SAFETY: All-zero is valid for the remaining (optional) callbacks.
    ..unsafe { core::mem::zeroed() }
});

/// Builds a [`GenDisk`]: capacity and queue limits.
pub struct GenDiskBuilder {
    lim: bindings::queue_limits,
    capacity_sectors: u64,
}

impl Default for GenDiskBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GenDiskBuilder {
    /// A builder with the block layer's defaults.
    pub fn new() -> Self {
        Self {
            lim: Default::default(),
            capacity_sectors: 0,
        }
    }

    /// Capacity in 512-byte sectors.
    pub fn capacity_sectors(mut self, sectors: u64) -> Self {
        self.capacity_sectors = sectors;
        self
    }

    /// Logical block size: a power of two from 512 to 4096.
    pub fn logical_block_size(mut self, size: u32) -> Result<Self> {
        if !(512..=4096).contains(&size) || !size.is_power_of_two() {
            return Err(EINVAL);
        }
        self.lim.logical_block_size = size;
        Ok(self)
    }

    /// Physical block size: a power of two, at least the logical one.
    pub fn physical_block_size(mut self, size: u32) -> Result<Self> {
        if size < 512 || !size.is_power_of_two() {
            return Err(EINVAL);
        }
        self.lim.physical_block_size = size;
        Ok(self)
    }

    /// Largest request, in 512-byte sectors.
    pub fn max_hw_sectors(mut self, sectors: u32) -> Self {
        self.lim.max_hw_sectors = sectors;
        self
    }

    /// Most segments per request; must not exceed the tag set's
    /// `max_segments`, which [`GenDiskBuilder::build`] checks.
    pub fn max_segments(mut self, segments: u16) -> Self {
        self.lim.max_segments = segments;
        self
    }

    /// Largest segment in bytes.
    pub fn max_segment_size(mut self, bytes: u32) -> Self {
        self.lim.max_segment_size = bytes;
        self
    }

    /// Segments must not cross this boundary (a mask, e.g. page size - 1,
    /// as NVMe PRPs need).
    pub fn virt_boundary_mask(mut self, mask: u64) -> Self {
        self.lim.virt_boundary_mask = mask as usize;
        self
    }

    /// Required alignment of data buffers (a mask).
    pub fn dma_alignment(mut self, mask: u32) -> Self {
        self.lim.dma_alignment = mask;
        self
    }

    /// The device has a volatile write cache (flushes are sent) and
    /// optionally honours FUA.
    pub fn write_cache(mut self, cache: bool, fua: bool) -> Self {
        if cache {
            self.lim.features |= 1 << 0;
            if fua {
                self.lim.features |= 1 << 1;
            }
        }
        self
    }

    /// The disk has poll queues (io_uring IOPOLL).
    pub fn poll(mut self, poll: bool) -> Self {
        if poll {
            self.lim.features |= 1 << 9;
        }
        self
    }

    /// Discard support: largest discard in sectors (0: none) and most
    /// ranges per request.
    pub fn discard(mut self, max_sectors: u32, max_segments: u16, granularity: u32) -> Self {
        self.lim.max_hw_discard_sectors = max_sectors;
        self.lim.max_discard_segments = max_segments;
        self.lim.discard_granularity = granularity;
        self
    }

    /// Largest write-zeroes request in sectors (0: none).
    pub fn max_write_zeroes_sectors(mut self, sectors: u32) -> Self {
        self.lim.max_write_zeroes_sectors = sectors;
        self
    }

    /// Allocates the disk on `tagset` with `queue_data`, names it and adds
    /// it under `parent`.
    pub fn build<T: Operations>(
        mut self,
        parent: &Device<Bound>,
        name: fmt::Arguments<'_>,
        tagset: Arc<TagSet<T>>,
        queue_data: Arc<T::QueueData>,
    ) -> Result<GenDisk<T>> {
        if self.lim.max_segments > tagset.max_segments {
            return Err(EINVAL);
        }
        let name = CString::try_from_fmt(name)?;
        let queue_data = Arc::into_raw(queue_data);
        // SAFETY: The tag set is allocated; `lim` is a valid limits struct;
        // the disk keeps an `Arc` of the tag set, and `queue_data` until it
        // is deleted.
        let disk = unsafe {
            bindings::rb_blk_mq_alloc_disk(
                tagset.raw(),
                &mut self.lim,
                queue_data.cast_mut().cast(),
            )
        };
        let disk = match kernel::error::from_err_ptr(disk) {
            Ok(disk) => disk,
            Err(e) => {
                // SAFETY: From `into_raw` above, not handed out.
                drop(unsafe { Arc::from_raw(queue_data) });
                return Err(e);
            }
        };
        // SAFETY: `disk` was just allocated and is not yet visible.
        unsafe {
            let bytes = name.as_bytes();
            let dst = &mut (*disk).disk_name;
            let n = bytes.len().min(dst.len() - 1);
            for (d, s) in dst.iter_mut().zip(&bytes[..n]) {
                *d = *s as _;
            }
            dst[n] = 0;
            (*disk).fops = &BLOCK_FOPS.0;
            bindings::set_capacity(disk, self.capacity_sectors);
        }
        // SAFETY: `disk` is fully set up; `parent` is bound.
        let ret =
            unsafe { bindings::device_add_disk(parent.as_raw(), disk, core::ptr::null_mut()) };
        if let Err(e) = to_result(ret) {
            // SAFETY: Not added, so only our reference exists; then nothing
            // uses `queue_data` anymore.
            unsafe {
                bindings::put_disk(disk);
                drop(Arc::from_raw(queue_data));
            }
            return Err(e);
        }
        // INVARIANT: added above.
        Ok(GenDisk {
            disk,
            tagset,
            queue_data,
        })
    }
}

/// A disk (`struct gendisk`), removed on drop.
///
/// # Invariants
///
/// `disk` is added (`device_add_disk`) on `tagset` until drop, and its
/// queue's `queuedata` is `queue_data`, from `Arc::into_raw`.
pub struct GenDisk<T: Operations> {
    disk: *mut bindings::gendisk,
    tagset: Arc<TagSet<T>>,
    queue_data: *const T::QueueData,
}

impl<T: Operations> GenDisk<T> {
    /// The disk's name, e.g. `rnvme0n1`.
    pub fn name(&self) -> &CStr {
        // SAFETY: `disk_name` is a NUL-terminated array in a live disk.
        unsafe { CStr::from_char_ptr((*self.disk).disk_name.as_ptr().cast()) }
    }

    /// The tag set the disk queues on.
    pub fn tagset(&self) -> &Arc<TagSet<T>> {
        &self.tagset
    }

    /// The disk's queue data.
    pub fn queue_data(&self) -> &T::QueueData {
        // SAFETY: Valid until drop by the type invariant.
        unsafe { &*self.queue_data }
    }

    /// Sets the capacity (after a namespace resize).
    pub fn set_capacity_sectors(&self, sectors: u64) {
        // SAFETY: The disk is live.
        unsafe { bindings::set_capacity(self.disk, sectors) };
    }

    /// Stops dispatching new requests to the driver (`blk_mq_quiesce_queue`);
    /// waits for `queue_rq` calls in progress.
    pub fn quiesce(&self) {
        // SAFETY: The disk and its queue are live.
        unsafe { bindings::blk_mq_quiesce_queue((*self.disk).queue) };
    }

    /// Resumes dispatching after [`GenDisk::quiesce`].
    pub fn unquiesce(&self) {
        // SAFETY: The disk and its queue are live.
        unsafe { bindings::blk_mq_unquiesce_queue((*self.disk).queue) };
    }

    /// Dispatches requests that were requeued.
    pub fn kick_requeue_list(&self) {
        // SAFETY: The disk and its queue are live.
        unsafe { bindings::blk_mq_kick_requeue_list((*self.disk).queue) };
    }
}

impl<T: Operations> Drop for GenDisk<T> {
    fn drop(&mut self) {
        // SAFETY: Added by the type invariant; removed and released once.
        // `del_gendisk` waits for requests to finish, so the driver's queues
        // must still be able to complete them here.
        unsafe {
            bindings::del_gendisk(self.disk);
            bindings::put_disk(self.disk);
        }
        // SAFETY: After `del_gendisk` no request reaches the driver through
        // this queue, so the queue data is no longer used.
        drop(unsafe { Arc::from_raw(self.queue_data) });
    }
}

// SAFETY: The disk may be removed from any thread.
unsafe impl<T: Operations> Send for GenDisk<T> {}
// SAFETY: `&self` methods call thread-safe C functions.
unsafe impl<T: Operations> Sync for GenDisk<T> {}
