// SPDX-License-Identifier: GPL-2.0

//! A test driver for QEMU's `edu` PCI device (`-device edu`), written only
//! against the safe abstractions of `rust-bindings/`.
//!
//! On probe it exercises each abstraction on real hardware and fails the
//! probe, saying which step went wrong, if the device does not behave:
//! * BAR mapping and typed register access: the identification register and
//!   the liveness register (the device returns the bitwise inverse);
//! * interrupts: a factorial computed by the device, finished by an
//!   interrupt, and an interrupt raised on request;
//! * coherent DMA: a pattern copied to the device's buffer and back into a
//!   zeroed allocation, compared;
//! * streaming DMA: the same round trip through `dma_map_single` buffers.
//!
//! The device's register map is in QEMU's `docs/specs/edu.rst`.

use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

#[path = "../../rust-bindings/rust_bindings.rs"]
pub mod rust_bindings;

use core::sync::atomic::{AtomicU32, Ordering};
use rust_bindings::{
    device::Core,
    dma::{CoherentAllocation, DataDirection, DmaMask, SingleMapping},
    io::IoKnownSize,
    irq, pci,
    sync::Completion,
};

/// BAR 0 is 1 MiB; the registers we use are all below 0x100.
const EDU_BAR_SIZE: usize = 0x100;

const REG_ID: usize = 0x00;
const REG_LIVENESS: usize = 0x04;
const REG_FACTORIAL: usize = 0x08;
const REG_STATUS: usize = 0x20;
const REG_IRQ_STATUS: usize = 0x24;
const REG_IRQ_RAISE: usize = 0x60;
const REG_IRQ_ACK: usize = 0x64;
const REG_DMA_SRC: usize = 0x80;
const REG_DMA_DST: usize = 0x88;
const REG_DMA_COUNT: usize = 0x90;
const REG_DMA_CMD: usize = 0x98;

/// Low byte of the identification register; the top bytes are the version.
const EDU_ID_MAGIC: u32 = 0xed;
const STATUS_COMPUTING: u32 = 0x01;
const STATUS_IRQ_ON_FACTORIAL: u32 = 0x80;
/// Interrupt status value the device raises when a factorial is done.
const IRQ_FACTORIAL: u32 = 0x001;
/// Interrupt status value the device raises when a DMA transfer is done.
const IRQ_DMA: u32 = 0x100;
const DMA_CMD_START: u64 = 0x1;
const DMA_CMD_TO_RAM: u64 = 0x2;
const DMA_CMD_IRQ: u64 = 0x4;
/// Where the device's internal 4 KiB DMA buffer sits in its address space.
const EDU_DMA_BUFFER: u64 = 0x40000;
const EDU_DMA_BUFFER_SIZE: usize = 4096;

/// The device takes ~100 ms (virtual time) per DMA; TCG is slow.
const IRQ_TIMEOUT_MS: u32 = 5000;

/// State shared by the driver and its interrupt handler.
#[pin_data]
struct EduShared {
    bar: pci::Bar<EDU_BAR_SIZE>,
    #[pin]
    irq_done: Completion,
    /// Interrupt status values seen by the handler since the last reset.
    irq_seen: AtomicU32,
    irq_count: AtomicU32,
}

impl irq::Handler for EduShared {
    fn handle(&self) -> irq::IrqReturn {
        let status = self.bar.read32(REG_IRQ_STATUS);
        if status == 0 {
            // Not ours (INTx may be shared).
            return irq::IrqReturn::None;
        }
        self.bar.write32(status, REG_IRQ_ACK);
        self.irq_seen.fetch_or(status, Ordering::AcqRel);
        self.irq_count.fetch_add(1, Ordering::Relaxed);
        self.irq_done.complete_all();
        irq::IrqReturn::Handled
    }
}

impl EduShared {
    /// Starts an operation that ends with an interrupt.
    fn arm_irq(&self) {
        self.irq_seen.store(0, Ordering::Release);
        self.irq_done.reinit();
    }

    /// Waits for the interrupt of an operation started after `arm_irq`, and
    /// checks that it carried `expected`.
    fn wait_irq(&self, pdev: &pci::Device<Core>, what: &str, expected: u32) -> Result {
        if let Err(e) = self.irq_done.wait_for_completion_timeout(IRQ_TIMEOUT_MS) {
            dev_err!(pdev, "{what}: no interrupt within {IRQ_TIMEOUT_MS} ms\n");
            return Err(e);
        }
        let seen = self.irq_seen.load(Ordering::Acquire);
        if seen & expected == 0 {
            dev_err!(
                pdev,
                "{what}: interrupt status {seen:#x}, expected {expected:#x}\n"
            );
            return Err(EIO);
        }
        Ok(())
    }
}

struct EduDriver {
    // Field order is drop order: the handler goes before the state it uses
    // and before the vectors (which its request keeps alive anyway).
    irq: Pin<KBox<irq::Registration<Arc<EduShared>>>>,
    shared: Arc<EduShared>,
    _vectors: pci::IrqVectors,
}

pci_device_table!(
    EDU_PCI_TABLE,
    EDU_MODULE_PCI_TABLE,
    (),
    [(pci::DeviceId::from_id(0x1234, 0x11e8), ())]
);

fn factorial(n: u32) -> u32 {
    (1..=n).fold(1u32, |acc, k| acc.wrapping_mul(k))
}

/// A pattern that differs per byte and per run, so stale data cannot pass.
fn pattern(i: usize, seed: u8) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8)
}

impl EduDriver {
    fn check_registers(pdev: &pci::Device<Core>, shared: &EduShared) -> Result<u32> {
        let id = shared.bar.read32(REG_ID);
        if id & 0xff != EDU_ID_MAGIC {
            dev_err!(
                pdev,
                "identification register {id:#010x}: not an edu device\n"
            );
            return Err(ENODEV);
        }
        for probe_value in [0x1234_5678u32, 0, 0xffff_ffff, 0xa5a5_5a5a] {
            shared.bar.write32(probe_value, REG_LIVENESS);
            let back = shared.bar.read32(REG_LIVENESS);
            if back != !probe_value {
                dev_err!(
                    pdev,
                    "liveness: wrote {probe_value:#x}, read {back:#x}, expected {:#x}\n",
                    !probe_value
                );
                return Err(EIO);
            }
        }
        Ok(id)
    }

    fn check_factorial(pdev: &pci::Device<Core>, shared: &EduShared) -> Result {
        shared.bar.write32(STATUS_IRQ_ON_FACTORIAL, REG_STATUS);
        for n in [0u32, 1, 5, 10, 12] {
            shared.arm_irq();
            shared.bar.write32(n, REG_FACTORIAL);
            shared.wait_irq(pdev, "factorial", IRQ_FACTORIAL)?;
            if shared.bar.read32(REG_STATUS) & STATUS_COMPUTING != 0 {
                dev_err!(pdev, "factorial: interrupt arrived while still computing\n");
                return Err(EIO);
            }
            let got = shared.bar.read32(REG_FACTORIAL);
            if got != factorial(n) {
                dev_err!(pdev, "factorial({n}) = {got}, expected {}\n", factorial(n));
                return Err(EIO);
            }
        }
        shared.bar.write32(0, REG_STATUS);

        // An interrupt raised on request carries the raised value.
        shared.arm_irq();
        shared.bar.write32(0x4000_0000, REG_IRQ_RAISE);
        shared.wait_irq(pdev, "raised interrupt", 0x4000_0000)
    }

    /// Runs one DMA transfer between guest memory at `addr` and the device
    /// buffer, and waits for its interrupt.
    fn dma(pdev: &pci::Device<Core>, shared: &EduShared, addr: u64, to_ram: bool) -> Result {
        let (src, dst, dir) = if to_ram {
            (EDU_DMA_BUFFER, addr, DMA_CMD_TO_RAM)
        } else {
            (addr, EDU_DMA_BUFFER, 0)
        };
        shared.arm_irq();
        shared.bar.write64(src, REG_DMA_SRC);
        shared.bar.write64(dst, REG_DMA_DST);
        shared
            .bar
            .write64(EDU_DMA_BUFFER_SIZE as u64, REG_DMA_COUNT);
        shared
            .bar
            .write64(DMA_CMD_START | dir | DMA_CMD_IRQ, REG_DMA_CMD);
        shared.wait_irq(
            pdev,
            if to_ram { "DMA to RAM" } else { "DMA from RAM" },
            IRQ_DMA,
        )
    }

    fn check_coherent_dma(pdev: &pci::Device<Core>, shared: &EduShared) -> Result {
        let out = CoherentAllocation::<u8>::alloc_coherent(
            pdev.as_ref(),
            EDU_DMA_BUFFER_SIZE,
            GFP_KERNEL,
        )?;
        let back = CoherentAllocation::<u8>::alloc_coherent(
            pdev.as_ref(),
            EDU_DMA_BUFFER_SIZE,
            GFP_KERNEL,
        )?;
        for i in 0..EDU_DMA_BUFFER_SIZE {
            out.write(i, pattern(i, 0x5a))?;
        }
        Self::dma(pdev, shared, out.dma_handle(), false)?;
        Self::dma(pdev, shared, back.dma_handle(), true)?;
        for i in 0..EDU_DMA_BUFFER_SIZE {
            let got = back.read(i)?;
            if got != pattern(i, 0x5a) {
                dev_err!(
                    pdev,
                    "coherent DMA: byte {i} is {got:#x}, expected {:#x}\n",
                    pattern(i, 0x5a)
                );
                return Err(EIO);
            }
        }
        Ok(())
    }

    fn check_streaming_dma(pdev: &pci::Device<Core>, shared: &EduShared) -> Result {
        let mut out_buf = KVec::with_capacity(EDU_DMA_BUFFER_SIZE, GFP_KERNEL)?;
        let mut zero_buf = KVec::with_capacity(EDU_DMA_BUFFER_SIZE, GFP_KERNEL)?;
        for i in 0..EDU_DMA_BUFFER_SIZE {
            out_buf.push(pattern(i, 0xc3), GFP_KERNEL)?;
            zero_buf.push(0u8, GFP_KERNEL)?;
        }
        let out = SingleMapping::new(pdev.as_ref(), out_buf, DataDirection::ToDevice)?;
        Self::dma(pdev, shared, out.dma_handle(), false)?;
        drop(out.unmap());

        let back = SingleMapping::new(pdev.as_ref(), zero_buf, DataDirection::FromDevice)?;
        Self::dma(pdev, shared, back.dma_handle(), true)?;
        let back = back.unmap();
        if let Some(i) = (0..EDU_DMA_BUFFER_SIZE).find(|&i| back[i] != pattern(i, 0xc3)) {
            dev_err!(
                pdev,
                "streaming DMA: byte {i} is {:#x}, expected {:#x}\n",
                back[i],
                pattern(i, 0xc3)
            );
            return Err(EIO);
        }
        Ok(())
    }
}

impl pci::Driver for EduDriver {
    type IdInfo = ();
    const ID_TABLE: pci::IdTable<()> = &EDU_PCI_TABLE;

    fn probe(pdev: &pci::Device<Core>, _info: &()) -> Result<Pin<KBox<Self>>> {
        pdev.enable_device_mem()?;
        pdev.set_master();
        // QEMU's edu checks DMA addresses against its `dma_mask` property
        // (28 bits by default); qemu-test/vm sets it to 32 bits.
        pdev.dma_set_mask_and_coherent(DmaMask::new::<32>())?;

        let bar = pdev.iomap_region_sized::<EDU_BAR_SIZE>(0, c_str!("rust_edu"))?;
        let shared = Arc::pin_init(
            pin_init!(EduShared {
                bar,
                irq_done <- Completion::new(),
                irq_seen: AtomicU32::new(0),
                irq_count: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )?;

        let id = Self::check_registers(pdev, &shared)?;

        let vectors = pdev.alloc_irq_vectors(1, 1, pci::IrqTypes::MSI.with(pci::IrqTypes::INTX))?;
        let irq_kind = if vectors.is_msi() { "MSI" } else { "INTx" };
        let irq = KBox::pin_init(
            irq::Registration::new(
                vectors.request(0)?,
                irq::Flags::SHARED,
                c_str!("rust_edu"),
                shared.clone(),
            ),
            GFP_KERNEL,
        )?;

        Self::check_factorial(pdev, &shared)?;
        Self::check_coherent_dma(pdev, &shared)?;
        Self::check_streaming_dma(pdev, &shared)?;

        dev_info!(
            pdev,
            "edu v{}.{}: registers, {} interrupts ({}), coherent and streaming DMA of {} bytes: all checks passed\n",
            id >> 24,
            (id >> 16) & 0xff,
            shared.irq_count.load(Ordering::Relaxed),
            irq_kind,
            EDU_DMA_BUFFER_SIZE
        );
        Ok(KBox::pin(
            Self {
                irq,
                shared,
                _vectors: vectors,
            },
            GFP_KERNEL,
        )?)
    }

    fn unbind(pdev: &pci::Device<Core>, this: Pin<&Self>) {
        // Nothing runs on the device between operations; make sure no
        // interrupt is in flight before the handler goes away.
        this.irq.synchronize();
        dev_info!(
            pdev,
            "unbound after {} interrupts\n",
            this.shared.irq_count.load(Ordering::Relaxed)
        );
    }
}

module_pci_driver! {
    type: EduDriver,
    name: "rust_edu",
    author: "rfl-drivers",
    description: "Test driver for QEMU's edu device, built on rust-bindings",
    license: "GPL",
}
