// SPDX-License-Identifier: GPL-2.0

//! Synchronisation primitives missing from the 6.12 `kernel` crate.

use crate::rust_bindings::{bindings, error::etimedout};
use kernel::{init::PinInit, prelude::*, types::Opaque};

/// A completion (`struct completion`): one side waits until another side,
/// possibly an interrupt handler, signals that something happened.
///
/// Mirrors upstream `kernel::sync::Completion` (6.16+), plus a waiting
/// variant with a timeout, which a driver talking to a device needs.
#[pin_data]
pub struct Completion {
    #[pin]
    inner: Opaque<bindings::completion>,
}

impl Completion {
    /// Creates an initializer for a completion that has not completed.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes and pinned.
            inner <- Opaque::ffi_init(|slot| unsafe { bindings::rb_init_completion(slot) }),
        })
    }

    /// Marks the completion done and wakes every waiter, now and later,
    /// until [`Completion::reinit`]. Safe in interrupt context.
    pub fn complete_all(&self) {
        // SAFETY: `inner` is initialized and pinned.
        unsafe { bindings::complete_all(self.inner.get()) };
    }

    /// Wakes one waiter. Safe in interrupt context.
    pub fn complete(&self) {
        // SAFETY: `inner` is initialized and pinned.
        unsafe { bindings::complete(self.inner.get()) };
    }

    /// Makes the completion not-done again, before starting the next
    /// operation that will complete it.
    pub fn reinit(&self) {
        // SAFETY: `inner` is initialized and pinned.
        unsafe { bindings::rb_reinit_completion(self.inner.get()) };
    }

    /// Sleeps until completed or until `timeout_ms` passed (`ETIMEDOUT`).
    pub fn wait_for_completion_timeout(&self, timeout_ms: u32) -> Result {
        // SAFETY: No preconditions.
        let jiffies = unsafe { bindings::rb_msecs_to_jiffies(timeout_ms) };
        // SAFETY: `inner` is initialized and pinned; we may sleep here.
        let left = unsafe { bindings::wait_for_completion_timeout(self.inner.get(), jiffies) };
        if left == 0 {
            Err(etimedout())
        } else {
            Ok(())
        }
    }
}

// SAFETY: A completion is designed to be signalled and waited on from any
// thread; it holds no thread-bound state.
unsafe impl Send for Completion {}
// SAFETY: As above; all methods take `&self` and lock internally.
unsafe impl Sync for Completion {}
