// SPDX-License-Identifier: GPL-2.0

//! NAPI: polled receive and transmit completion with a budget.
//!
//! Follows the 6.12 port described for the net RFC: a pinned [`Napi`]
//! embedded in the driver's per-queue object, and a [`NapiPoller`] whose
//! `poll` gets the `Napi` back. The adapter clamps the returned work to the
//! budget, so a poller cannot violate the NAPI contract by returning more.
//! `napi_complete_done` is only called through [`Napi::complete_done`],
//! which the poller calls when it did less than the budget.
//!
//! The `Napi` must be dropped before its `net_device` is freed (a driver
//! creates them in `open` and drops them in `stop`); drop disables it if
//! needed and deletes it (`netif_napi_del`), which may sleep.

use crate::rust_bindings::{
    bindings, net,
    skb::{RxPage, SkBuff},
};
use core::{
    marker::PhantomPinned,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{init::pin_init_from_closure, prelude::*, types::Opaque};

/// The poll function of a [`Napi`].
pub trait NapiPoller: Send + Sync + Sized {
    /// Does up to `budget` units of RX work (TX completions do not count)
    /// and returns how many were done. With less than `budget`, call
    /// [`Napi::complete_done`] before re-enabling the interrupt.
    /// `dev` is the device the instance was added to.
    fn poll(napi: &Napi<Self>, dev: &net::Device, budget: i32) -> i32;
}

/// A NAPI instance with its poller.
///
/// # Invariants
///
/// `napi` was added to a net device with `netif_napi_add_weight` and the
/// poll callback of this type, and stays listed until drop (or until the
/// device is freed, which deletes it).
#[repr(C)]
#[pin_data(PinnedDrop)]
pub struct Napi<P: NapiPoller> {
    #[pin]
    napi: Opaque<bindings::napi_struct>,
    enabled: AtomicBool,
    #[pin]
    poller: P,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: NAPI calls are thread-safe; the poller is `Send + Sync`.
unsafe impl<P: NapiPoller> Send for Napi<P> {}
// SAFETY: As above.
unsafe impl<P: NapiPoller> Sync for Napi<P> {}

impl<P: NapiPoller> Napi<P> {
    /// Adds a NAPI instance with `poller` to `dev` (disabled).
    pub fn new<'a>(
        dev: &'a net::Device,
        poller: impl PinInit<P, Error> + 'a,
        weight: i32,
    ) -> impl PinInit<Self, Error> + 'a
    where
        P: 'a,
    {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes of every field and pinned.
            unsafe {
                core::ptr::addr_of_mut!((*slot).enabled).write(AtomicBool::new(false));
                poller.__pinned_init(core::ptr::addr_of_mut!((*slot).poller))?;
                let napi = Opaque::raw_get(core::ptr::addr_of!((*slot).napi));
                core::ptr::write_bytes(napi, 0, 1);
                // INVARIANT: added here; `slot` is pinned, so the address
                // the core keeps stays valid until drop.
                bindings::netif_napi_add_weight(dev.as_raw(), napi, Some(Self::poll_cb), weight);
            }
            Ok(())
        };
        // SAFETY: Every field is initialized on success (`_pin` is a ZST).
        unsafe { pin_init_from_closure(init) }
    }

    fn raw(&self) -> *mut bindings::napi_struct {
        self.napi.get()
    }

    /// The poller.
    pub fn poller(&self) -> &P {
        &self.poller
    }

    /// Enables polling (`napi_enable`).
    pub fn enable(&self) {
        if !self.enabled.swap(true, Ordering::AcqRel) {
            // SAFETY: Listed by the type invariant; was disabled.
            unsafe { bindings::napi_enable(self.raw()) };
        }
    }

    /// Disables polling and waits for a running poll (`napi_disable`);
    /// may sleep.
    pub fn disable(&self) {
        if self.enabled.swap(false, Ordering::AcqRel) {
            // SAFETY: Listed and enabled.
            unsafe { bindings::napi_disable(self.raw()) };
        }
    }

    /// Schedules a poll (from the interrupt handler); `false` if one was
    /// already pending or NAPI is disabled.
    pub fn schedule(&self) -> bool {
        // SAFETY: Listed by the type invariant.
        unsafe { bindings::rb_napi_schedule(self.raw()) }
    }

    /// Reports that the poll did `work_done` (< budget) and ends it; returns
    /// `false` if the poll must not re-enable the interrupt (rescheduled).
    pub fn complete_done(&self, work_done: i32) -> bool {
        // SAFETY: Called from the poll callback of this instance.
        unsafe { bindings::napi_complete_done(self.raw(), work_done) }
    }

    /// A copy of a short received frame in a new skb from this instance's
    /// cache; `page` keeps its mapping and can be posted again. Call from
    /// the poll callback.
    pub fn copy_rx(&self, page: &RxPage, offset: u32, len: u32) -> Result<SkBuff> {
        page.copy_to_skb(self.raw(), offset, len)
    }

    /// Hands a received frame to GRO.
    pub fn gro_receive(&self, skb: SkBuff) {
        // SAFETY: Called from the poll callback; GRO takes the skb.
        unsafe { bindings::napi_gro_receive(self.raw(), skb.give()) };
    }

    /// Links TX and RX queue `index` of `dev` to this instance for the
    /// netdev netlink queries; call with the RTNL held.
    pub fn link_queue(&self, dev: &net::Device, index: u32) {
        dev.set_queue_napi(index, self.raw());
    }

    extern "C" fn poll_cb(napi: *mut bindings::napi_struct, budget: core::ffi::c_int) -> i32 {
        // SAFETY: `napi` is the first field of a `#[repr(C)]` `Napi<P>` that
        // is listed (type invariant), so the cast recovers the object.
        let this = unsafe { &*napi.cast::<Self>() };
        // SAFETY: A listed instance's device is alive while it polls.
        let dev = unsafe { net::Device::from_raw(bindings::rb_napi_dev(napi)) };
        let done = P::poll(this, dev, budget);
        done.clamp(0, budget.max(0))
    }
}

#[pinned_drop]
impl<P: NapiPoller> PinnedDrop for Napi<P> {
    fn drop(self: Pin<&mut Self>) {
        self.disable();
        // SAFETY: Listed (or already deleted by `free_netdev`, which the
        // helper tolerates); not used by the core after this returns.
        unsafe { bindings::rb_netif_napi_del(self.raw()) };
    }
}
