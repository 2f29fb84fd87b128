// SPDX-License-Identifier: GPL-2.0

//! `irq_poll`: NAPI-style budgeted completion polling for block drivers.
//!
//! An interrupt handler calls [`IrqPoll::schedule`]; the block softirq then
//! calls [`IrqPollHandler::poll`] with a budget until it returns less than
//! the budget, at which point the abstraction completes the poll and asks
//! the handler whether work arrived meanwhile ([`IrqPollHandler::has_work`]):
//! an interrupt that fired while the poll was still scheduled was absorbed,
//! so without that re-check its work would wait for the next interrupt.

use crate::rust_bindings::bindings;
use kernel::{init::PinInit, prelude::*, types::Opaque};

/// The work of an [`IrqPoll`].
pub trait IrqPollHandler: Sync {
    /// Processes up to `budget` completions; returns how many it did.
    fn poll(&self, budget: u32) -> u32;

    /// Whether completions are waiting (checked after the poll completed).
    fn has_work(&self) -> bool;
}

/// A budgeted poll context (`struct irq_poll`) with its handler.
///
/// # Invariants
///
/// `iop` is initialized with `irq_poll_init` for this object's (pinned)
/// address and disabled before drop.
#[pin_data(PinnedDrop)]
pub struct IrqPoll<T: IrqPollHandler> {
    #[pin]
    iop: Opaque<bindings::irq_poll>,
    handler: T,
    budget: u32,
}

impl<T: IrqPollHandler> IrqPoll<T> {
    /// Creates a poll context running `handler` with `budget` completions
    /// per round.
    pub fn new(handler: T, budget: u32) -> impl PinInit<Self> {
        let budget = budget.clamp(1, i32::MAX as u32);
        pin_init!(Self {
            // SAFETY: `slot` is valid and pinned; the callback finds the
            // handler through `container_of` on it.
            iop <- Opaque::ffi_init(move |slot| unsafe {
                bindings::irq_poll_init(slot, budget as i32, Some(Self::poll_callback))
            }),
            handler,
            budget,
        })
    }

    /// The handler.
    pub fn handler(&self) -> &T {
        &self.handler
    }

    /// Schedules a poll round (does nothing if one is already scheduled).
    /// Safe in hard-IRQ context.
    pub fn schedule(&self) {
        // SAFETY: Initialized by the type invariant.
        unsafe { bindings::irq_poll_sched(self.iop.get()) };
    }

    /// Stops polling and waits for a running round to end; `schedule` does
    /// nothing until [`IrqPoll::enable`]. May sleep.
    pub fn disable(&self) {
        // SAFETY: Initialized by the type invariant.
        unsafe { bindings::irq_poll_disable(self.iop.get()) };
    }

    /// Allows polling again after [`IrqPoll::disable`].
    pub fn enable(&self) {
        // SAFETY: Initialized by the type invariant.
        unsafe { bindings::irq_poll_enable(self.iop.get()) };
    }

    extern "C" fn poll_callback(
        iop: *mut bindings::irq_poll,
        budget: core::ffi::c_int,
    ) -> core::ffi::c_int {
        // SAFETY: `iop` is the `iop` field of a pinned `IrqPoll<T>`
        // (`Opaque<irq_poll>` is transparent), alive while it is enabled.
        let this = unsafe {
            let offset = core::mem::offset_of!(Self, iop);
            &*iop.cast::<u8>().sub(offset).cast::<Self>()
        };
        let budget = u32::try_from(budget).unwrap_or(this.budget);
        let done = this.handler.poll(budget).min(budget);
        if done < budget {
            // SAFETY: Called from our own poll callback, as required.
            unsafe { bindings::irq_poll_complete(iop) };
            if this.handler.has_work() {
                this.schedule();
            }
        }
        done as core::ffi::c_int
    }
}

#[pinned_drop]
impl<T: IrqPollHandler> PinnedDrop for IrqPoll<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Initialized; after this no round runs, so the memory can go.
        unsafe { bindings::irq_poll_disable(self.iop.get()) };
    }
}

// SAFETY: The handler is `Sync`; the C context is safe to use from any CPU.
unsafe impl<T: IrqPollHandler + Send> Send for IrqPoll<T> {}
// SAFETY: `&self` methods call thread-safe C functions or the `Sync` handler.
unsafe impl<T: IrqPollHandler> Sync for IrqPoll<T> {}
