// SPDX-License-Identifier: GPL-2.0

//! DMA: coherent allocations and streaming mappings.
//!
//! [`CoherentAllocation`] mirrors upstream `kernel::dma::CoherentAllocation`
//! (6.15-7.0). Device-visible memory is never exposed as a Rust reference:
//! elements are read and written with volatile accesses, bounds-checked,
//! because the device may change them at any time. Use
//! [`crate::rust_bindings::io::dma_rmb`]/[`crate::rust_bindings::io::dma_wmb`]
//! around ownership bits; volatile alone orders nothing.
//!
//! [`SingleMapping`] is the local streaming-DMA type the upstream survey
//! calls for (upstream has only scatter-gather tables): it owns a `kmalloc`
//! buffer while it is mapped, so the memory cannot be freed under the device,
//! and unmaps with the same size and direction.

use crate::rust_bindings::{
    bindings,
    device::{Bound, Device},
    error::eoverflow,
};
use core::ptr::NonNull;
use kernel::{
    alloc::{flags::GFP_ATOMIC, Flags},
    prelude::*,
    types::{ARef, AsBytes, FromBytes},
};

/// A DMA address mask: the device can address `2^n` bytes.
#[derive(Clone, Copy)]
pub struct DmaMask(u64);

impl DmaMask {
    /// An `N`-bit mask; `N` must be between 1 and 64 (build error otherwise).
    pub const fn new<const N: u32>() -> Self {
        assert!(N >= 1 && N <= 64, "DMA mask width must be 1..=64");
        Self::from_bits(N)
    }

    /// An `n`-bit mask, checked at run time.
    pub fn try_new(n: u32) -> Result<Self> {
        if n == 0 || n > 64 {
            return Err(EINVAL);
        }
        Ok(Self::from_bits(n))
    }

    const fn from_bits(n: u32) -> Self {
        if n == 64 {
            Self(u64::MAX)
        } else {
            Self((1u64 << n) - 1)
        }
    }

    /// The mask value.
    pub const fn value(self) -> u64 {
        self.0
    }
}

/// The direction of a streaming mapping (`enum dma_data_direction`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DataDirection {
    /// The device reads and writes the buffer.
    Bidirectional,
    /// The device reads the buffer (CPU to device).
    ToDevice,
    /// The device writes the buffer (device to CPU).
    FromDevice,
}

impl DataDirection {
    fn as_raw(self) -> bindings::dma_data_direction {
        match self {
            Self::Bidirectional => bindings::dma_data_direction_DMA_BIDIRECTIONAL,
            Self::ToDevice => bindings::dma_data_direction_DMA_TO_DEVICE,
            Self::FromDevice => bindings::dma_data_direction_DMA_FROM_DEVICE,
        }
    }
}

fn raw_gfp(flags: Flags) -> bindings::gfp_t {
    // `kernel::alloc::Flags` hides its bits on 6.12; the DMA API only needs
    // to know whether it may sleep (it always zeroes coherent memory).
    // SAFETY: Reading an immutable C constant.
    unsafe {
        if flags == GFP_ATOMIC {
            bindings::RB_GFP_ATOMIC
        } else {
            bindings::RB_GFP_KERNEL
        }
    }
}

/// Memory shared with a device: `count` elements of `T`, zeroed at
/// allocation.
///
/// # Invariants
///
/// `cpu_addr` points to `count` elements of `T` allocated with
/// `dma_alloc_attrs` for `dev`, at bus address `dma_handle`, until drop.
pub struct CoherentAllocation<T: AsBytes + FromBytes> {
    dev: ARef<Device>,
    dma_handle: u64,
    count: usize,
    cpu_addr: NonNull<T>,
}

impl<T: AsBytes + FromBytes> CoherentAllocation<T> {
    /// Allocates `count` zeroed elements for `dev`.
    pub fn alloc_coherent(dev: &Device<Bound>, count: usize, gfp: Flags) -> Result<Self> {
        let size = core::mem::size_of::<T>()
            .checked_mul(count)
            .ok_or_else(eoverflow)?;
        if size == 0 {
            return Err(EINVAL);
        }
        let mut dma_handle: bindings::dma_addr_t = 0;
        // SAFETY: `dev` is a valid, bound device; `dma_handle` is writable.
        let ptr = unsafe {
            bindings::dma_alloc_attrs(dev.as_raw(), size, &mut dma_handle, raw_gfp(gfp), 0)
        };
        let cpu_addr = NonNull::new(ptr.cast::<T>()).ok_or(ENOMEM)?;
        // INVARIANT: allocated just above.
        Ok(Self {
            dev: ARef::from(&**dev),
            dma_handle,
            count,
            cpu_addr,
        })
    }

    /// Number of elements.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.count * core::mem::size_of::<T>()
    }

    /// Bus address of the first element, to hand to the device.
    pub fn dma_handle(&self) -> u64 {
        self.dma_handle
    }

    /// Bus address of element `index`.
    pub fn dma_handle_with_offset(&self, index: usize) -> Result<u64> {
        if index >= self.count {
            return Err(EINVAL);
        }
        Ok(self.dma_handle + (index * core::mem::size_of::<T>()) as u64)
    }

    /// Reads element `index` (a volatile read: the device may write it).
    pub fn read(&self, index: usize) -> Result<T> {
        if index >= self.count {
            return Err(EINVAL);
        }
        // SAFETY: In bounds (checked); `T: FromBytes` makes any bit pattern
        // the device leaves valid; aligned by `dma_alloc_attrs`.
        Ok(unsafe { self.cpu_addr.as_ptr().add(index).read_volatile() })
    }

    /// Writes element `index` (a volatile write).
    pub fn write(&self, index: usize, value: T) -> Result {
        if index >= self.count {
            return Err(EINVAL);
        }
        // SAFETY: In bounds (checked) and aligned; the memory is ours to
        // write; no Rust reference to it exists.
        unsafe { self.cpu_addr.as_ptr().add(index).write_volatile(value) };
        Ok(())
    }

    /// Copies `src` into the allocation starting at element `offset`.
    pub fn write_slice(&self, offset: usize, src: &[T]) -> Result
    where
        T: Copy,
    {
        let end = offset.checked_add(src.len()).ok_or(EINVAL)?;
        if end > self.count {
            return Err(EINVAL);
        }
        for (i, value) in src.iter().enumerate() {
            // SAFETY: `offset + i < end <= count`.
            unsafe {
                self.cpu_addr
                    .as_ptr()
                    .add(offset + i)
                    .write_volatile(*value)
            };
        }
        Ok(())
    }

    /// Copies elements starting at `offset` into `dst`.
    pub fn read_slice(&self, offset: usize, dst: &mut [T]) -> Result {
        let end = offset.checked_add(dst.len()).ok_or(EINVAL)?;
        if end > self.count {
            return Err(EINVAL);
        }
        for (i, value) in dst.iter_mut().enumerate() {
            // SAFETY: `offset + i < end <= count`; `T: FromBytes`.
            *value = unsafe { self.cpu_addr.as_ptr().add(offset + i).read_volatile() };
        }
        Ok(())
    }
}

impl<T: AsBytes + FromBytes> Drop for CoherentAllocation<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this is our allocation, freed once.
        // The device must be quiesced by now (the driver's unbind).
        unsafe {
            bindings::dma_free_attrs(
                self.dev.as_raw(),
                self.size(),
                self.cpu_addr.as_ptr().cast(),
                self.dma_handle,
                0,
            )
        };
    }
}

// SAFETY: The allocation may be used and freed from any thread.
unsafe impl<T: AsBytes + FromBytes + Send> Send for CoherentAllocation<T> {}
// SAFETY: `&self` accessors are single volatile accesses of `T: Sync` data.
unsafe impl<T: AsBytes + FromBytes + Sync> Sync for CoherentAllocation<T> {}

/// A `kmalloc` buffer mapped for streaming DMA (`dma_map_single`).
///
/// # Invariants
///
/// `buf`'s storage is mapped for `dev` at `dma_handle` for `buf.len()`
/// bytes in direction `dir` until drop or [`SingleMapping::unmap`].
pub struct SingleMapping {
    dev: ARef<Device>,
    buf: KVec<u8>,
    dma_handle: u64,
    dir: DataDirection,
}

impl SingleMapping {
    /// Maps `buf` for `dev`. The buffer is owned by the mapping until it is
    /// unmapped, so it cannot be freed or reallocated under the device.
    pub fn new(dev: &Device<Bound>, buf: KVec<u8>, dir: DataDirection) -> Result<Self> {
        if buf.is_empty() {
            return Err(EINVAL);
        }
        // SAFETY: `buf` is `kmalloc` memory (linear map), valid for
        // `buf.len()` bytes; `dev` is bound.
        let handle = unsafe {
            bindings::rb_dma_map_single(
                dev.as_raw(),
                buf.as_ptr().cast_mut().cast(),
                buf.len(),
                dir.as_raw(),
            )
        };
        // SAFETY: `handle` came from the mapping call above.
        if unsafe { bindings::rb_dma_mapping_error(dev.as_raw(), handle) } != 0 {
            return Err(ENOMEM);
        }
        // INVARIANT: mapped just above.
        Ok(Self {
            dev: ARef::from(&**dev),
            buf,
            dma_handle: handle,
            dir,
        })
    }

    /// Bus address of the buffer.
    pub fn dma_handle(&self) -> u64 {
        self.dma_handle
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the buffer is empty (never: mapping an empty one fails).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Gives the CPU the buffer for `f` (`dma_sync_single_for_cpu`), then
    /// hands it back to the device (`dma_sync_single_for_device`). Call it
    /// only while the device is not using the buffer.
    pub fn with_cpu<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // SAFETY: Mapped by the type invariant, same size and direction.
        unsafe {
            bindings::rb_dma_sync_single_for_cpu(
                self.dev.as_raw(),
                self.dma_handle,
                self.buf.len(),
                self.dir.as_raw(),
            )
        };
        let ret = f(&mut self.buf);
        // SAFETY: As above.
        unsafe {
            bindings::rb_dma_sync_single_for_device(
                self.dev.as_raw(),
                self.dma_handle,
                self.buf.len(),
                self.dir.as_raw(),
            )
        };
        ret
    }

    /// Unmaps the buffer and returns it to the CPU.
    pub fn unmap(self) -> KVec<u8> {
        let mut this = core::mem::ManuallyDrop::new(self);
        this.unmap_in_place();
        // SAFETY: `this` is never used or dropped again, so each field is
        // moved out exactly once.
        let (dev, buf) = unsafe { (core::ptr::read(&this.dev), core::ptr::read(&this.buf)) };
        drop(dev);
        buf
    }

    fn unmap_in_place(&mut self) {
        // SAFETY: Mapped by the type invariant; unmapped once (by `unmap`,
        // which forgets `self`, or by `drop`).
        unsafe {
            bindings::rb_dma_unmap_single(
                self.dev.as_raw(),
                self.dma_handle,
                self.buf.len(),
                self.dir.as_raw(),
            )
        };
    }
}

impl Drop for SingleMapping {
    fn drop(&mut self) {
        self.unmap_in_place();
    }
}

/// A pool of small, equally sized coherent DMA blocks (`struct dma_pool`),
/// e.g. NVMe PRP lists.
///
/// # Invariants
///
/// `pool` was created with `dma_pool_create` for `dev`, with blocks of
/// `count` elements of `T`, and is destroyed on drop, after every block
/// (each holds an `Arc` of the pool) was freed.
pub struct DmaPool<T: AsBytes + FromBytes> {
    pool: NonNull<bindings::dma_pool>,
    count: usize,
    _dev: ARef<Device>,
    _type: core::marker::PhantomData<T>,
}

impl<T: AsBytes + FromBytes> DmaPool<T> {
    /// Creates a pool of blocks of `count` elements, aligned to `align`
    /// bytes (a power of two), that never cross a `boundary`-byte boundary
    /// (0: no constraint).
    pub fn new(
        name: &'static kernel::str::CStr,
        dev: &Device<Bound>,
        count: usize,
        align: usize,
        boundary: usize,
    ) -> Result<kernel::sync::Arc<Self>> {
        let size = core::mem::size_of::<T>()
            .checked_mul(count)
            .ok_or_else(eoverflow)?;
        if size == 0 || !align.is_power_of_two() {
            return Err(EINVAL);
        }
        // SAFETY: `dev` is bound; `name` is 'static.
        let pool = unsafe {
            bindings::dma_pool_create(name.as_char_ptr(), dev.as_raw(), size, align, boundary)
        };
        let pool = NonNull::new(pool).ok_or(ENOMEM)?;
        // INVARIANT: created just above.
        let this = Self {
            pool,
            count,
            _dev: ARef::from(&**dev),
            _type: core::marker::PhantomData,
        };
        Ok(kernel::sync::Arc::new(this, GFP_KERNEL)?)
    }

    /// Allocates a block (zeroed).
    pub fn alloc(self: &kernel::sync::Arc<Self>, gfp: Flags) -> Result<DmaPoolBlock<T>> {
        let mut handle: bindings::dma_addr_t = 0;
        // SAFETY: The pool is live; `handle` is writable. `__GFP_ZERO` is
        // not available from `Flags` on 6.12, so the block is zeroed below.
        let ptr =
            unsafe { bindings::dma_pool_alloc(self.pool.as_ptr(), raw_gfp(gfp), &mut handle) };
        let cpu = NonNull::new(ptr.cast::<T>()).ok_or(ENOMEM)?;
        // INVARIANT: allocated from this pool just above.
        let block = DmaPoolBlock {
            pool: self.clone(),
            cpu,
            handle,
        };
        for i in 0..self.count {
            // SAFETY: `i < count`, the block's length; all-zero is a valid
            // `T` (`FromBytes`).
            unsafe { block.cpu.as_ptr().add(i).write_bytes(0, 1) };
        }
        Ok(block)
    }
}

impl<T: AsBytes + FromBytes> Drop for DmaPool<T> {
    fn drop(&mut self) {
        // SAFETY: Created by us; every block is gone (type invariant).
        unsafe { bindings::dma_pool_destroy(self.pool.as_ptr()) };
    }
}

// SAFETY: `dma_pool` is internally locked and may be used from any thread.
unsafe impl<T: AsBytes + FromBytes + Send> Send for DmaPool<T> {}
// SAFETY: As above.
unsafe impl<T: AsBytes + FromBytes + Sync> Sync for DmaPool<T> {}

/// One block of a [`DmaPool`]: `count` elements of `T` shared with the
/// device, accessed with volatile reads and writes.
///
/// # Invariants
///
/// `cpu`/`handle` is a block allocated from `pool`, freed on drop.
pub struct DmaPoolBlock<T: AsBytes + FromBytes> {
    pool: kernel::sync::Arc<DmaPool<T>>,
    cpu: NonNull<T>,
    handle: u64,
}

impl<T: AsBytes + FromBytes> DmaPoolBlock<T> {
    /// Number of elements.
    pub fn count(&self) -> usize {
        self.pool.count
    }

    /// Bus address of the block.
    pub fn dma_handle(&self) -> u64 {
        self.handle
    }

    /// Reads element `index`.
    pub fn read(&self, index: usize) -> Result<T> {
        if index >= self.pool.count {
            return Err(EINVAL);
        }
        // SAFETY: In bounds; `T: FromBytes`.
        Ok(unsafe { self.cpu.as_ptr().add(index).read_volatile() })
    }

    /// Writes element `index`.
    pub fn write(&self, index: usize, value: T) -> Result {
        if index >= self.pool.count {
            return Err(EINVAL);
        }
        // SAFETY: In bounds; no reference to the block exists.
        unsafe { self.cpu.as_ptr().add(index).write_volatile(value) };
        Ok(())
    }
}

impl<T: AsBytes + FromBytes> Drop for DmaPoolBlock<T> {
    fn drop(&mut self) {
        // SAFETY: Allocated from this pool (type invariant), freed once.
        unsafe {
            bindings::dma_pool_free(
                self.pool.pool.as_ptr(),
                self.cpu.as_ptr().cast(),
                self.handle,
            )
        };
    }
}

// SAFETY: The block may be used and freed from any thread.
unsafe impl<T: AsBytes + FromBytes + Send> Send for DmaPoolBlock<T> {}
// SAFETY: `&self` accessors are single volatile accesses.
unsafe impl<T: AsBytes + FromBytes + Sync> Sync for DmaPoolBlock<T> {}
