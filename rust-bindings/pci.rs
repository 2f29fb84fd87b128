// SPDX-License-Identifier: GPL-2.0

//! PCI drivers and devices.
//!
//! Mirrors upstream `kernel::pci` (6.14-7.1): a [`Driver`] trait with an ID
//! table and `probe`/`unbind`, a [`Registration`] that registers the C
//! `struct pci_driver`, [`Device`] with the context typestates, BAR mapping
//! into [`Bar`] and MSI-X/MSI/INTx vector allocation.
//!
//! Differences from upstream, deliberate for 6.12:
//! * `probe` returns `Result<Pin<KBox<Self>>>` (the 6.14-6.18 shape), not an
//!   `impl PinInit`.
//! * [`Bar`] and [`IrqVectors`] are owned RAII objects (as in the 7.2/7.3
//!   cycle) rather than `Devres` wrappers. They keep the device referenced,
//!   and the bus adapter drops the driver data in `remove`, which on 6.12 runs
//!   before devres releases anything; a driver must not move them into
//!   objects that outlive its driver data.
//! * The adapter disables the device (and bus mastering) after `remove` and
//!   after a failed `probe`, so drivers need no disable call of their own.

use crate::rust_bindings::{
    bindings,
    device::{self, Bound, Core, DeviceContext, Normal},
    dma::DmaMask,
    io::{Mmio, MmioRaw},
    irq::IrqRequest,
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};
use kernel::{
    error::{from_result, to_result},
    init::{pin_init_from_closure, PinInit},
    prelude::*,
    sync::Arc,
    types::{ARef, AlwaysRefCounted, Opaque},
};

/// The lockdep class of every sysfs attribute added by `add_attribute`.
#[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
struct StaticLockClassKey(core::cell::UnsafeCell<bindings::lock_class_key>);

// SAFETY: lockdep only uses the key's address; Rust never reads or writes it.
#[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
unsafe impl Sync for StaticLockClassKey {}

#[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
static SYSFS_ATTR_KEY: StaticLockClassKey = StaticLockClassKey(core::cell::UnsafeCell::new(
    // SAFETY: an all-zero `lock_class_key` is what a C static one starts as.
    unsafe { core::mem::zeroed() },
));

/// Matches any vendor, device or subsystem ID (`PCI_ANY_ID`).
pub const ANY_ID: u32 = !0;

/// One entry of a PCI ID table (`struct pci_device_id`).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::pci_device_id);

impl DeviceId {
    const fn zeroed() -> Self {
        // SAFETY: `struct pci_device_id` is plain data: all-zero is the table
        // terminator and a valid value.
        Self(unsafe { core::mem::zeroed() })
    }

    /// Matches a vendor and device ID, any subsystem.
    pub const fn from_id(vendor: u16, device: u16) -> Self {
        let mut id = Self::zeroed();
        id.0.vendor = vendor as u32;
        id.0.device = device as u32;
        id.0.subvendor = ANY_ID;
        id.0.subdevice = ANY_ID;
        id
    }

    /// Matches a class code (24 bits: base, sub-class, programming interface)
    /// under `class_mask`, any vendor and device.
    pub const fn from_class(class: u32, class_mask: u32) -> Self {
        let mut id = Self::zeroed();
        id.0.vendor = ANY_ID;
        id.0.device = ANY_ID;
        id.0.subvendor = ANY_ID;
        id.0.subdevice = ANY_ID;
        id.0.class = class;
        id.0.class_mask = class_mask;
        id
    }
}

/// The raw ID table handed to C: the entries and a zeroed terminator.
///
/// `#[repr(C)]` keeps the terminator right after the entries, so the whole
/// struct is a C array of `N + 1` `struct pci_device_id`.
#[repr(C)]
pub struct RawIdArray<const N: usize> {
    ids: [DeviceId; N],
    sentinel: DeviceId,
}

impl<const N: usize> RawIdArray<N> {
    /// Builds the table; entry `i` carries `i` in `driver_data`, which maps a
    /// match back to its [`IdArray`] info.
    pub const fn new(ids: [DeviceId; N]) -> Self {
        let mut ids = ids;
        let mut i = 0;
        while i < N {
            ids[i].0.driver_data = i as _;
            i += 1;
        }
        Self {
            ids,
            sentinel: DeviceId::zeroed(),
        }
    }
}

/// An ID table with per-entry driver information; see [`pci_device_table!`].
pub struct IdArray<T: 'static, const N: usize> {
    raw: &'static RawIdArray<N>,
    info: [T; N],
}

impl<T: 'static, const N: usize> IdArray<T, N> {
    /// Pairs a raw table with the information of each entry.
    pub const fn new(raw: &'static RawIdArray<N>, info: [T; N]) -> Self {
        Self { raw, info }
    }
}

/// Access to an ID table independent of its length.
pub trait DeviceIdTable<T> {
    /// The zero-terminated C array.
    fn as_ptr(&self) -> *const bindings::pci_device_id;
    /// The information of entry `index`, if it exists.
    fn info(&self, index: usize) -> Option<&T>;
}

impl<T: 'static, const N: usize> DeviceIdTable<T> for IdArray<T, N> {
    fn as_ptr(&self) -> *const bindings::pci_device_id {
        core::ptr::from_ref(self.raw).cast()
    }

    fn info(&self, index: usize) -> Option<&T> {
        self.info.get(index)
    }
}

/// The type of [`Driver::ID_TABLE`].
pub type IdTable<T> = &'static dyn DeviceIdTable<T>;

/// Declares a PCI ID table and exports it for modpost, so that the module
/// gets `pci:` aliases and is loaded automatically for matching devices.
///
/// ```ignore
/// pci_device_table!(TABLE, MODULE_TABLE, (), [(pci::DeviceId::from_id(0x1234, 0x11e8), ())]);
/// ```
#[macro_export]
macro_rules! pci_device_table {
    ($table:ident, $module_table:ident, $info_ty:ty, [$(($id:expr, $info:expr)),* $(,)?]) => {
        #[export_name = concat!("__mod_pci__", stringify!($module_table), "_device_table")]
        static $module_table: $crate::rust_bindings::pci::RawIdArray<
            { [$(stringify!($id)),*].len() },
        > = $crate::rust_bindings::pci::RawIdArray::new([$($id),*]);

        static $table: $crate::rust_bindings::pci::IdArray<
            $info_ty,
            { [$(stringify!($id)),*].len() },
        > = $crate::rust_bindings::pci::IdArray::new(&$module_table, [$($info),*]);
    };
}

/// A PCI driver.
pub trait Driver: Send + Sync + Sized + 'static {
    /// Per-ID information handed to `probe`.
    type IdInfo: 'static;

    /// The devices this driver binds.
    const ID_TABLE: IdTable<Self::IdInfo>;

    /// Binds the driver to `dev`. Called with the device lock held.
    fn probe(dev: &Device<Core>, id_info: &Self::IdInfo) -> Result<Pin<KBox<Self>>>;

    /// Called before the driver data is dropped at unbind: quiesce the
    /// hardware here. Dropping the data then releases the resources.
    fn unbind(dev: &Device<Core>, this: Pin<&Self>) {
        let _ = (dev, this);
    }

    /// The system is shutting down or rebooting (`pci_driver.shutdown`):
    /// put the device into a safe state. The driver data stays alive.
    fn shutdown(dev: &Device<Core>, this: Pin<&Self>) {
        let _ = (dev, this);
    }

    /// Sysfs attributes created in the device's directory after a
    /// successful probe and removed before `unbind`.
    const ATTRIBUTES: &'static [Attribute] = &[];

    /// A user reads attribute `ATTRIBUTES[index]`: write its value to `out`.
    fn show_attribute(
        dev: &Device<Bound>,
        this: Pin<&Self>,
        index: usize,
        out: &mut AttributeWriter<'_>,
    ) -> Result {
        let _ = (dev, this, index, out);
        Err(EINVAL)
    }

    /// A user wrote `input` to attribute `ATTRIBUTES[index]`.
    fn store_attribute(
        dev: &Device<Bound>,
        this: Pin<&Self>,
        index: usize,
        input: &[u8],
    ) -> Result {
        let _ = (dev, this, index, input);
        Err(EINVAL)
    }
}

/// A sysfs attribute of a bound PCI device, shown by
/// [`Driver::show_attribute`] if `readable`, written through
/// [`Driver::store_attribute`] (by root) if `writable`.
pub struct Attribute {
    /// File name in the device's sysfs directory.
    pub name: &'static CStr,
    /// World-readable.
    pub readable: bool,
    /// Writable by root.
    pub writable: bool,
}

impl Attribute {
    /// A world-readable attribute.
    pub const fn read_only(name: &'static CStr) -> Self {
        Self {
            name,
            readable: true,
            writable: false,
        }
    }

    /// An attribute only root can write.
    pub const fn write_only(name: &'static CStr) -> Self {
        Self {
            name,
            readable: false,
            writable: true,
        }
    }
}

/// Where [`Driver::show_attribute`] writes: the sysfs page, at most
/// `PAGE_SIZE` bytes; longer output is cut.
pub struct AttributeWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for AttributeWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A sysfs attribute of a bound device; `#[repr(C)]` with the C struct
/// first, so the callback finds `index` from the attribute pointer.
#[repr(C)]
struct DeviceAttribute {
    attr: Opaque<bindings::device_attribute>,
    index: usize,
}

/// What the adapter keeps as drvdata: the driver's data and its attributes.
struct AdapterData<T: Driver> {
    data: Pin<KBox<T>>,
    attrs: KVec<Pin<KBox<DeviceAttribute>>>,
}

/// The C callbacks of a [`Driver`].
struct Adapter<T: Driver>(PhantomData<T>);

impl<T: Driver> Adapter<T> {
    extern "C" fn probe_callback(
        pdev: *mut bindings::pci_dev,
        id: *const bindings::pci_device_id,
    ) -> core::ffi::c_int {
        // SAFETY: The PCI core calls probe with a valid device and holds the
        // device lock for the duration of the call.
        let dev = unsafe { Device::<Core>::from_raw(pdev) };
        from_result(|| {
            // SAFETY: `id` points to the matched entry: ours (whose
            // `driver_data` is the entry index), a dynamic ID or the core's
            // catch-all entry for `driver_override`.
            let index = unsafe { (*id).driver_data };
            let info = T::ID_TABLE.info(index).ok_or(EINVAL)?;
            let data = match T::probe(dev, info) {
                Ok(data) => data,
                Err(e) => {
                    dev.disable_after_unbind();
                    return Err(e);
                }
            };
            let adapter = KBox::new(
                AdapterData {
                    data,
                    attrs: KVec::new(),
                },
                GFP_KERNEL,
            )?;
            let ptr = KBox::into_raw(adapter);
            // SAFETY: `dev` is valid; drvdata is ours while bound. The box
            // is reclaimed exactly once, in `remove_callback`.
            unsafe { bindings::rb_dev_set_drvdata(dev.as_dev_raw(), ptr.cast()) };
            // SAFETY: Set just above; only this callback and `remove` (which
            // cannot run concurrently, the device lock is held) use it.
            let adapter = unsafe { &mut *ptr };
            for (index, attr) in T::ATTRIBUTES.iter().enumerate() {
                if let Err(e) = Self::add_attribute(dev, adapter, index, attr) {
                    crate::dev_warn!(
                        dev,
                        "cannot create sysfs attribute {}: error {}\n",
                        attr.name,
                        e.to_errno()
                    );
                }
            }
            Ok(0)
        })
    }

    fn add_attribute(
        dev: &Device<Core>,
        adapter: &mut AdapterData<T>,
        index: usize,
        attr: &'static Attribute,
    ) -> Result {
        let c_attr = bindings::device_attribute {
            attr: bindings::attribute {
                name: attr.name.as_char_ptr(),
                mode: if attr.readable { 0o444 } else { 0 } | if attr.writable { 0o200 } else { 0 },
                // What `sysfs_attr_init()` does for a dynamic attribute: a
                // static lockdep key (lockdep refuses keys in heap memory).
                #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
                key: SYSFS_ATTR_KEY.0.get(),
                ..Default::default()
            },
            show: if attr.readable {
                Some(Self::show_callback)
            } else {
                None
            },
            store: if attr.writable {
                Some(Self::store_callback)
            } else {
                None
            },
        };
        let attr = KBox::pin(
            DeviceAttribute {
                attr: Opaque::new(c_attr),
                index,
            },
            GFP_KERNEL,
        )?;
        // Reserve first: once the file exists, the push must not fail.
        adapter.attrs.reserve(1, GFP_KERNEL)?;
        // SAFETY: `dev` is bound; the attribute lives (pinned, in the
        // drvdata) until `remove_callback` removes it.
        to_result(unsafe { bindings::device_create_file(dev.as_dev_raw(), attr.attr.get()) })?;
        adapter.attrs.push(attr, GFP_KERNEL)?;
        Ok(())
    }

    extern "C" fn shutdown_callback(pdev: *mut bindings::pci_dev) {
        // SAFETY: The PCI core calls shutdown with a valid device and holds
        // the device lock.
        let dev = unsafe { Device::<Core>::from_raw(pdev) };
        // SAFETY: As in `remove_callback`; shutdown does not free it.
        let ptr =
            unsafe { bindings::rb_dev_get_drvdata(dev.as_dev_raw()) }.cast::<AdapterData<T>>();
        if ptr.is_null() {
            return;
        }
        // SAFETY: Set by probe, freed only by remove, which cannot run
        // concurrently (device lock).
        let adapter = unsafe { &*ptr };
        T::shutdown(dev, adapter.data.as_ref());
    }

    extern "C" fn show_callback(
        dev: *mut bindings::device,
        attr: *mut bindings::device_attribute,
        buf: *mut kernel::ffi::c_char,
    ) -> isize {
        // SAFETY: As in `store_callback`; sysfs passes a page-sized buffer.
        let (pdev, adapter, index, page) = unsafe {
            let adapter = &*bindings::rb_dev_get_drvdata(dev).cast::<AdapterData<T>>();
            let index = (*attr.cast::<DeviceAttribute>()).index;
            (
                Device::<Bound>::from_raw(bindings::rb_to_pci_dev(dev)),
                adapter,
                index,
                core::slice::from_raw_parts_mut(buf.cast::<u8>(), 4096),
            )
        };
        let mut out = AttributeWriter { buf: page, len: 0 };
        match T::show_attribute(pdev, adapter.data.as_ref(), index, &mut out) {
            Ok(()) => out.len as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    extern "C" fn store_callback(
        dev: *mut bindings::device,
        attr: *mut bindings::device_attribute,
        buf: *const kernel::ffi::c_char,
        count: usize,
    ) -> isize {
        // SAFETY: sysfs calls us only while the attribute exists, i.e. while
        // the device is bound with our drvdata (removal drains callers);
        // `attr` is the `attr` field of one of our `DeviceAttribute`s.
        let (pdev, adapter, index) = unsafe {
            let adapter = &*bindings::rb_dev_get_drvdata(dev).cast::<AdapterData<T>>();
            let index = (*attr.cast::<DeviceAttribute>()).index;
            (
                Device::<Bound>::from_raw(bindings::rb_to_pci_dev(dev)),
                adapter,
                index,
            )
        };
        // SAFETY: sysfs passes `count` readable bytes.
        let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        match T::store_attribute(pdev, adapter.data.as_ref(), index, input) {
            Ok(()) => count as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    extern "C" fn remove_callback(pdev: *mut bindings::pci_dev) {
        // SAFETY: The PCI core calls remove with a valid device and holds the
        // device lock for the duration of the call.
        let dev = unsafe { Device::<Core>::from_raw(pdev) };
        // SAFETY: A bound device has the drvdata set by a successful probe.
        let ptr =
            unsafe { bindings::rb_dev_get_drvdata(dev.as_dev_raw()) }.cast::<AdapterData<T>>();
        if ptr.is_null() {
            return;
        }
        // SAFETY: `ptr` came from `KBox::into_raw` in probe and is reclaimed
        // only here.
        let adapter = unsafe { KBox::from_raw(ptr) };
        for attr in adapter.attrs.iter() {
            // SAFETY: Created in probe; removal waits for running callbacks.
            unsafe { bindings::device_remove_file(dev.as_dev_raw(), attr.attr.get()) };
        }
        T::unbind(dev, adapter.data.as_ref());
        drop(adapter);
        // SAFETY: `dev` is valid; the driver data is gone.
        unsafe { bindings::rb_dev_set_drvdata(dev.as_dev_raw(), core::ptr::null_mut()) };
        dev.disable_after_unbind();
    }
}

/// The registration of a PCI driver with the PCI core.
///
/// # Invariants
///
/// `drv` is registered with the PCI core from initialization until drop.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Driver> {
    #[pin]
    drv: Opaque<bindings::pci_driver>,
    _driver: PhantomData<T>,
}

impl<T: Driver> Registration<T> {
    /// Registers driver `T` under `name`.
    pub fn new(name: &'static CStr, module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes; the driver struct lives
            // there, pinned, until `drop` unregisters it.
            let drv = Opaque::raw_get(unsafe { core::ptr::addr_of!((*slot).drv) });
            let c_drv = bindings::pci_driver {
                name: name.as_char_ptr(),
                id_table: T::ID_TABLE.as_ptr(),
                probe: Some(Adapter::<T>::probe_callback),
                remove: Some(Adapter::<T>::remove_callback),
                shutdown: Some(Adapter::<T>::shutdown_callback),
                ..Default::default()
            };
            // SAFETY: `drv` points to writable, properly aligned memory.
            unsafe { drv.write(c_drv) };
            // SAFETY: `drv` is fully initialized and stays pinned; `module`
            // and `name` are 'static.
            to_result(unsafe {
                bindings::__pci_register_driver(drv, module.as_ptr().cast(), name.as_char_ptr())
            })
        };
        // SAFETY: On success every field is initialized (`_driver` is a ZST);
        // on failure nothing needs dropping.
        unsafe { pin_init_from_closure(init) }
    }
}

#[pinned_drop]
impl<T: Driver> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the driver is registered.
        unsafe { bindings::pci_unregister_driver(self.drv.get()) };
    }
}

// SAFETY: The registration is only touched at module init and exit; the C
// driver struct may be used by the PCI core from any thread.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: `Registration` has no `&self` methods.
unsafe impl<T: Driver> Sync for Registration<T> {}

/// Declares a module whose only job is to register one PCI driver.
///
/// ```ignore
/// module_pci_driver! {
///     type: MyDriver,
///     name: "my_driver",
///     author: "...",
///     description: "...",
///     license: "GPL",
/// }
/// ```
#[macro_export]
macro_rules! module_pci_driver {
    // `name` is taken as a token tree: `module!` wants a bare string literal.
    (type: $type:ty, name: $name:tt, $($rest:tt)*) => {
        struct RbPciModule {
            _registration:
                ::core::pin::Pin<::kernel::alloc::KBox<$crate::rust_bindings::pci::Registration<$type>>>,
        }

        impl ::kernel::Module for RbPciModule {
            fn init(module: &'static ::kernel::ThisModule) -> ::kernel::error::Result<Self> {
                Ok(Self {
                    _registration: <::kernel::alloc::KBox<_> as ::kernel::init::InPlaceInit<_>>::pin_init(
                        $crate::rust_bindings::pci::Registration::<$type>::new(
                            ::kernel::c_str!($name),
                            module,
                        ),
                        ::kernel::alloc::flags::GFP_KERNEL,
                    )?,
                })
            }
        }

        ::kernel::prelude::module! {
            type: RbPciModule,
            name: $name,
            $($rest)*
        }
    };
}

/// Interrupt types for [`Device::alloc_irq_vectors`] (`PCI_IRQ_*`).
#[derive(Clone, Copy)]
pub struct IrqTypes(u32);

impl IrqTypes {
    /// Legacy INTx.
    pub const INTX: Self = Self(bindings::PCI_IRQ_INTX);
    /// MSI.
    pub const MSI: Self = Self(bindings::PCI_IRQ_MSI);
    /// MSI-X.
    pub const MSIX: Self = Self(bindings::PCI_IRQ_MSIX);

    /// MSI-X, then MSI, then INTx, whichever the device supports first.
    pub const fn all() -> Self {
        Self(Self::INTX.0 | Self::MSI.0 | Self::MSIX.0)
    }

    /// Adds another type.
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// Allocated interrupt vectors; freed when the last user is gone.
///
/// # Invariants
///
/// `count` vectors are allocated on `pdev` until drop.
pub struct IrqVectorsInner {
    pdev: ARef<Device>,
    count: u32,
}

impl Drop for IrqVectorsInner {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the vectors are allocated; every IRQ
        // registration holds an `Arc` to us, so none is requested anymore.
        unsafe { bindings::pci_free_irq_vectors(self.pdev.as_raw()) };
    }
}

/// The interrupt vectors of a device, from [`Device::alloc_irq_vectors`].
///
/// Each [`IrqRequest`] taken from it keeps the vectors allocated, so they
/// are freed only after every handler registered on them is gone.
pub struct IrqVectors {
    inner: Arc<IrqVectorsInner>,
}

impl IrqVectors {
    /// Number of vectors allocated.
    pub fn len(&self) -> u32 {
        self.inner.count
    }

    /// Whether no vector is allocated (never true for a successful
    /// allocation).
    pub fn is_empty(&self) -> bool {
        self.inner.count == 0
    }

    /// Whether the vectors are MSI-X ones.
    pub fn is_msix(&self) -> bool {
        // SAFETY: The device is valid; reading the flag is a plain load.
        unsafe { (*self.inner.pdev.as_raw()).msix_enabled() != 0 }
    }

    /// Whether the vectors are MSI ones.
    pub fn is_msi(&self) -> bool {
        // SAFETY: The device is valid; reading the flag is a plain load.
        unsafe { (*self.inner.pdev.as_raw()).msi_enabled() != 0 }
    }

    /// Returns what is needed to request the Linux IRQ of vector `index`.
    pub fn request(&self, index: u32) -> Result<IrqRequest> {
        if index >= self.inner.count {
            return Err(EINVAL);
        }
        // SAFETY: The device is valid and its vectors are allocated.
        let irq = unsafe { bindings::pci_irq_vector(self.inner.pdev.as_raw(), index) };
        let irq = u32::try_from(irq).map_err(|_| Error::from_errno(irq))?;
        // SAFETY: `irq` is a vector of this device, kept allocated by the
        // `Arc` the request holds.
        Ok(unsafe { IrqRequest::new(irq, self.inner.clone()) })
    }
}

/// A PCI device (`struct pci_dev`) in context `Ctx`.
///
/// # Invariants
///
/// The wrapped `struct pci_dev` is valid for the lifetime of every reference
/// to this type, and the context `Ctx` holds for that lifetime.
#[repr(transparent)]
pub struct Device<Ctx: DeviceContext = Normal>(Opaque<bindings::pci_dev>, PhantomData<Ctx>);

impl<Ctx: DeviceContext> Device<Ctx> {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid `struct pci_dev` for `'a` and `Ctx` must hold
    /// for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::pci_dev) -> &'a Self {
        // SAFETY: Transparent wrapper; validity is the caller's guarantee.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw `struct pci_dev`.
    pub fn as_raw(&self) -> *mut bindings::pci_dev {
        self.0.get()
    }

    fn as_dev_raw(&self) -> *mut bindings::device {
        // SAFETY: `self.as_raw()` is valid; `dev` is embedded in it.
        unsafe { core::ptr::addr_of_mut!((*self.as_raw()).dev) }
    }

    /// Vendor ID.
    pub fn vendor_id(&self) -> u16 {
        // SAFETY: The device is valid; the field is set before probe.
        unsafe { (*self.as_raw()).vendor }
    }

    /// Device ID.
    pub fn device_id(&self) -> u16 {
        // SAFETY: The device is valid; the field is set before probe.
        unsafe { (*self.as_raw()).device }
    }

    /// Revision ID.
    pub fn revision_id(&self) -> u8 {
        // SAFETY: The device is valid; the field is set before probe.
        unsafe { (*self.as_raw()).revision }
    }

    /// Subsystem vendor ID.
    pub fn subsystem_vendor_id(&self) -> u16 {
        // SAFETY: The device is valid; the field is set before probe.
        unsafe { (*self.as_raw()).subsystem_vendor }
    }

    /// Subsystem device ID.
    pub fn subsystem_device_id(&self) -> u16 {
        // SAFETY: The device is valid; the field is set before probe.
        unsafe { (*self.as_raw()).subsystem_device }
    }

    /// Class code: base class, sub-class and programming interface.
    pub fn class(&self) -> u32 {
        // SAFETY: The device is valid; the field is set before probe.
        unsafe { (*self.as_raw()).class }
    }

    fn check_bar(bar: u32) -> Result<i32> {
        // Standard BARs 0-5; the ROM and SR-IOV resources are not ours.
        if bar > 5 {
            return Err(EINVAL);
        }
        Ok(bar as i32)
    }

    /// Start address of BAR `bar`.
    pub fn resource_start(&self, bar: u32) -> Result<u64> {
        let bar = Self::check_bar(bar)?;
        // SAFETY: The device is valid and `bar` is a standard BAR index.
        Ok(unsafe { bindings::rb_pci_resource_start(self.as_raw(), bar) })
    }

    /// Length in bytes of BAR `bar` (0 if it is not implemented).
    pub fn resource_len(&self, bar: u32) -> Result<u64> {
        let bar = Self::check_bar(bar)?;
        // SAFETY: The device is valid and `bar` is a standard BAR index.
        Ok(unsafe { bindings::rb_pci_resource_len(self.as_raw(), bar) })
    }

    /// Disables bus mastering and the device if it is enabled.
    fn disable_after_unbind(&self) {
        // SAFETY: The device is valid. `enable_cnt` is only nonzero if
        // `enable_device_mem` enabled it (drivers balance enables).
        unsafe {
            if (*self.as_raw()).enable_cnt.counter > 0 {
                bindings::pci_clear_master(self.as_raw());
                bindings::pci_disable_device(self.as_raw());
            }
        }
    }
}

impl Device<Core> {
    /// Enables memory-space decoding (`pci_enable_device_mem`). The bus
    /// adapter disables the device again after unbind.
    pub fn enable_device_mem(&self) -> Result {
        // SAFETY: The device is valid and we are in a bus callback.
        to_result(unsafe { bindings::pci_enable_device_mem(self.as_raw()) })
    }

    /// Enables bus mastering (DMA by the device).
    pub fn set_master(&self) {
        // SAFETY: The device is valid and we are in a bus callback.
        unsafe { bindings::pci_set_master(self.as_raw()) };
    }

    /// Whether the device's `driver_override` (set through sysfs) names the
    /// driver being probed, i.e. the user chose this driver for it.
    pub fn matched_by_driver_override(&self) -> bool {
        // SAFETY: The device is valid; during probe its driver is set.
        unsafe { bindings::rb_driver_override_matches(self.as_dev_raw()) }
    }

    /// Sets the streaming and coherent DMA masks. Call it once in probe,
    /// before any DMA allocation or mapping (upstream marks the equivalent
    /// `dma::Device` method `unsafe` for that reason; here the `Core`
    /// context confines it to bus callbacks).
    pub fn dma_set_mask_and_coherent(&self, mask: DmaMask) -> Result {
        // SAFETY: The device is valid.
        to_result(unsafe {
            bindings::rb_dma_set_mask_and_coherent(self.as_dev_raw(), mask.value())
        })
    }
}

impl Device<Bound> {
    /// Requests and maps BAR `bar`; `SIZE` is the minimum size the driver
    /// needs, checked here, so that constant register offsets below it are
    /// checked at compile time.
    pub fn iomap_region_sized<const SIZE: usize>(
        &self,
        bar: u32,
        name: &'static CStr,
    ) -> Result<Bar<SIZE>> {
        Bar::new(self, bar, name)
    }

    /// Requests and maps BAR `bar`; all accesses are checked at run time.
    pub fn iomap_region(&self, bar: u32, name: &'static CStr) -> Result<Bar> {
        self.iomap_region_sized::<0>(bar, name)
    }

    /// Allocates between `min` and `max` interrupt vectors of the given
    /// types (`pci_alloc_irq_vectors`).
    pub fn alloc_irq_vectors(&self, min: u32, max: u32, types: IrqTypes) -> Result<IrqVectors> {
        self.alloc_vectors(min, max, types.0, None)
    }

    /// Like [`Device::alloc_irq_vectors`], but spreads the vectors after the
    /// first `pre_vectors` over the CPUs (`pci_alloc_irq_vectors_affinity`),
    /// so that each queue's interrupt lands on the CPUs that submit to it.
    pub fn alloc_irq_vectors_affinity(
        &self,
        min: u32,
        max: u32,
        types: IrqTypes,
        pre_vectors: u32,
    ) -> Result<IrqVectors> {
        let affd = bindings::irq_affinity {
            pre_vectors,
            ..Default::default()
        };
        self.alloc_vectors(min, max, types.0 | bindings::PCI_IRQ_AFFINITY, Some(affd))
    }

    fn alloc_vectors(
        &self,
        min: u32,
        max: u32,
        flags: u32,
        affd: Option<bindings::irq_affinity>,
    ) -> Result<IrqVectors> {
        let mut affd = affd;
        let affd_ptr = affd
            .as_mut()
            .map_or(core::ptr::null_mut(), core::ptr::from_mut);
        // SAFETY: The device is valid and bound; `affd` (if any) lives
        // across the call.
        let ret = unsafe {
            bindings::pci_alloc_irq_vectors_affinity(self.as_raw(), min, max, flags, affd_ptr)
        };
        let count = u32::try_from(ret).map_err(|_| Error::from_errno(ret))?;
        // INVARIANT: `count` vectors were just allocated.
        let inner = IrqVectorsInner {
            pdev: self.to_aref(),
            count,
        };
        Ok(IrqVectors {
            inner: Arc::new(inner, GFP_KERNEL)?,
        })
    }

    fn to_aref(&self) -> ARef<Device> {
        let normal: &Device = self;
        ARef::from(normal)
    }
}

impl Deref for Device<Core> {
    type Target = Device<Bound>;

    fn deref(&self) -> &Device<Bound> {
        // SAFETY: Same layout; a device in a bus callback is bound.
        unsafe { Device::from_raw(self.as_raw()) }
    }
}

impl Deref for Device<Bound> {
    type Target = Device<Normal>;

    fn deref(&self) -> &Device<Normal> {
        // SAFETY: Same layout; every valid device satisfies `Normal`.
        unsafe { Device::from_raw(self.as_raw()) }
    }
}

impl<Ctx: DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: The embedded `struct device` shares the validity and
        // context of the PCI device.
        unsafe { device::Device::from_raw(self.as_dev_raw()) }
    }
}

// SAFETY: `pci_dev_get`/`pci_dev_put` keep the object alive while a count is
// held; only the `Normal` context is refcounted.
unsafe impl AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The device is valid by the type invariant.
        unsafe { bindings::pci_dev_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owns.
        unsafe { bindings::pci_dev_put(obj.as_ptr().cast()) };
    }
}

// SAFETY: A `struct pci_dev` may be used and released from any thread.
unsafe impl<Ctx: DeviceContext> Send for Device<Ctx> {}
// SAFETY: All methods take `&self` and call thread-safe C functions.
unsafe impl<Ctx: DeviceContext> Sync for Device<Ctx> {}

/// A requested and mapped memory BAR.
///
/// # Invariants
///
/// Region `num` of `pdev` is requested and mapped at `io.addr()` for
/// `io.maxsize()` bytes until drop.
pub struct Bar<const SIZE: usize = 0> {
    pdev: ARef<Device>,
    io: MmioRaw<SIZE>,
    num: i32,
}

impl<const SIZE: usize> Bar<SIZE> {
    fn new(pdev: &Device<Bound>, bar: u32, name: &'static CStr) -> Result<Self> {
        let num = Device::<Bound>::check_bar(bar)?;
        let len = pdev.resource_len(bar)?;
        // SAFETY: The device is valid and `num` is a standard BAR index.
        let flags = unsafe { bindings::rb_pci_resource_flags(pdev.as_raw(), num) };
        if len == 0 || flags & bindings::IORESOURCE_MEM as usize == 0 {
            return Err(ENODEV);
        }
        let len = usize::try_from(len).map_err(|_| EINVAL)?;
        if len < SIZE {
            return Err(EINVAL);
        }
        // SAFETY: The device is valid and bound; `name` is 'static.
        to_result(unsafe { bindings::pci_request_region(pdev.as_raw(), num, name.as_char_ptr()) })?;
        // SAFETY: The region is ours; 0 maps the whole BAR.
        let ptr = unsafe { bindings::pci_iomap(pdev.as_raw(), num, 0) };
        if ptr.is_null() {
            // SAFETY: Requested just above.
            unsafe { bindings::pci_release_region(pdev.as_raw(), num) };
            return Err(ENOMEM);
        }
        // `len >= SIZE` was checked, so this cannot fail.
        let io = MmioRaw::new(ptr as usize, len)?;
        // INVARIANT: requested and mapped above.
        Ok(Self {
            pdev: pdev.to_aref(),
            io,
            num,
        })
    }

    /// The BAR index.
    pub fn index(&self) -> u32 {
        self.num as u32
    }
}

impl<const SIZE: usize> Deref for Bar<SIZE> {
    type Target = Mmio<SIZE>;

    fn deref(&self) -> &Mmio<SIZE> {
        // SAFETY: By the type invariant the range is mapped while `self` lives.
        unsafe { Mmio::from_raw(&self.io) }
    }
}

impl<const SIZE: usize> Drop for Bar<SIZE> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the region is requested and mapped.
        unsafe {
            bindings::pci_iounmap(self.pdev.as_raw(), self.io.addr() as *mut core::ffi::c_void);
            bindings::pci_release_region(self.pdev.as_raw(), self.num);
        }
    }
}

// SAFETY: MMIO may be accessed from any thread; the mapping is released once.
unsafe impl<const SIZE: usize> Send for Bar<SIZE> {}
// SAFETY: Register accessors take `&self` and are single MMIO accesses.
unsafe impl<const SIZE: usize> Sync for Bar<SIZE> {}
