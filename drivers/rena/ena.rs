// SPDX-License-Identifier: GPL-2.0

//! ENA device interface: registers, admin commands, descriptor layouts.
//! (Our own description; see the shared ENA device interface notes.)

/// BAR0 registers.
pub(crate) mod reg {
    pub(crate) const VERSION: usize = 0x00;
    pub(crate) const CONTROLLER_VERSION: usize = 0x04;
    pub(crate) const CAPS: usize = 0x08;
    pub(crate) const AQ_BASE_LO: usize = 0x10;
    pub(crate) const AQ_BASE_HI: usize = 0x14;
    pub(crate) const AQ_CAPS: usize = 0x18;
    pub(crate) const ACQ_BASE_LO: usize = 0x20;
    pub(crate) const ACQ_BASE_HI: usize = 0x24;
    pub(crate) const ACQ_CAPS: usize = 0x28;
    pub(crate) const AQ_DB: usize = 0x2c;
    pub(crate) const AENQ_CAPS: usize = 0x34;
    pub(crate) const AENQ_BASE_LO: usize = 0x38;
    pub(crate) const AENQ_BASE_HI: usize = 0x3c;
    pub(crate) const AENQ_HEAD_DB: usize = 0x40;
    pub(crate) const INTR_MASK: usize = 0x4c;
    pub(crate) const DEV_CTL: usize = 0x54;
    pub(crate) const DEV_STS: usize = 0x58;
    pub(crate) const MMIO_REG_READ: usize = 0x5c;
    pub(crate) const MMIO_RESP_LO: usize = 0x60;
    pub(crate) const MMIO_RESP_HI: usize = 0x64;
    /// Size of the fixed register block.
    pub(crate) const SIZE: usize = 0x6c;

    pub(crate) const DEV_STS_READY: u32 = 1 << 0;
    pub(crate) const DEV_STS_RESET_IN_PROGRESS: u32 = 1 << 3;
    pub(crate) const DEV_CTL_RESET: u32 = 1 << 0;
}

/// Admin opcodes.
pub(crate) mod op {
    pub(crate) const CREATE_SQ: u8 = 1;
    pub(crate) const DESTROY_SQ: u8 = 2;
    pub(crate) const CREATE_CQ: u8 = 3;
    pub(crate) const DESTROY_CQ: u8 = 4;
    pub(crate) const GET_FEATURE: u8 = 8;
    pub(crate) const SET_FEATURE: u8 = 9;
}

/// Feature identifiers.
pub(crate) mod feat {
    pub(crate) const DEVICE_ATTRIBUTES: u8 = 1;
    pub(crate) const MAX_QUEUES_EXT: u8 = 7;
    pub(crate) const RSS_HASH_FUNCTION: u8 = 10;
    pub(crate) const STATELESS_OFFLOAD: u8 = 11;
    pub(crate) const RSS_IND_TABLE: u8 = 12;
    pub(crate) const MTU: u8 = 14;
    pub(crate) const INTR_MODERATION: u8 = 20;
    pub(crate) const AENQ_CONFIG: u8 = 26;
}

/// AENQ groups.
pub(crate) mod aenq {
    pub(crate) const LINK_CHANGE: u16 = 0;
    pub(crate) const NOTIFICATION: u16 = 3;
    pub(crate) const KEEP_ALIVE: u16 = 4;
    pub(crate) const DEPTH: usize = 16;
}

/// Admin queue depth and entry size.
pub(crate) const ADMIN_DEPTH: usize = 32;
pub(crate) const ENTRY_WORDS: usize = 16;

/// Admin status codes.
pub(crate) const STATUS_UNSUPPORTED: u8 = 3;

/// Reset reasons (DEV_CTL bits 31:28).
pub(crate) mod reason {
    pub(crate) const NORMAL: u32 = 0;
    pub(crate) const KEEP_ALIVE_TO: u32 = 1;
    pub(crate) const ADMIN_TO: u32 = 2;
    pub(crate) const MISS_TX_CMPL: u32 = 3;
    pub(crate) const INV_RX_REQ_ID: u32 = 4;
    pub(crate) const INV_TX_REQ_ID: u32 = 5;
    pub(crate) const TOO_MANY_RX_DESCS: u32 = 6;
    pub(crate) const NETDEV_WD: u32 = 10;
    pub(crate) const SHUTDOWN: u32 = 11;
    pub(crate) const MISS_INTERRUPT: u32 = 14;
    /// C resets with ENA_REGS_RESET_RX_DESCRIPTOR_MALFORMED (16), which its
    /// 4-bit DEV_CTL field turns into 0: the device sees the same.
    pub(crate) const RX_MALFORMED: u32 = 0;
}

/// A 64-byte admin command being built.
#[derive(Clone, Copy)]
pub(crate) struct Cmd(pub(crate) [u8; 64]);

impl Cmd {
    pub(crate) fn new(opcode: u8) -> Self {
        let mut c = Self([0; 64]);
        c.0[2] = opcode;
        c
    }

    pub(crate) fn u8(mut self, off: usize, v: u8) -> Self {
        self.0[off] = v;
        self
    }

    pub(crate) fn u16(mut self, off: usize, v: u16) -> Self {
        self.0[off..off + 2].copy_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u32(mut self, off: usize, v: u32) -> Self {
        self.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
        self
    }

    /// A GET/SET_FEATURE command for `id`.
    pub(crate) fn feature(opcode: u8, id: u8, version: u8) -> Self {
        Self::new(opcode).u8(17, id).u8(18, version)
    }

    /// Points the command at a control buffer.
    pub(crate) fn ctrl_buf(self, addr: u64, len: u32) -> Self {
        let flags = self.0[3] | (1 << 2);
        self.u8(3, flags)
            .u32(4, len)
            .u32(8, addr as u32)
            .u16(12, (addr >> 32) as u16)
    }

    pub(crate) fn opcode(&self) -> u8 {
        self.0[2]
    }

    pub(crate) fn words(&self) -> [u32; ENTRY_WORDS] {
        let mut w = [0u32; ENTRY_WORDS];
        for (i, chunk) in self.0.chunks_exact(4).enumerate() {
            w[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        w
    }
}

/// A 64-byte admin completion or AENQ entry, read from the device.
#[derive(Clone, Copy)]
pub(crate) struct Resp(pub(crate) [u32; ENTRY_WORDS]);

impl Resp {
    pub(crate) fn u8(&self, off: usize) -> u8 {
        (self.0[off / 4] >> ((off % 4) * 8)) as u8
    }

    pub(crate) fn u16(&self, off: usize) -> u16 {
        u16::from(self.u8(off)) | (u16::from(self.u8(off + 1)) << 8)
    }

    pub(crate) fn u32(&self, off: usize) -> u32 {
        self.0[off / 4]
    }
}

/// TX descriptor word 0 bits.
pub(crate) mod tx {
    pub(crate) const PHASE: u32 = 1 << 24;
    pub(crate) const FIRST: u32 = 1 << 26;
    pub(crate) const LAST: u32 = 1 << 27;
    pub(crate) const COMP_REQ: u32 = 1 << 28;
    pub(crate) const META_DESC: u32 = 1 << 23;
    pub(crate) const META_EXT_VALID: u32 = 1 << 14;
    pub(crate) const META_TYPE_EXT: u32 = 1 << 20;
    pub(crate) const META_STORE: u32 = 1 << 21;
    // Word 1.
    pub(crate) const L3_IPV4: u32 = 8;
    pub(crate) const L3_IPV6: u32 = 11;
    pub(crate) const L4_TCP: u32 = 12;
    pub(crate) const L4_UDP: u32 = 13;
    pub(crate) const TSO_EN: u32 = 1 << 7;
    pub(crate) const L3_CSUM_EN: u32 = 1 << 13;
    pub(crate) const L4_CSUM_EN: u32 = 1 << 14;
    pub(crate) const L4_CSUM_PARTIAL: u32 = 1 << 17;
}

/// RX completion status bits.
pub(crate) mod rx {
    pub(crate) const L3_IPV4: u32 = 8;
    pub(crate) const L4_TCP: u32 = 12;
    pub(crate) const L4_UDP: u32 = 13;
    pub(crate) const L3_CSUM_ERR: u32 = 1 << 13;
    pub(crate) const L4_CSUM_ERR: u32 = 1 << 14;
    pub(crate) const IPV4_FRAG: u32 = 1 << 15;
    pub(crate) const L4_CSUM_CHECKED: u32 = 1 << 16;
    pub(crate) const FIRST: u32 = 1 << 26;
    pub(crate) const LAST: u32 = 1 << 27;
}
