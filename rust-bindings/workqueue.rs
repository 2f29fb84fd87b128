// SPDX-License-Identifier: GPL-2.0

//! What the 6.12 `kernel::workqueue` lacks: waiting for a work item.
//!
//! A driver that queues work holding a reference to its device state must
//! wait for that work before `unbind` returns; otherwise the work's last
//! reference can drop after the device's managed resources (MSI-X data, BAR
//! mappings, DMA) are gone. Upstream later grew the same operation on
//! `Work`; this free function keeps the call sites easy to move.

use crate::rust_bindings::bindings;
use kernel::workqueue::Work;

/// Waits until the last queued execution of `work` has finished
/// (`flush_work`); returns whether there was one to wait for.
///
/// It sleeps, and it must not be called from `work`'s own function (it
/// would wait for itself): both are kernel bugs lockdep reports, not memory
/// errors.
pub fn flush<T: ?Sized, const ID: u64>(work: &Work<T, ID>) -> bool {
    // SAFETY: `work` is borrowed, so it points at a live, initialised
    // `Work`, whose `work_struct` stays valid for the call. The kernel
    // crate's and our bindgen output's `work_struct` are the same C type.
    unsafe { bindings::rb_flush_work(Work::raw_get(work).cast()) }
}
