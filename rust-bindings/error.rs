// SPDX-License-Identifier: GPL-2.0

//! Error codes the 6.12 `kernel::error::code` module does not declare.
//!
//! `kernel::error::Error` cannot be built in a `const` outside the `kernel`
//! crate on 6.12, so these are functions instead of constants.

use crate::rust_bindings::bindings;
use kernel::error::Error;

fn errno(code: u32) -> Error {
    Error::from_errno(-(code as i32))
}

/// `ETIMEDOUT`: the device did not answer in time.
pub fn etimedout() -> Error {
    errno(bindings::ETIMEDOUT)
}

/// `EOVERFLOW`: a size computation overflowed.
pub fn eoverflow() -> Error {
    errno(bindings::EOVERFLOW)
}

/// `EOPNOTSUPP`: the device or driver does not support the operation.
pub fn eopnotsupp() -> Error {
    errno(bindings::EOPNOTSUPP)
}

/// `EPROBE_DEFER`: the device is not ready yet; probe again later.
pub fn eprobe_defer() -> Error {
    errno(bindings::EPROBE_DEFER)
}
