// SPDX-License-Identifier: GPL-2.0

//! NVMe definitions used by the driver (NVM Express Base Specification 2.0:
//! controller registers, admin and NVM command set, queue entries).

/// Controller registers (offsets into BAR 0).
pub(crate) mod reg {
    /// Controller Capabilities (64 bit).
    pub(crate) const CAP: usize = 0x00;
    /// Version.
    pub(crate) const VS: usize = 0x08;
    /// Controller Configuration.
    pub(crate) const CC: usize = 0x14;
    /// Controller Status.
    pub(crate) const CSTS: usize = 0x1c;
    /// Admin Queue Attributes.
    pub(crate) const AQA: usize = 0x24;
    /// Admin Submission Queue base (64 bit).
    pub(crate) const ASQ: usize = 0x28;
    /// Admin Completion Queue base (64 bit).
    pub(crate) const ACQ: usize = 0x30;
    /// First doorbell.
    pub(crate) const DOORBELLS: usize = 0x1000;
    /// The registers the driver accesses at constant offsets end here.
    pub(crate) const BAR_MIN: usize = 0x1000;
}

/// Decoded Controller Capabilities.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cap(pub(crate) u64);

impl Cap {
    /// Maximum queue entries supported (1-based).
    pub(crate) fn mqes(self) -> u32 {
        (self.0 & 0xffff) as u32 + 1
    }

    /// Worst-case time to become ready, in milliseconds (CAP.TO is in
    /// 500 ms units).
    pub(crate) fn timeout_ms(self) -> u32 {
        (((self.0 >> 24) & 0xff) as u32).max(1) * 500
    }

    /// Doorbell stride in bytes.
    pub(crate) fn doorbell_stride(self) -> usize {
        4 << ((self.0 >> 32) & 0xf)
    }

    /// Whether the NVM command set is supported (CAP.CSS bit 0).
    pub(crate) fn nvm_command_set(self) -> bool {
        (self.0 >> 37) & 1 != 0
    }

    /// Minimum memory page size as a shift (12 = 4 KiB).
    pub(crate) fn mps_min_shift(self) -> u32 {
        12 + ((self.0 >> 48) & 0xf) as u32
    }

    /// Maximum memory page size as a shift.
    pub(crate) fn mps_max_shift(self) -> u32 {
        12 + ((self.0 >> 52) & 0xf) as u32
    }
}

/// CC bits.
pub(crate) mod cc {
    pub(crate) const ENABLE: u32 = 1 << 0;
    /// NVM command set, 4 KiB pages, round robin.
    pub(crate) const CSS_NVM: u32 = 0 << 4;
    pub(crate) const SHN_NORMAL: u32 = 1 << 14;
    pub(crate) const SHN_MASK: u32 = 3 << 14;
    /// 64-byte submission and 16-byte completion entries.
    pub(crate) const IOSQES: u32 = 6 << 16;
    pub(crate) const IOCQES: u32 = 4 << 20;
}

/// CSTS bits.
pub(crate) mod csts {
    pub(crate) const READY: u32 = 1 << 0;
    pub(crate) const FATAL: u32 = 1 << 1;
    pub(crate) const SHST_MASK: u32 = 3 << 2;
    pub(crate) const SHST_COMPLETE: u32 = 2 << 2;
}

/// Admin command opcodes.
pub(crate) mod admin {
    pub(crate) const CREATE_SQ: u8 = 0x01;
    pub(crate) const CREATE_CQ: u8 = 0x05;
    pub(crate) const IDENTIFY: u8 = 0x06;
    pub(crate) const ABORT: u8 = 0x08;
    pub(crate) const SET_FEATURES: u8 = 0x09;
}

/// NVM command set opcodes.
pub(crate) mod io {
    pub(crate) const FLUSH: u8 = 0x00;
    pub(crate) const WRITE: u8 = 0x01;
    pub(crate) const READ: u8 = 0x02;
    pub(crate) const WRITE_ZEROES: u8 = 0x08;
    pub(crate) const DSM: u8 = 0x09;
}

/// Read/write command dword 12: Force Unit Access.
pub(crate) const RW_FUA: u32 = 1 << 30;

/// Feature identifiers.
pub(crate) mod feature {
    pub(crate) const NUM_QUEUES: u32 = 0x07;
    pub(crate) const IRQ_COALESCING: u32 = 0x08;
}

/// Identify CNS values.
pub(crate) mod cns {
    pub(crate) const NAMESPACE: u32 = 0x00;
    pub(crate) const CONTROLLER: u32 = 0x01;
    pub(crate) const ACTIVE_NS_LIST: u32 = 0x02;
}

/// A 64-byte submission queue entry, as sixteen little-endian dwords.
#[derive(Clone, Copy, Default)]
pub(crate) struct Command(pub(crate) [u32; 16]);

impl Command {
    /// A command with `opcode` and command identifier `cid`.
    pub(crate) fn new(opcode: u8, cid: u16) -> Self {
        let mut c = Self([0; 16]);
        c.0[0] = u32::from(opcode) | (u32::from(cid) << 16);
        c
    }

    pub(crate) fn nsid(mut self, nsid: u32) -> Self {
        self.0[1] = nsid;
        self
    }

    /// Data pointer as PRP entry 1 and 2.
    pub(crate) fn prp(mut self, prp1: u64, prp2: u64) -> Self {
        self.0[6] = prp1 as u32;
        self.0[7] = (prp1 >> 32) as u32;
        self.0[8] = prp2 as u32;
        self.0[9] = (prp2 >> 32) as u32;
        self
    }

    /// Data pointer as one SGL descriptor (PSDT = SGL): a data block, or a
    /// last-segment descriptor pointing to a list of data blocks.
    pub(crate) fn sgl(mut self, addr: u64, len: u32, descriptor_type: u8) -> Self {
        self.0[0] |= 1 << 14;
        self.0[6] = addr as u32;
        self.0[7] = (addr >> 32) as u32;
        self.0[8] = len;
        self.0[9] = u32::from(descriptor_type) << 24;
        self
    }

    /// Command dword `n` (10 to 15).
    pub(crate) fn cdw(mut self, n: usize, value: u32) -> Self {
        self.0[n] = value;
        self
    }

    pub(crate) fn opcode(&self) -> u8 {
        self.0[0] as u8
    }
}

/// A decoded 16-byte completion queue entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Completion {
    pub(crate) result: u32,
    pub(crate) sq_head: u16,
    pub(crate) sq_id: u16,
    pub(crate) cid: u16,
    pub(crate) phase: bool,
    /// Status field without the phase bit: SC in bits 7:0, SCT in 10:8.
    pub(crate) status: u16,
}

impl Completion {
    pub(crate) fn from_dwords(d: [u32; 4]) -> Self {
        Self {
            result: d[0],
            sq_head: d[2] as u16,
            sq_id: (d[2] >> 16) as u16,
            cid: d[3] as u16,
            phase: (d[3] >> 16) & 1 != 0,
            status: (d[3] >> 17) as u16 & 0x7fff,
        }
    }

    /// Status code type (0 generic, 1 command specific, 2 media).
    pub(crate) fn sct(&self) -> u16 {
        (self.status >> 8) & 0x7
    }

    /// Status code.
    pub(crate) fn sc(&self) -> u16 {
        self.status & 0xff
    }

    pub(crate) fn is_ok(&self) -> bool {
        self.status & 0x7ff == 0
    }
}

/// SGL descriptor types (type in bits 7:4, sub-type 0: address).
pub(crate) mod sgl {
    pub(crate) const DATA_BLOCK: u8 = 0x00;
    pub(crate) const LAST_SEGMENT: u8 = 0x30;
    /// Bytes per descriptor.
    pub(crate) const DESCRIPTOR_SIZE: u32 = 16;
}

/// Generic status codes the driver maps specially.
pub(crate) mod status {
    pub(crate) const INVALID_OPCODE: u16 = 0x01;
    pub(crate) const INVALID_FIELD: u16 = 0x02;
    pub(crate) const ABORT_REQUESTED: u16 = 0x07;
    pub(crate) const CAPACITY_EXCEEDED: u16 = 0x81;
    pub(crate) const SCT_GENERIC: u16 = 0;
    pub(crate) const SCT_MEDIA: u16 = 2;
}

/// Reads a little-endian integer out of an identify page.
pub(crate) fn le_u16(page: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([page[at], page[at + 1]])
}

pub(crate) fn le_u32(page: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]])
}

pub(crate) fn le_u64(page: &[u8], at: usize) -> u64 {
    u64::from(le_u32(page, at)) | (u64::from(le_u32(page, at + 4)) << 32)
}

/// What the driver needs from Identify Controller.
#[derive(Clone, Debug)]
pub(crate) struct IdCtrl {
    pub(crate) serial: [u8; 20],
    pub(crate) model: [u8; 40],
    pub(crate) firmware: [u8; 8],
    /// Maximum data transfer size as a power of two of the minimum page
    /// size; 0 means no limit.
    pub(crate) mdts: u8,
    pub(crate) sqes: u8,
    pub(crate) cqes: u8,
    pub(crate) nn: u32,
    pub(crate) oncs: u16,
    pub(crate) vwc: u8,
    pub(crate) sgls: u32,
}

impl IdCtrl {
    /// Parses an identify controller page (4096 bytes).
    pub(crate) fn parse(page: &[u8; 4096]) -> Self {
        let mut serial = [0u8; 20];
        let mut model = [0u8; 40];
        let mut firmware = [0u8; 8];
        serial.copy_from_slice(&page[4..24]);
        model.copy_from_slice(&page[24..64]);
        firmware.copy_from_slice(&page[64..72]);
        Self {
            serial,
            model,
            firmware,
            mdts: page[77],
            sqes: page[512],
            cqes: page[513],
            nn: le_u32(page, 516),
            oncs: le_u16(page, 520),
            vwc: page[525],
            sgls: le_u32(page, 536),
        }
    }

    pub(crate) fn has_write_zeroes(&self) -> bool {
        self.oncs & (1 << 3) != 0
    }

    pub(crate) fn has_dsm(&self) -> bool {
        self.oncs & (1 << 2) != 0
    }

    /// Whether the controller takes SGLs for NVM command data (SGLS 1:0).
    pub(crate) fn has_sgls(&self) -> bool {
        self.sgls & 0x3 != 0
    }

    pub(crate) fn has_volatile_cache(&self) -> bool {
        self.vwc & 1 != 0
    }
}

/// Trims the space padding of an identify string.
pub(crate) fn trimmed(field: &[u8]) -> &str {
    let end = field
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    core::str::from_utf8(&field[..end]).unwrap_or("?")
}

/// What the driver needs from Identify Namespace.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdNs {
    /// Size in logical blocks.
    pub(crate) nsze: u64,
    /// Logical block size as a shift.
    pub(crate) lba_shift: u32,
    /// Metadata bytes per block of the formatted LBA format.
    pub(crate) metadata: u16,
}

impl IdNs {
    /// Parses an identify namespace page (4096 bytes).
    pub(crate) fn parse(page: &[u8; 4096]) -> Self {
        let nlbaf = u32::from(page[25]);
        let flbas = u32::from(page[26]);
        // The format index is bits 3:0 (and 6:5 for more than 16 formats).
        let index = ((flbas & 0xf) | ((flbas >> 1) & 0x30)).min(nlbaf).min(63) as usize;
        let lbaf = le_u32(page, 128 + 4 * index);
        Self {
            nsze: le_u64(page, 0),
            lba_shift: (lbaf >> 16) & 0xff,
            metadata: lbaf as u16,
        }
    }
}
