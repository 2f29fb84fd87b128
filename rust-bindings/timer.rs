// SPDX-License-Identifier: GPL-2.0

//! A periodic kernel timer (`struct timer_list`).
//!
//! Upstream has no `timer_list` abstraction yet (only `hrtimer`, 6.15); this
//! is a minimal local one for watchdogs. The handler runs in softirq
//! context: no sleeping, defer real work to a workqueue.

use crate::rust_bindings::bindings;
use core::marker::PhantomPinned;
use kernel::{init::pin_init_from_closure, prelude::*, types::Opaque};

/// Milliseconds since boot (from `jiffies`).
pub fn now_ms() -> u64 {
    // SAFETY: Reads the tick counter.
    unsafe { bindings::rb_jiffies64_ms() }
}

/// What a [`Timer`] does when it expires.
pub trait TimerHandler: Send + Sync {
    /// Runs in softirq context; returns the delay in milliseconds until the
    /// next expiry, or `None` to stop.
    fn expired(&self) -> Option<u32>;
}

/// A timer owning its handler.
///
/// # Invariants
///
/// `timer` is set up with this type's callback from initialization; drop
/// shuts it down (no callback runs or re-arms afterwards).
#[repr(C)]
#[pin_data(PinnedDrop)]
pub struct Timer<H: TimerHandler> {
    #[pin]
    timer: Opaque<bindings::timer_list>,
    handler: H,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: Timer calls are thread-safe; the handler is `Send + Sync`.
unsafe impl<H: TimerHandler> Send for Timer<H> {}
// SAFETY: As above.
unsafe impl<H: TimerHandler> Sync for Timer<H> {}

fn expires(ms: u32) -> kernel::ffi::c_ulong {
    // SAFETY: Reading the tick counter and converting a duration.
    unsafe { bindings::rb_jiffies().wrapping_add(bindings::rb_msecs_to_jiffies(ms)) }
}

impl<H: TimerHandler> Timer<H> {
    /// A stopped timer with `handler`.
    pub fn new(handler: H) -> impl PinInit<Self> {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes of every field; the timer
            // is set up before anything can arm it.
            unsafe {
                core::ptr::addr_of_mut!((*slot).handler).write(handler);
                let t = Opaque::raw_get(core::ptr::addr_of!((*slot).timer));
                bindings::rb_timer_setup(t, Some(Self::callback));
            }
            Ok(())
        };
        // SAFETY: Every field is initialized on success.
        unsafe { pin_init_from_closure(init) }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// (Re)arms the timer to expire in `ms` milliseconds.
    pub fn start(&self, ms: u32) {
        // SAFETY: Set up by the type invariant.
        unsafe { bindings::mod_timer(self.timer.get(), expires(ms)) };
    }

    extern "C" fn callback(t: *mut bindings::timer_list) {
        // SAFETY: `timer` is the first field of a `#[repr(C)]` `Timer<H>`,
        // alive until drop shuts the timer down.
        let this = unsafe { &*t.cast::<Self>() };
        if let Some(ms) = this.handler.expired() {
            // SAFETY: As above; after shutdown `mod_timer` does nothing.
            unsafe { bindings::mod_timer(t, expires(ms)) };
        }
    }
}

#[pinned_drop]
impl<H: TimerHandler> PinnedDrop for Timer<H> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Set up; waits for a running callback and prevents re-arming.
        unsafe { bindings::timer_shutdown_sync(self.timer.get()) };
    }
}
