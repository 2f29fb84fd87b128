// SPDX-License-Identifier: GPL-2.0

//! Generic devices (`struct device`) with the context typestates of later
//! kernels (`kernel::device::Device<Ctx>`, 6.15+).
//!
//! A `&Device<Core>` is only handed out inside a bus callback that holds the
//! device lock (probe, remove); a `&Device<Bound>` guarantees the device stays
//! bound to its driver while the reference lives; a `Device<Normal>` only
//! guarantees the memory stays valid (it can be refcounted with [`ARef`]).

use crate::rust_bindings::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};

/// Marker for the weakest context: only a reference to the device is held.
pub struct Normal;
/// Marker for a device that is bound to a driver while the reference lives.
pub struct Bound;
/// Marker for the inside of a bus callback with the device lock held.
pub struct Core;

/// The context a device reference is valid in; see the module documentation.
pub trait DeviceContext {}
impl DeviceContext for Normal {}
impl DeviceContext for Bound {}
impl DeviceContext for Core {}

/// A `struct device`.
///
/// # Invariants
///
/// The wrapped `struct device` is valid (its refcount is non-zero) for the
/// lifetime of every reference to this type, and the context `Ctx` holds for
/// that lifetime (see the module documentation).
#[repr(transparent)]
pub struct Device<Ctx: DeviceContext = Normal>(Opaque<bindings::device>, PhantomData<Ctx>);

impl<Ctx: DeviceContext> Device<Ctx> {
    /// Creates a reference to a device from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct device` for the lifetime `'a`, and
    /// the context `Ctx` must hold for that lifetime.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::device) -> &'a Self {
        // SAFETY: `Device` is a transparent wrapper of `struct device`; the
        // caller guarantees validity for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Returns the raw `struct device` pointer.
    pub fn as_raw(&self) -> *mut bindings::device {
        self.0.get()
    }

    /// Returns this device as the 6.12 `kernel` crate's device type, for the
    /// few `kernel` APIs that take one.
    pub fn as_kernel_device(&self) -> &kernel::device::Device {
        // SAFETY: Both types wrap the same C `struct device` and the pointer
        // is valid for the lifetime of `self` by the type invariant.
        unsafe { kernel::device::Device::as_ref(self.as_raw().cast()) }
    }
}

// A stronger context can be used wherever a weaker one is expected.
impl core::ops::Deref for Device<Core> {
    type Target = Device<Bound>;

    fn deref(&self) -> &Device<Bound> {
        // SAFETY: Same layout; a device in a bus callback is also bound.
        unsafe { Device::from_raw(self.as_raw()) }
    }
}

impl core::ops::Deref for Device<Bound> {
    type Target = Device<Normal>;

    fn deref(&self) -> &Device<Normal> {
        // SAFETY: Same layout; every valid device satisfies `Normal`.
        unsafe { Device::from_raw(self.as_raw()) }
    }
}

impl<Ctx: DeviceContext> AsRef<Device> for Device<Ctx> {
    fn as_ref(&self) -> &Device {
        // SAFETY: Same layout; every valid device satisfies `Normal`.
        unsafe { Device::from_raw(self.as_raw()) }
    }
}

// SAFETY: `get_device`/`put_device` keep the object alive while a reference
// count is held; only the `Normal` context can be refcounted, as upstream.
unsafe impl AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The device is valid by the type invariant.
        unsafe { bindings::get_device(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up one reference that it owns.
        unsafe { bindings::put_device(obj.as_ptr().cast()) };
    }
}

impl Device {
    /// Takes a new reference to this device.
    pub fn to_owned(&self) -> ARef<Device> {
        ARef::from(self)
    }
}

// SAFETY: A `struct device` may be used and released from any thread.
unsafe impl<Ctx: DeviceContext> Send for Device<Ctx> {}
// SAFETY: All methods take `&self` and the C functions they call are
// thread-safe.
unsafe impl<Ctx: DeviceContext> Sync for Device<Ctx> {}
