// SPDX-License-Identifier: GPL-2.0

//! Interrupt handlers.
//!
//! Mirrors upstream `kernel::irq` (6.18-7.1): a [`Handler`] trait, an
//! [`IrqRequest`] minted by bus code for one of its device's vectors, and a
//! pinned [`Registration`] that owns the handler and frees the IRQ on drop
//! (`free_irq` waits for a running handler to finish). The handler takes no
//! device argument, as in the 7.3 cycle.
//!
//! Handlers run in hard-IRQ context: no sleeping, no `Mutex`, no
//! `GFP_KERNEL`. Acknowledge the device, record what happened and defer work.

use crate::rust_bindings::{bindings, pci::IrqVectorsInner};
use core::marker::PhantomPinned;
use kernel::{
    error::to_result,
    init::{pin_init_from_closure, PinInit},
    prelude::*,
    sync::Arc,
};

/// What a handler reports back (`irqreturn_t`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IrqReturn {
    /// The interrupt was not from this device (shared lines).
    None,
    /// The interrupt was handled.
    Handled,
}

/// Flags for requesting an IRQ (`IRQF_*`).
#[derive(Clone, Copy)]
pub struct Flags(u64);

impl Flags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// The line may be shared with other devices (INTx).
    pub const SHARED: Self = Self(bindings::IRQF_SHARED as u64);
}

/// An interrupt handler.
pub trait Handler: Sync {
    /// Handles an interrupt, in hard-IRQ context.
    fn handle(&self) -> IrqReturn;
}

impl<T: Handler + Send> Handler for Arc<T> {
    fn handle(&self) -> IrqReturn {
        T::handle(self)
    }
}

/// A Linux IRQ number of a device's vector, with what keeps the vector
/// allocated. Only bus code creates one.
pub struct IrqRequest {
    irq: u32,
    _vectors: Arc<IrqVectorsInner>,
}

impl IrqRequest {
    /// # Safety
    ///
    /// `irq` must be a vector of the device behind `vectors`.
    pub(crate) unsafe fn new(irq: u32, vectors: Arc<IrqVectorsInner>) -> Self {
        Self {
            irq,
            _vectors: vectors,
        }
    }

    /// The Linux IRQ number.
    pub fn irq(&self) -> u32 {
        self.irq
    }
}

/// A registered interrupt handler.
///
/// # Invariants
///
/// `request.irq` is requested with the address of this (pinned) object as
/// cookie from initialization until drop, and `handler` is initialized
/// before and stays valid until after that.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Handler + 'static> {
    request: IrqRequest,
    #[pin]
    handler: T,
    #[pin]
    _pin: PhantomPinned,
}

impl<T: Handler + 'static> Registration<T> {
    /// Requests the IRQ of `request` and installs `handler` for it. `name`
    /// shows in `/proc/interrupts`.
    pub fn new(
        request: IrqRequest,
        flags: Flags,
        name: &'static CStr,
        handler: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| {
            let irq = request.irq;
            // SAFETY: `slot` is valid for writes of every field.
            unsafe { core::ptr::addr_of_mut!((*slot).request).write(request) };
            // SAFETY: The field is valid for writes and pinned with `slot`.
            let handler_slot = unsafe { core::ptr::addr_of_mut!((*slot).handler) };
            // SAFETY: As above.
            if let Err(e) = unsafe { handler.__pinned_init(handler_slot) } {
                // SAFETY: Written above, not dropped yet.
                unsafe { core::ptr::drop_in_place(core::ptr::addr_of_mut!((*slot).request)) };
                return Err(e);
            }
            // SAFETY: The handler is initialized and the cookie `slot` stays
            // valid (pinned) until `drop` frees the IRQ; `name` is 'static.
            let ret = unsafe {
                bindings::rb_request_irq(
                    irq,
                    Some(Self::handle_callback),
                    flags.0 as _,
                    name.as_char_ptr(),
                    slot.cast(),
                )
            };
            if let Err(e) = to_result(ret) {
                // SAFETY: Both fields were initialized above and are dropped
                // once, here.
                unsafe {
                    core::ptr::drop_in_place(handler_slot);
                    core::ptr::drop_in_place(core::ptr::addr_of_mut!((*slot).request));
                }
                return Err(e);
            }
            Ok(())
        };
        // SAFETY: On success all fields are initialized (`_pin` is a ZST); on
        // failure everything initialized was dropped.
        unsafe { pin_init_from_closure(init) }
    }

    /// The handler.
    pub fn handler(&self) -> &T {
        &self.handler
    }

    /// Waits until a handler running on another CPU has returned.
    pub fn synchronize(&self) {
        // SAFETY: The IRQ is requested by the type invariant.
        unsafe { bindings::synchronize_irq(self.request.irq) };
    }

    extern "C" fn handle_callback(
        _irq: core::ffi::c_int,
        cookie: *mut core::ffi::c_void,
    ) -> bindings::irqreturn_t {
        // SAFETY: `cookie` is the registration, valid while the IRQ is
        // requested (type invariant), and only shared references are made.
        let this = unsafe { &*cookie.cast::<Self>() };
        match this.handler.handle() {
            IrqReturn::None => bindings::irqreturn_IRQ_NONE,
            IrqReturn::Handled => bindings::irqreturn_IRQ_HANDLED,
        }
    }
}

#[pinned_drop]
impl<T: Handler + 'static> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The IRQ is requested with this cookie (type invariant);
        // `free_irq` waits for running handlers before returning, so the
        // handler is not used after this point.
        unsafe {
            bindings::free_irq(
                self.request.irq,
                core::ptr::from_ref(&*self).cast_mut().cast(),
            )
        };
    }
}

// SAFETY: The handler is `Sync` and may run on any CPU; moving the
// registration is impossible (pinned), dropping it from any thread is fine.
unsafe impl<T: Handler + Send + 'static> Send for Registration<T> {}
// SAFETY: `&self` methods only read the handler, which is `Sync`.
unsafe impl<T: Handler + 'static> Sync for Registration<T> {}
