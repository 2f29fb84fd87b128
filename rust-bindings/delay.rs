// SPDX-License-Identifier: GPL-2.0

//! Sleeping delays and CPU counts.

use crate::rust_bindings::bindings;

/// Sleeps for at least `ms` milliseconds (`msleep`). Process context only.
pub fn msleep(ms: u32) {
    // SAFETY: No preconditions beyond being allowed to sleep, which every
    // safe caller outside atomic context is.
    unsafe { bindings::msleep(ms) };
}

/// Busy-waits for at least `us` microseconds (`udelay`); allowed in
/// atomic context, so keep it short.
pub fn udelay(us: u32) {
    // SAFETY: No preconditions; it only spins.
    unsafe { bindings::rb_udelay(us as _) };
}

/// Number of CPUs online now (`num_online_cpus()`).
pub fn num_online_cpus() -> u32 {
    // SAFETY: Reads a counter.
    unsafe { bindings::rb_num_online_cpus() }
}
