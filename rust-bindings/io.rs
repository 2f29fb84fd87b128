// SPDX-License-Identifier: GPL-2.0

//! Memory-mapped I/O with typed, bounds-checked register access.
//!
//! Mirrors the 7.0 shape of `kernel::io`: [`MmioRaw`] holds an address range,
//! [`Mmio`] gives access to it, and the [`Io`] trait provides the accessors.
//! `readN`/`writeN` check the offset at compile time against the minimum size
//! the mapping was created with (`SIZE`); `try_readN`/`try_writeN` check it at
//! run time against the real size, for offsets computed from device data.
//! Every offset must also be aligned to the access width.

use crate::rust_bindings::bindings;
use kernel::build_assert;
use kernel::prelude::*;

/// A raw MMIO range: start address and size in bytes.
///
/// # Invariants
///
/// `maxsize >= SIZE`.
pub struct MmioRaw<const SIZE: usize = 0> {
    addr: usize,
    maxsize: usize,
}

impl<const SIZE: usize> MmioRaw<SIZE> {
    /// Describes `maxsize` bytes of I/O memory at `addr`; fails with `EINVAL`
    /// if that is smaller than the compile-time minimum `SIZE`.
    pub fn new(addr: usize, maxsize: usize) -> Result<Self> {
        if maxsize < SIZE {
            return Err(EINVAL);
        }
        // INVARIANT: checked above.
        Ok(Self { addr, maxsize })
    }

    /// Start address of the range.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Size of the range in bytes.
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }
}

/// Access to a mapped MMIO range.
///
/// # Invariants
///
/// The range described by the inner [`MmioRaw`] is mapped I/O memory for the
/// lifetime of every reference to this type.
#[repr(transparent)]
pub struct Mmio<const SIZE: usize = 0>(MmioRaw<SIZE>);

impl<const SIZE: usize> Mmio<SIZE> {
    /// Views a raw range as accessible MMIO.
    ///
    /// # Safety
    ///
    /// The range must be mapped I/O memory for the lifetime `'a`.
    pub unsafe fn from_raw(raw: &MmioRaw<SIZE>) -> &Self {
        // SAFETY: `Mmio` is a transparent wrapper of `MmioRaw`; the caller
        // guarantees the mapping.
        unsafe { &*core::ptr::from_ref(raw).cast::<Self>() }
    }
}

/// Whether an access of `size` bytes at `offset` fits into `len` bytes and is
/// naturally aligned.
#[inline(always)]
const fn offset_valid(offset: usize, size: usize, len: usize) -> bool {
    match offset.checked_add(size) {
        Some(end) => end <= len && offset % size == 0,
        None => false,
    }
}

/// Backends that can perform I/O accesses of width `T`.
///
/// # Safety
///
/// `io_read`/`io_write` must perform exactly one access of width `T` at the
/// given address.
pub unsafe trait IoCapable<T> {
    /// Reads a value at `addr`.
    ///
    /// # Safety
    ///
    /// `addr` must be a valid, aligned address inside this I/O range.
    unsafe fn io_read(&self, addr: usize) -> T;

    /// Writes `value` at `addr`.
    ///
    /// # Safety
    ///
    /// `addr` must be a valid, aligned address inside this I/O range.
    unsafe fn io_write(&self, value: T, addr: usize);
}

macro_rules! mmio_capable {
    ($t:ty, $read:ident, $write:ident) => {
        // SAFETY: The C accessors perform exactly one access of this width.
        unsafe impl<const SIZE: usize> IoCapable<$t> for Mmio<SIZE> {
            #[inline]
            unsafe fn io_read(&self, addr: usize) -> $t {
                // SAFETY: The caller guarantees `addr` is in the mapped range.
                unsafe { bindings::$read(addr as *const core::ffi::c_void) }
            }

            #[inline]
            unsafe fn io_write(&self, value: $t, addr: usize) {
                // SAFETY: The caller guarantees `addr` is in the mapped range.
                unsafe { bindings::$write(value, addr as *mut core::ffi::c_void) }
            }
        }
    };
}

mmio_capable!(u8, rb_readb, rb_writeb);
mmio_capable!(u16, rb_readw, rb_writew);
mmio_capable!(u32, rb_readl, rb_writel);
mmio_capable!(u64, rb_readq, rb_writeq);

// The accessors differ only in name and width.
macro_rules! io_try_read {
    ($(#[$doc:meta])* $name:ident, $t:ty) => {
        $(#[$doc])*
        #[inline]
        fn $name(&self, offset: usize) -> Result<$t>
        where
            Self: IoCapable<$t>,
        {
            let addr = self.io_addr::<$t>(offset)?;
            // SAFETY: `io_addr` checked bounds and alignment.
            Ok(unsafe { self.io_read(addr) })
        }
    };
}

macro_rules! io_try_write {
    ($(#[$doc:meta])* $name:ident, $t:ty) => {
        $(#[$doc])*
        #[inline]
        fn $name(&self, value: $t, offset: usize) -> Result
        where
            Self: IoCapable<$t>,
        {
            let addr = self.io_addr::<$t>(offset)?;
            // SAFETY: `io_addr` checked bounds and alignment.
            unsafe { self.io_write(value, addr) };
            Ok(())
        }
    };
}

macro_rules! io_read {
    ($(#[$doc:meta])* $name:ident, $t:ty) => {
        $(#[$doc])*
        #[inline(always)]
        fn $name(&self, offset: usize) -> $t
        where
            Self: IoCapable<$t>,
        {
            let addr = self.io_addr_assert::<$t>(offset);
            // SAFETY: Checked at build time against `MIN_SIZE <= maxsize`.
            unsafe { self.io_read(addr) }
        }
    };
}

macro_rules! io_write {
    ($(#[$doc:meta])* $name:ident, $t:ty) => {
        $(#[$doc])*
        #[inline(always)]
        fn $name(&self, value: $t, offset: usize)
        where
            Self: IoCapable<$t>,
        {
            let addr = self.io_addr_assert::<$t>(offset);
            // SAFETY: Checked at build time against `MIN_SIZE <= maxsize`.
            unsafe { self.io_write(value, addr) }
        }
    };
}

/// Register accessors over an I/O range.
pub trait Io {
    /// Start address of the range.
    fn addr(&self) -> usize;

    /// Size of the range in bytes, known at run time.
    fn maxsize(&self) -> usize;

    /// Returns the address of an access of width `U` at `offset`, or
    /// `EINVAL` if it does not fit or is misaligned.
    #[inline]
    fn io_addr<U>(&self, offset: usize) -> Result<usize> {
        if !offset_valid(offset, core::mem::size_of::<U>(), self.maxsize()) {
            return Err(EINVAL);
        }
        Ok(self.addr() + offset)
    }

    io_try_read!(
        /// Reads a byte at `offset`, checked at run time.
        try_read8, u8
    );
    io_try_read!(
        /// Reads 16 bits at `offset`, checked at run time.
        try_read16, u16
    );
    io_try_read!(
        /// Reads 32 bits at `offset`, checked at run time.
        try_read32, u32
    );
    io_try_read!(
        /// Reads 64 bits at `offset`, checked at run time.
        try_read64, u64
    );
    io_try_write!(
        /// Writes a byte at `offset`, checked at run time.
        try_write8, u8
    );
    io_try_write!(
        /// Writes 16 bits at `offset`, checked at run time.
        try_write16, u16
    );
    io_try_write!(
        /// Writes 32 bits at `offset`, checked at run time.
        try_write32, u32
    );
    io_try_write!(
        /// Writes 64 bits at `offset`, checked at run time.
        try_write64, u64
    );
}

/// I/O ranges with a size known at compile time, whose constant offsets are
/// checked by the compiler.
pub trait IoKnownSize: Io {
    /// The minimum size of the range, guaranteed when it was created.
    const MIN_SIZE: usize;

    /// Returns the address of an access of width `U` at the constant
    /// `offset`; a build error if the offset does not fit `MIN_SIZE`.
    #[inline(always)]
    fn io_addr_assert<U>(&self, offset: usize) -> usize {
        build_assert!(offset_valid(
            offset,
            core::mem::size_of::<U>(),
            Self::MIN_SIZE
        ));
        self.addr() + offset
    }

    io_read!(
        /// Reads a byte at a constant `offset`.
        read8, u8
    );
    io_read!(
        /// Reads 16 bits at a constant `offset`.
        read16, u16
    );
    io_read!(
        /// Reads 32 bits at a constant `offset`.
        read32, u32
    );
    io_read!(
        /// Reads 64 bits at a constant `offset`.
        read64, u64
    );
    io_write!(
        /// Writes a byte at a constant `offset`.
        write8, u8
    );
    io_write!(
        /// Writes 16 bits at a constant `offset`.
        write16, u16
    );
    io_write!(
        /// Writes 32 bits at a constant `offset`.
        write32, u32
    );
    io_write!(
        /// Writes 64 bits at a constant `offset`.
        write64, u64
    );
}

impl<const SIZE: usize> Io for Mmio<SIZE> {
    #[inline]
    fn addr(&self) -> usize {
        self.0.addr
    }

    #[inline]
    fn maxsize(&self) -> usize {
        self.0.maxsize
    }
}

impl<const SIZE: usize> IoKnownSize for Mmio<SIZE> {
    const MIN_SIZE: usize = SIZE;
}

/// Orders CPU reads of DMA memory after a prior read (an ownership or phase
/// bit) that said the device had finished writing it (`dma_rmb()`).
#[inline]
pub fn dma_rmb() {
    // SAFETY: A barrier has no preconditions.
    unsafe { bindings::rb_dma_rmb() }
}

/// Orders CPU writes of DMA memory before a later write (an ownership bit or
/// a doorbell) that hands it to the device (`dma_wmb()`).
#[inline]
pub fn dma_wmb() {
    // SAFETY: A barrier has no preconditions.
    unsafe { bindings::rb_dma_wmb() }
}
