// SPDX-License-Identifier: GPL-2.0

//! Dynamic interrupt moderation (`lib/dim`, `net_dim`).
//!
//! A [`Dim`] is fed one sample per interrupt-driven poll and proposes an RX
//! moderation profile (EQE mode, 5 steps from about 1 to 256 us). The
//! decision work item only restarts the measurement; the driver reads the
//! current profile's microseconds with [`Dim::rx_usecs`] when it re-arms
//! the interrupt.

use crate::rust_bindings::bindings;
use core::marker::PhantomPinned;
use kernel::{init::pin_init_from_closure, prelude::*, types::Opaque};

/// Adaptive moderation state of one queue.
///
/// # Invariants
///
/// `dim` is initialized by `rb_dim_init`; drop cancels its work item.
#[pin_data(PinnedDrop)]
pub struct Dim {
    #[pin]
    dim: Opaque<bindings::dim>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: `net_dim` state is only updated from one NAPI context at a time;
// the work item and readers use single-word accesses.
unsafe impl Send for Dim {}
// SAFETY: As above.
unsafe impl Sync for Dim {}

impl Dim {
    /// Fresh moderation state (starts at the lowest-latency profile).
    pub fn new() -> impl PinInit<Self> {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes and pinned.
            unsafe { bindings::rb_dim_init(Opaque::raw_get(core::ptr::addr_of!((*slot).dim))) };
            Ok(())
        };
        // SAFETY: The only non-ZST field is initialized on success.
        unsafe { pin_init_from_closure(init) }
    }

    /// Feeds a sample: interrupt count and cumulative packets and bytes.
    /// Call from the (single) NAPI context of the queue.
    pub fn update(&self, events: u16, packets: u64, bytes: u64) {
        // SAFETY: Initialized by the type invariant.
        unsafe { bindings::rb_dim_update(self.dim.get(), events, packets, bytes) }
    }

    /// The RX moderation the current profile asks for, in microseconds.
    pub fn rx_usecs(&self) -> u16 {
        // SAFETY: Initialized by the type invariant.
        unsafe { bindings::rb_dim_rx_usecs(self.dim.get()) }
    }
}

#[pinned_drop]
impl PinnedDrop for Dim {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Initialized; waits for a running decision work item.
        unsafe { bindings::rb_dim_cancel(self.dim.get()) }
    }
}
