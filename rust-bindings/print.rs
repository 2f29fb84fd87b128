// SPDX-License-Identifier: GPL-2.0

//! Device-prefixed logging: `dev_err!`, `dev_warn!`, `dev_info!`, `dev_dbg!`.
//!
//! The 6.12 `kernel` crate has no `dev_*` macros; these mirror the upstream
//! ones (6.14+) and print through `_dev_printk` with the `%pA` format, which
//! formats Rust `fmt::Arguments`.

use crate::rust_bindings::{
    bindings,
    device::{Device, DeviceContext},
};
use core::fmt;

/// `KERN_ERR`.
pub const KERN_ERR: &[u8; 3] = b"\x013\0";
/// `KERN_WARNING`.
pub const KERN_WARNING: &[u8; 3] = b"\x014\0";
/// `KERN_NOTICE`.
pub const KERN_NOTICE: &[u8; 3] = b"\x015\0";
/// `KERN_INFO`.
pub const KERN_INFO: &[u8; 3] = b"\x016\0";
/// `KERN_DEBUG`.
pub const KERN_DEBUG: &[u8; 3] = b"\x017\0";

/// Prints `args` prefixed with the driver and device name at `level`.
///
/// Use the `dev_*!` macros instead of calling this directly.
#[doc(hidden)]
pub fn dev_printk<Ctx: DeviceContext>(
    level: &'static [u8; 3],
    dev: &Device<Ctx>,
    args: fmt::Arguments<'_>,
) {
    // SAFETY: `level` and the format are NUL-terminated; `dev` is valid by its
    // type invariant; `%pA` takes a pointer to `fmt::Arguments`, which lives
    // across the call.
    unsafe {
        bindings::_dev_printk(
            level.as_ptr().cast(),
            dev.as_raw(),
            c"%pA".as_ptr().cast(),
            core::ptr::from_ref(&args).cast::<core::ffi::c_void>(),
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __rb_dev_printk {
    ($level:ident, $dev:expr, $($arg:tt)*) => {
        $crate::rust_bindings::print::dev_printk(
            $crate::rust_bindings::print::$level,
            ::core::convert::AsRef::as_ref($dev),
            ::core::format_args!($($arg)*),
        )
    };
}

/// Prints an error message prefixed with the device, like C's `dev_err`.
#[macro_export]
macro_rules! dev_err {
    ($dev:expr, $($arg:tt)*) => { $crate::__rb_dev_printk!(KERN_ERR, $dev, $($arg)*) };
}

/// Prints a warning prefixed with the device, like C's `dev_warn`.
#[macro_export]
macro_rules! dev_warn {
    ($dev:expr, $($arg:tt)*) => { $crate::__rb_dev_printk!(KERN_WARNING, $dev, $($arg)*) };
}

/// Prints a notice prefixed with the device, like C's `dev_notice`.
#[macro_export]
macro_rules! dev_notice {
    ($dev:expr, $($arg:tt)*) => { $crate::__rb_dev_printk!(KERN_NOTICE, $dev, $($arg)*) };
}

/// Prints an informational message prefixed with the device, like `dev_info`.
#[macro_export]
macro_rules! dev_info {
    ($dev:expr, $($arg:tt)*) => { $crate::__rb_dev_printk!(KERN_INFO, $dev, $($arg)*) };
}

/// Prints a debug message prefixed with the device (always compiled in, like
/// `dev_printk(KERN_DEBUG, ...)`; shown at loglevel 8).
#[macro_export]
macro_rules! dev_dbg {
    ($dev:expr, $($arg:tt)*) => { $crate::__rb_dev_printk!(KERN_DEBUG, $dev, $($arg)*) };
}
