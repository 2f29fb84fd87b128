// SPDX-License-Identifier: GPL-2.0

//! Module parameters (the 6.12 `module!` macro has none).
//!
//! [`module_param_u32!`] declares a `u32` parameter with an allowed range:
//! a value outside it, or not a number, is rejected at `insmod`/`modprobe`
//! time (and on writes to `/sys/module/<mod>/parameters/<name>` when the
//! permissions allow them) with a message naming the parameter and the
//! range. `modinfo` shows the description.

use crate::rust_bindings::bindings;
use core::sync::atomic::{AtomicU32, Ordering};

/// A `u32` module parameter; read it with [`ParamU32::get`].
///
/// `value` is first so that the C `param_get_uint` can read it through
/// `kernel_param.arg`.
#[repr(C)]
pub struct ParamU32 {
    value: AtomicU32,
    name: &'static str,
    min: u32,
    max: u32,
}

impl ParamU32 {
    /// A parameter `name` with a default and an inclusive range.
    pub const fn new(name: &'static str, default: u32, min: u32, max: u32) -> Self {
        assert!(
            min <= default && default <= max,
            "default outside the range"
        );
        Self {
            value: AtomicU32::new(default),
            name,
            min,
            max,
        }
    }

    /// The current value.
    pub fn get(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A `struct kernel_param` placed in the `__param` section.
#[repr(transparent)]
pub struct KernelParam(bindings::kernel_param);

// SAFETY: Only the C module loader and sysfs read it; the value it points to
// is an atomic.
unsafe impl Sync for KernelParam {}

#[repr(transparent)]
struct KernelParamOps(bindings::kernel_param_ops);

// SAFETY: Read-only, used by C only.
unsafe impl Sync for KernelParamOps {}

static U32_OPS: KernelParamOps = KernelParamOps(bindings::kernel_param_ops {
    flags: 0,
    set: Some(set_u32),
    get: Some(bindings::param_get_uint),
    free: None,
});

extern "C" {
    /// This module's `struct module` (see `block::mq` for the same use).
    static __this_module: u8;
}

impl KernelParam {
    /// The `kernel_param` of `param`; `name` must be NUL-terminated.
    pub const fn new_u32(name: &'static str, param: &'static ParamU32, perm: u16) -> Self {
        let bytes = name.as_bytes();
        assert!(
            !bytes.is_empty() && bytes[bytes.len() - 1] == 0,
            "name must end in NUL"
        );
        Self(bindings::kernel_param {
            name: bytes.as_ptr().cast(),
            mod_: core::ptr::addr_of!(__this_module)
                .cast::<bindings::module>()
                .cast_mut(),
            ops: &U32_OPS.0,
            perm,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: core::ptr::from_ref(param).cast_mut().cast(),
            },
        })
    }
}

/// Copies a string into a byte array of exactly its length, for `.modinfo`.
pub const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    assert!(bytes.len() == N);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

extern "C" fn set_u32(
    val: *const kernel::ffi::c_char,
    kp: *const bindings::kernel_param,
) -> core::ffi::c_int {
    // SAFETY: `kp` is one of our `KernelParam`s, whose `arg` is a
    // `&'static ParamU32`.
    let param = unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<ParamU32>() };
    let mut value: core::ffi::c_uint = 0;
    // SAFETY: `val` is the NUL-terminated string the user gave.
    let ret = unsafe { bindings::kstrtouint(val, 0, &mut value) };
    if ret != 0 {
        kernel::pr_err!("parameter {}: not an unsigned number\n", param.name);
        return ret;
    }
    if value < param.min || value > param.max {
        kernel::pr_err!(
            "parameter {}={} rejected: allowed range is {}..={}\n",
            param.name,
            value,
            param.min,
            param.max
        );
        return kernel::error::code::EINVAL.to_errno();
    }
    param.value.store(value, Ordering::Relaxed);
    0
}

/// Declares a `u32` module parameter.
///
/// ```ignore
/// module_param_u32!(POLL_QUEUES, "poll_queues", default: 0, min: 0, max: 64,
///                   perm: 0o444, desc: "Number of polled queues");
/// let n = POLL_QUEUES.get();
/// ```
#[macro_export]
macro_rules! module_param_u32 {
    ($var:ident, $name:literal, default: $def:expr, min: $min:expr, max: $max:expr,
     perm: $perm:expr, desc: $desc:literal $(,)?) => {
        static $var: $crate::rust_bindings::module_param::ParamU32 =
            $crate::rust_bindings::module_param::ParamU32::new($name, $def, $min, $max);

        const _: () = {
            #[link_section = "__param"]
            #[used]
            static PARAM: $crate::rust_bindings::module_param::KernelParam =
                $crate::rust_bindings::module_param::KernelParam::new_u32(
                    concat!($name, "\0"),
                    &$var,
                    $perm,
                );

            const DESC: &str = concat!("parm=", $name, ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used]
            static PARM: [u8; DESC.len()] = $crate::rust_bindings::module_param::modinfo(DESC);

            const TYPE: &str = concat!("parmtype=", $name, ":uint\0");
            #[link_section = ".modinfo"]
            #[used]
            static PARMTYPE: [u8; TYPE.len()] = $crate::rust_bindings::module_param::modinfo(TYPE);
        };
    };
}
