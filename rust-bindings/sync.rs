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

/// A lock that is only ever tried, never waited for.
///
/// For state touched from several contexts that must not wait on each
/// other (a completion queue drained from a hard-IRQ handler, a softirq
/// poll and a sleeping waiter): whoever holds the lock does the work, the
/// others skip it. Cannot deadlock, even against an interrupt on the same
/// CPU.
pub struct TryLock<T> {
    locked: core::sync::atomic::AtomicBool,
    data: core::cell::UnsafeCell<T>,
}

impl<T> TryLock<T> {
    /// Creates an unlocked lock.
    pub const fn new(data: T) -> Self {
        Self {
            locked: core::sync::atomic::AtomicBool::new(false),
            data: core::cell::UnsafeCell::new(data),
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<TryLockGuard<'_, T>> {
        self.locked
            .compare_exchange(
                false,
                true,
                core::sync::atomic::Ordering::Acquire,
                core::sync::atomic::Ordering::Relaxed,
            )
            .ok()
            .map(|_| TryLockGuard { lock: self })
    }
}

// SAFETY: The lock hands out access to `T` to one holder at a time, so
// sharing it is like sending `T`.
unsafe impl<T: Send> Sync for TryLock<T> {}
// SAFETY: Owning the lock is owning `T`.
unsafe impl<T: Send> Send for TryLock<T> {}

/// Access to the data of a held [`TryLock`]; unlocks on drop.
pub struct TryLockGuard<'a, T> {
    lock: &'a TryLock<T>,
}

impl<T> core::ops::Deref for TryLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The guard holds the lock: no other access exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> core::ops::DerefMut for TryLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: The guard holds the lock: no other access exists.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for TryLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock
            .locked
            .store(false, core::sync::atomic::Ordering::Release);
    }
}
