// SPDX-License-Identifier: GPL-2.0

//! Safe abstractions over the kernel C API that the 6.12 `kernel` crate lacks.
//!
//! Every driver of this repository mounts this directory as the module
//! `rust_bindings` at its crate root:
//!
//! ```ignore
//! #[path = "../../rust-bindings/rust_bindings.rs"]
//! pub mod rust_bindings;
//! ```
//!
//! The module names and shapes follow the upstream abstractions of later
//! kernels (`kernel::pci`, `kernel::io`, `kernel::dma`, `kernel::irq`,
//! `kernel::device`), so moving a driver to a newer kernel is mostly a matter
//! of replacing `crate::rust_bindings::` with `kernel::`. Where the 6.12 port
//! differs from upstream, the item's documentation says so.
//!
//! All `unsafe` code of the project lives here; drivers use safe APIs only.

pub mod bindings;
pub mod block;
pub mod delay;
pub mod device;
pub mod dim;
pub mod dma;
pub mod error;
pub mod io;
pub mod irq;
pub mod irq_poll;
pub mod module_param;
pub mod napi;
pub mod net;
pub mod pci;
pub mod print;
pub mod skb;
pub mod sync;
pub mod timer;
pub mod u64_stats;
pub mod workqueue;

// The macros are exported at the crate root by `#[macro_export]`; make them
// reachable under this module too, as upstream's are under `kernel::`.
pub use crate::{
    dev_dbg, dev_err, dev_info, dev_notice, dev_warn, module_param_u32, module_pci_driver,
    pci_device_table,
};
