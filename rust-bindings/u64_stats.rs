// SPDX-License-Identifier: GPL-2.0

//! Per-queue 64-bit counters synchronised like the C drivers' statistics
//! (`u64_stats_t` under a `struct u64_stats_sync`, `linux/u64_stats_sync.h`).
//!
//! On 64-bit kernels the sync is empty and each counter is a `local64_t`:
//! writers add with a plain (unlocked) instruction and readers never see a
//! torn value. On 32-bit kernels the sync is a seqcount and readers retry.
//! Either way the stats paths never sleep and readers never block writers.
//!
//! Upstream has no such abstraction yet; the shape follows the C API:
//! [`U64Stats::update`] is `u64_stats_update_begin`/`_end` around adds and
//! [`U64Stats::read`] the `u64_stats_fetch_begin`/`_retry` loop.

use crate::rust_bindings::bindings;
use core::marker::PhantomPinned;
use kernel::{init::pin_init_from_closure, prelude::*, types::Opaque};

/// `N` counters with one writer section at a time.
///
/// Writers must be serialised by the caller (the C rule: one ring lock, or
/// the one NAPI context that owns the queue). Breaking that rule cannot
/// corrupt memory, but it may lose increments (64-bit) or make readers
/// retry until the writers settle (32-bit).
///
/// # Invariants
///
/// `syncp` was initialised with `u64_stats_init` and every counter holds a
/// valid `u64_stats_t`; the value is pinned (32-bit lockdep keeps the
/// seqcount's address).
#[pin_data]
pub struct U64Stats<const N: usize> {
    #[pin]
    syncp: Opaque<bindings::u64_stats_sync>,
    values: [Opaque<bindings::u64_stats_t>; N],
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The counters are updated through the C API from any CPU; the
// C synchronisation scheme (local64/seqcount) is what makes that valid.
unsafe impl<const N: usize> Send for U64Stats<N> {}
// SAFETY: As above; readers use the fetch/retry protocol.
unsafe impl<const N: usize> Sync for U64Stats<N> {}

impl<const N: usize> U64Stats<N> {
    /// All counters at zero.
    pub fn new() -> impl PinInit<Self> {
        // SAFETY: The closure initialises every field before returning Ok.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                // All-zero is a valid value for every counter (local64 or
                // u64) and for the sync before its init call.
                core::ptr::write_bytes(slot, 0, 1);
                bindings::rb_u64_stats_init(Opaque::raw_get(core::ptr::addr_of!((*slot).syncp)));
                Ok(())
            })
        }
    }

    /// Starts a writer section (`u64_stats_update_begin`); it ends when the
    /// returned writer is dropped.
    pub fn update(&self) -> U64StatsWriter<'_, N> {
        // SAFETY: `syncp` is initialised (type invariant).
        unsafe { bindings::rb_u64_stats_update_begin(self.syncp.get()) };
        U64StatsWriter { stats: self }
    }

    /// Adds `v` to counter `i` in a one-off writer section.
    pub fn add(&self, i: usize, v: u64) {
        self.update().add(i, v);
    }

    /// A consistent snapshot of all counters.
    pub fn read(&self) -> [u64; N] {
        let mut out = [0u64; N];
        loop {
            // SAFETY: `syncp` is initialised (type invariant).
            let start = unsafe { bindings::rb_u64_stats_fetch_begin(self.syncp.get()) };
            for (o, v) in out.iter_mut().zip(self.values.iter()) {
                // SAFETY: A valid counter (type invariant).
                *o = unsafe { bindings::rb_u64_stats_read(v.get()) };
            }
            // SAFETY: As above.
            if !unsafe { bindings::rb_u64_stats_fetch_retry(self.syncp.get(), start) } {
                return out;
            }
        }
    }
}

/// An open writer section of a [`U64Stats`].
pub struct U64StatsWriter<'a, const N: usize> {
    stats: &'a U64Stats<N>,
}

impl<const N: usize> U64StatsWriter<'_, N> {
    /// Adds `v` to counter `i` (an index past the end is ignored).
    pub fn add(&self, i: usize, v: u64) {
        if let Some(c) = self.stats.values.get(i) {
            // SAFETY: A valid counter (type invariant); we are inside the
            // writer section.
            unsafe { bindings::rb_u64_stats_add(c.get(), v) };
        }
    }
}

impl<const N: usize> Drop for U64StatsWriter<'_, N> {
    fn drop(&mut self) {
        // SAFETY: Ends the section `update` began on the same sync.
        unsafe { bindings::rb_u64_stats_update_end(self.stats.syncp.get()) };
    }
}
