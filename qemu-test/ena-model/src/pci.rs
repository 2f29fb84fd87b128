//! The PCI function around the ENA device: config space (identity, BARs,
//! MSI-X capability) and the vfio region layout.

use crate::ena::{self, Ena};

pub const VENDOR_AMAZON: u16 = 0x1d0f;
pub const DEVICE_ENA_VF: u16 = 0xec20;

// vfio-pci region indices.
pub const REGION_BAR0: u32 = 0;
pub const REGION_MSIX_BAR: u32 = 4;
pub const REGION_CONFIG: u32 = 7;
pub const NUM_REGIONS: u32 = 9;
pub const MSIX_BAR: u8 = 4;
pub const MSIX_BAR_SIZE: u64 = 0x1000;
pub const MSIX_PBA_OFFSET: u32 = 0x800;
const MSIX_CAP: usize = 0x40;
const CONFIG_SIZE: usize = 256;

// vfio IRQ indices.
pub const IRQ_INTX: u32 = 0;
pub const IRQ_MSI: u32 = 1;
pub const IRQ_MSIX: u32 = 2;
pub const NUM_IRQS: u32 = 5;

pub struct Function {
    config: [u8; CONFIG_SIZE],
    /// Bits the guest may change, per config byte.
    wmask: [u8; CONFIG_SIZE],
    pub ena: Ena,
}

fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

impl Function {
    pub fn new(ena: Ena) -> Self {
        let mut c = [0u8; CONFIG_SIZE];
        let mut w = [0u8; CONFIG_SIZE];
        put16(&mut c, 0x00, VENDOR_AMAZON);
        put16(&mut c, 0x02, DEVICE_ENA_VF);
        put16(&mut c, 0x06, 0x0010); // status: capability list
        c[0x08] = ena.pci_revision();
        c[0x0b] = 0x02; // class: network controller, Ethernet
        put16(&mut c, 0x2c, VENDOR_AMAZON);
        put16(&mut c, 0x2e, DEVICE_ENA_VF);
        c[0x34] = MSIX_CAP as u8;
        // MSI-X capability: table at BAR4 offset 0, PBA at BAR4 + 0x800.
        c[MSIX_CAP] = 0x11;
        c[MSIX_CAP + 1] = 0;
        put16(&mut c, MSIX_CAP + 2, ena.cfg.msix_vectors() - 1);
        put32(&mut c, MSIX_CAP + 4, MSIX_BAR as u32);
        put32(&mut c, MSIX_CAP + 8, MSIX_PBA_OFFSET | MSIX_BAR as u32);
        // Writable: command, BAR0 and BAR4 address bits, interrupt line, MSI-X enable/mask.
        put16(&mut w, 0x04, 0x0547);
        put32(&mut w, 0x10, !(ena::BAR0_SIZE as u32 - 1));
        put32(&mut w, 0x20, !(MSIX_BAR_SIZE as u32 - 1));
        w[0x3c] = 0xff;
        w[MSIX_CAP + 3] = 0xc0;
        Function {
            config: c,
            wmask: w,
            ena,
        }
    }

    /// Size and flags (read/write) of a vfio region; size 0 = absent.
    pub fn region_size(&self, index: u32) -> u64 {
        match index {
            REGION_BAR0 => ena::BAR0_SIZE,
            REGION_MSIX_BAR => MSIX_BAR_SIZE,
            REGION_CONFIG => CONFIG_SIZE as u64,
            _ => 0,
        }
    }

    pub fn irq_count(&self, index: u32) -> Option<u32> {
        match index {
            IRQ_INTX | IRQ_MSI => Some(0),
            IRQ_MSIX => Some(self.ena.cfg.msix_vectors() as u32),
            _ => None,
        }
    }

    /// Region read; errors are errno values for the vfio-user reply.
    pub fn read(&mut self, region: u32, off: u64, data: &mut [u8]) -> Result<(), i32> {
        let end = off
            .checked_add(data.len() as u64)
            .filter(|&e| e <= self.region_size(region))
            .ok_or(libc::EINVAL)?;
        match region {
            REGION_CONFIG => data.copy_from_slice(&self.config[off as usize..end as usize]),
            REGION_BAR0 => {
                if data.len() != 4 || !off.is_multiple_of(4) {
                    self.ena.stats.guest_errors += 1;
                    eprintln!(
                        "ena-model[{}]: guest error: {}-byte BAR0 read at {off:#x}",
                        self.ena.cfg.name,
                        data.len()
                    );
                    data.fill(0xff);
                } else {
                    data.copy_from_slice(&self.ena.bar_read(off).to_le_bytes());
                }
            }
            // MSI-X table (emulated by QEMU) and PBA: nothing pending to report.
            REGION_MSIX_BAR => data.fill(0),
            _ => return Err(libc::EINVAL),
        }
        Ok(())
    }

    pub fn write(&mut self, region: u32, off: u64, data: &[u8]) -> Result<(), i32> {
        let _end = off
            .checked_add(data.len() as u64)
            .filter(|&e| e <= self.region_size(region))
            .ok_or(libc::EINVAL)?;
        match region {
            REGION_CONFIG => {
                for (i, b) in data.iter().enumerate() {
                    let o = off as usize + i;
                    let m = self.wmask[o];
                    self.config[o] = (self.config[o] & !m) | (b & m);
                }
            }
            REGION_BAR0 => {
                if data.len() != 4 || !off.is_multiple_of(4) {
                    self.ena.stats.guest_errors += 1;
                    eprintln!(
                        "ena-model[{}]: guest error: {}-byte BAR0 write at {off:#x} ignored",
                        self.ena.cfg.name,
                        data.len()
                    );
                } else {
                    let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                    self.ena.mmio_write(off, v);
                }
            }
            REGION_MSIX_BAR => {}
            _ => return Err(libc::EINVAL),
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        self.ena.flr();
        put16(&mut self.config, 0x04, 0);
        self.config[MSIX_CAP + 3] &= 0x3f;
    }
}
