// SPDX-License-Identifier: GPL-2.0

//! Socket buffers: an owned [`SkBuff`], its DMA mapping for transmission
//! ([`MappedSkb`]) and page-sized receive buffers ([`RxPage`]).
//!
//! Mirrors the `SkBuff` of the net RFC (`rust/kernel/net/dev.rs`): owned
//! and consumed explicitly. Dropping an `SkBuff` frees it with
//! `dev_kfree_skb_any` (valid in any context); in NAPI poll use
//! [`SkBuff::napi_consume`] instead.

use crate::rust_bindings::{bindings, device::Device, error::eopnotsupp, net};
use core::ptr::NonNull;
use kernel::{prelude::*, types::ARef};

/// `MAX_SKB_FRAGS` of the kernel this is built for (checked in helpers.c).
pub const MAX_SKB_FRAGS: usize = 17;

/// An owned socket buffer.
///
/// # Invariants
///
/// `0` points to a valid `struct sk_buff` this object owns (one reference).
pub struct SkBuff(NonNull<bindings::sk_buff>);

// SAFETY: An skb may be used and freed from any thread.
unsafe impl Send for SkBuff {}

/// What a TX checksum offload request needs (`CHECKSUM_PARTIAL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsumInfo {
    /// 4 for IPv4, 6 for IPv6.
    pub l3: u8,
    /// IP protocol number of the L4 header (TCP 6, UDP 17).
    pub l4: u8,
    /// Offset of the L3 header from the frame start.
    pub l3_off: u8,
    /// L3 header length in bytes.
    pub l3_len: u8,
    /// L4 header length in 32-bit words.
    pub l4_len: u8,
    /// TCP segmentation offload: the segment payload size (MSS); 0 for a
    /// checksum-only request.
    pub mss: u16,
}

impl SkBuff {
    /// Takes ownership of `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid skb whose reference the caller hands over.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::sk_buff) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    /// The C object.
    pub fn as_raw(&self) -> *mut bindings::sk_buff {
        self.0.as_ptr()
    }

    fn into_raw(self) -> *mut bindings::sk_buff {
        let ptr = self.0.as_ptr();
        core::mem::forget(self);
        ptr
    }

    /// Total length in bytes.
    pub fn len(&self) -> u32 {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_skb_len(self.as_raw()) }
    }

    /// Whether the skb carries no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the linear part.
    pub fn head_len(&self) -> u32 {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_skb_headlen(self.as_raw()) }
    }

    /// Number of page fragments.
    pub fn nr_frags(&self) -> usize {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_skb_nr_frags(self.as_raw()) as usize }
    }

    /// The TX queue the stack chose.
    pub fn queue_mapping(&self) -> u16 {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_skb_queue_mapping(self.as_raw()) }
    }

    /// Moves all data into the linear part.
    pub fn linearize(&mut self) -> Result {
        // SAFETY: Valid and owned by the type invariant.
        kernel::error::to_result(unsafe { bindings::rb_skb_linearize(self.as_raw()) })
    }

    /// Computes a pending (`CHECKSUM_PARTIAL`) checksum in software.
    pub fn checksum_help(&mut self) -> Result {
        // SAFETY: Valid and owned by the type invariant.
        kernel::error::to_result(unsafe { bindings::rb_skb_checksum_help(self.as_raw()) })
    }

    /// The checksum or segmentation offload the stack asks for: `Ok(None)`
    /// for none, `Err` if the request is not TCP/UDP over IPv4/IPv6 (or a
    /// GSO skb that is not TCP: it must be dropped, not checksummed).
    pub fn tx_csum(&self) -> Result<Option<CsumInfo>> {
        let mut c = CsumInfo::default();
        // SAFETY: Valid by the type invariant; the out pointers are live.
        let ret = unsafe {
            bindings::rb_skb_tx_csum(
                self.as_raw(),
                &mut c.l3,
                &mut c.l4,
                &mut c.l3_off,
                &mut c.l3_len,
                &mut c.l4_len,
                &mut c.mss,
            )
        };
        match ret {
            0 => Ok(None),
            1 => Ok(Some(c)),
            _ => Err(eopnotsupp()),
        }
    }

    /// Whether the stack left segmentation to the device (a GSO skb).
    pub fn is_gso(&self) -> bool {
        // SAFETY: Valid by the type invariant.
        unsafe { bindings::rb_skb_is_gso(self.as_raw()) }
    }

    /// Records the software TX timestamp, if requested.
    pub fn tx_timestamp(&mut self) {
        // SAFETY: Valid and owned by the type invariant.
        unsafe { bindings::rb_skb_tx_timestamp(self.as_raw()) }
    }

    /// Frees the skb from NAPI poll (`napi_consume_skb`); `budget` is the
    /// poll's budget (0 from netpoll).
    pub fn napi_consume(self, budget: i32) {
        // SAFETY: We own the skb; `napi_consume_skb` handles budget 0.
        unsafe { bindings::napi_consume_skb(self.into_raw(), budget) }
    }

    /// Finishes a received frame: protocol (`eth_type_trans`), RX queue,
    /// RSS hash and checksum result.
    pub fn rx_finish(&mut self, dev: &net::Device, queue: u16, hash: u32, l4: bool, csum_ok: bool) {
        // SAFETY: Both are valid; the skb holds a whole Ethernet frame.
        unsafe { bindings::rb_skb_rx_finish(self.as_raw(), dev.as_raw(), queue, hash, l4, csum_ok) }
    }

    pub(crate) fn give(self) -> *mut bindings::sk_buff {
        self.into_raw()
    }
}

impl Drop for SkBuff {
    fn drop(&mut self) {
        // SAFETY: We own the skb; `dev_kfree_skb_any` is valid in any context.
        unsafe { bindings::rb_dev_kfree_skb_any(self.as_raw()) }
    }
}

#[derive(Clone, Copy, Default)]
struct Segment {
    addr: u64,
    len: u32,
    page: bool,
}

fn unmap_segments(dev: &Device, segs: &[Segment]) {
    for s in segs {
        // SAFETY: Each segment is a live mapping for `dev` made by
        // `MappedSkb::new`, undone once with the same size and direction.
        unsafe {
            if s.page {
                bindings::rb_dma_unmap_page(
                    dev.as_raw(),
                    s.addr,
                    s.len as usize,
                    bindings::dma_data_direction_DMA_TO_DEVICE,
                );
            } else {
                bindings::rb_dma_unmap_single(
                    dev.as_raw(),
                    s.addr,
                    s.len as usize,
                    bindings::dma_data_direction_DMA_TO_DEVICE,
                );
            }
        }
    }
}

/// An skb mapped for transmission: its linear part and each fragment.
///
/// # Invariants
///
/// `segs[..n]` are live `DMA_TO_DEVICE` mappings of the skb's data for
/// `dev` (linear part with `dma_map_single`, fragments as pages).
pub struct MappedSkb {
    skb: Option<SkBuff>,
    dev: ARef<Device>,
    segs: [Segment; MAX_SKB_FRAGS + 1],
    n: usize,
}

impl MappedSkb {
    /// Maps `skb` for `dev`; on failure the skb is given back, unmapped.
    pub fn new(dev: &Device, skb: SkBuff) -> core::result::Result<Self, SkBuff> {
        let mut segs = [Segment::default(); MAX_SKB_FRAGS + 1];
        let mut n = 0;
        let raw = skb.as_raw();
        let nr_frags = skb.nr_frags();
        let head = skb.head_len();
        if nr_frags > MAX_SKB_FRAGS {
            return Err(skb);
        }
        if head > 0 {
            // SAFETY: `dev` and the skb are valid; the mapping is undone in
            // `unmap_segments` with the same size and direction.
            let addr = unsafe { bindings::rb_skb_map_head(dev.as_raw(), raw) };
            // SAFETY: `addr` came from the DMA API for `dev`.
            if unsafe { bindings::rb_dma_mapping_error(dev.as_raw(), addr) } != 0 {
                return Err(skb);
            }
            segs[0] = Segment {
                addr,
                len: head,
                page: false,
            };
            n = 1;
        }
        for i in 0..nr_frags {
            let mut len = 0u32;
            // SAFETY: `i < nr_frags`; the mapping is undone in
            // `unmap_segments`.
            let addr = unsafe { bindings::rb_skb_map_frag(dev.as_raw(), raw, i as u32, &mut len) };
            // SAFETY: `addr` came from the DMA API for `dev`.
            if unsafe { bindings::rb_dma_mapping_error(dev.as_raw(), addr) } != 0 {
                unmap_segments(dev, &segs[..n]);
                return Err(skb);
            }
            // `n <= i + 1 <= MAX_SKB_FRAGS` here.
            segs[n] = Segment {
                addr,
                len,
                page: true,
            };
            n += 1;
        }
        // INVARIANT: `segs[..n]` were mapped above.
        Ok(Self {
            skb: Some(skb),
            dev: dev.to_owned(),
            segs,
            n,
        })
    }

    fn unmap_all(&mut self) {
        unmap_segments(&self.dev, &self.segs[..self.n]);
        self.n = 0;
    }

    /// The mapped segments: bus address and length, in frame order.
    pub fn segments(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.segs[..self.n].iter().map(|s| (s.addr, s.len))
    }

    /// Number of segments.
    pub fn nr_segments(&self) -> usize {
        self.n
    }

    /// Unmaps and returns the skb.
    pub fn unmap(mut self) -> Option<SkBuff> {
        self.unmap_all();
        self.skb.take()
    }
}

impl Drop for MappedSkb {
    fn drop(&mut self) {
        self.unmap_all();
    }
}

/// A page mapped `DMA_FROM_DEVICE` as one receive buffer of
/// [`RxPage::buf_len`] bytes.
///
/// # Invariants
///
/// `page` is an owned page mapped for `dev` at `dma` until it is consumed
/// or dropped.
pub struct RxPage {
    page: NonNull<bindings::page>,
    dma: u64,
    dev: ARef<Device>,
}

// SAFETY: Pages and DMA mappings may be used and released on any CPU.
unsafe impl Send for RxPage {}

impl RxPage {
    /// Bytes the device may write into one buffer.
    pub fn buf_len() -> u32 {
        // SAFETY: Pure computation.
        unsafe { bindings::rb_rx_buf_len() }
    }

    /// Allocates and maps a buffer (atomic allocation: usable in NAPI).
    pub fn new(dev: &Device) -> Result<Self> {
        let mut dma = 0;
        // SAFETY: `dev` is valid; `dma` is writable.
        let page = unsafe { bindings::rb_rx_page_alloc(dev.as_raw(), &mut dma) };
        Ok(Self {
            page: NonNull::new(page).ok_or(ENOMEM)?,
            dma,
            dev: dev.to_owned(),
        })
    }

    /// The bus address the device writes to.
    pub fn dma_handle(&self) -> u64 {
        self.dma
    }

    fn into_parts(self) -> (*mut bindings::page, u64, ARef<Device>) {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so `dev` is moved out exactly once.
        let dev = unsafe { core::ptr::read(&me.dev) };
        (me.page.as_ptr(), me.dma, dev)
    }

    /// Turns the buffer into the head of a new skb holding `len` bytes at
    /// `offset` (both checked against the buffer size).
    pub fn into_skb(self, offset: u32, len: u32) -> Result<SkBuff> {
        if len == 0
            || offset
                .checked_add(len)
                .map_or(true, |end| end > Self::buf_len())
        {
            return Err(EINVAL);
        }
        let (page, dma, dev) = self.into_parts();
        // SAFETY: We own the page and its mapping; the helper unmaps it and
        // hands the page to the new skb (or frees it on failure).
        let skb = unsafe { bindings::rb_rx_page_build_skb(dev.as_raw(), page, dma, offset, len) };
        // SAFETY: A new skb we own, or NULL.
        unsafe { SkBuff::from_raw(skb) }.ok_or(ENOMEM)
    }

    /// Copies `len` bytes at `offset` into a new small skb allocated from
    /// `napi`'s cache; the buffer stays mapped and can be posted again
    /// (the C drivers' RX copybreak for short frames).
    pub(crate) fn copy_to_skb(
        &self,
        napi: *mut bindings::napi_struct,
        offset: u32,
        len: u32,
    ) -> Result<SkBuff> {
        if len == 0
            || offset
                .checked_add(len)
                .map_or(true, |end| end > Self::buf_len())
        {
            return Err(EINVAL);
        }
        // SAFETY: The caller passes the NAPI instance it polls from; the
        // page and mapping are ours (type invariant) and the range was
        // checked against the buffer.
        let skb = unsafe {
            bindings::rb_rx_page_copy_skb(
                napi,
                self.dev.as_raw(),
                self.page.as_ptr(),
                self.dma,
                offset,
                len,
            )
        };
        // SAFETY: A new skb we own, or NULL.
        unsafe { SkBuff::from_raw(skb) }.ok_or(ENOMEM)
    }

    /// Appends the buffer's first `len` bytes to `skb` as a fragment; on
    /// error (bad length, too many fragments) the buffer is freed.
    pub fn append_to(self, skb: &mut SkBuff, len: u32) -> Result {
        if len == 0 || len > Self::buf_len() || skb.nr_frags() >= MAX_SKB_FRAGS {
            return Err(EINVAL);
        }
        let (page, dma, dev) = self.into_parts();
        // SAFETY: We own the page and mapping; the skb has a free fragment
        // slot (checked above) and takes the page reference.
        unsafe { bindings::rb_rx_page_add_frag(dev.as_raw(), skb.as_raw(), page, dma, len) };
        Ok(())
    }
}

impl Drop for RxPage {
    fn drop(&mut self) {
        // SAFETY: We own the page and its mapping (type invariant).
        unsafe { bindings::rb_rx_page_free(self.dev.as_raw(), self.page.as_ptr(), self.dma) }
    }
}
