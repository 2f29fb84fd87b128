//! Host-side tests of the device with fake guest memory: a miniature driver
//! performs the same register/admin/queue steps as the Linux C driver.

use crate::ena::*;
use crate::pkt;
use std::time::{Duration, Instant};

const RAM: u64 = 0x10000;
const AQ: u64 = 0x10000;
const ACQ: u64 = 0x11000;
const AENQ: u64 = 0x12000;
const RESP: u64 = 0x13000;
const CTRL: u64 = 0x14000;
const TX_SQ: u64 = 0x20000;
const TX_CQ: u64 = 0x24000;
const RX_SQ: u64 = 0x28000;
const RX_CQ: u64 = 0x2c000;
const BUFS: u64 = 0x40000;
const DEPTH: u16 = 256;

fn cfg(name: &str, queues: u16) -> Config {
    Config {
        name: name.into(),
        mac: [6, 0xed, 0xa0, 0, 0, 1],
        queues,
        readless: false,
        moderation: false,
        max_mtu: 9000,
    }
}

struct Drv {
    e: Ena,
    aq_tail: u16,
    acq_head: u16,
    cmd_id: u16,
}

fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

impl Drv {
    fn new(c: Config) -> Drv {
        let mut e = Ena::new(c);
        e.mem.map_heap(RAM, 0x400000).expect("fake RAM");
        Drv {
            e,
            aq_tail: 0,
            acq_head: 0,
            cmd_id: 0,
        }
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.e.mem.read(addr, &mut b).expect("test read");
        b
    }

    fn write(&self, addr: u64, b: &[u8]) {
        self.e.mem.write(addr, b).expect("test write");
    }

    fn init_admin(&mut self) {
        self.e.mmio_write(REG_AQ_BASE_LO, AQ as u32);
        self.e.mmio_write(REG_AQ_BASE_HI, 0);
        self.e.mmio_write(REG_ACQ_BASE_LO, ACQ as u32);
        self.e.mmio_write(REG_ACQ_BASE_HI, 0);
        self.e.mmio_write(REG_AQ_CAPS, 0x0040_0020);
        self.e.mmio_write(REG_ACQ_CAPS, 0x0040_0020);
        self.e.mmio_write(REG_AENQ_BASE_LO, AENQ as u32);
        self.e.mmio_write(REG_AENQ_BASE_HI, 0);
        self.e.mmio_write(REG_AENQ_CAPS, 0x0040_0010);
        self.e.mmio_write(REG_INTR_MASK, 1);
    }

    /// Submit one admin command, return (status, completion entry).
    fn admin(&mut self, mut cmd: [u8; 64]) -> (u8, [u8; 64]) {
        let id = self.cmd_id;
        self.cmd_id = (self.cmd_id + 1) % 32;
        put16(&mut cmd, 0, id);
        cmd[3] = if (self.aq_tail / 32) & 1 == 0 { 1 } else { 0 };
        self.write(AQ + (self.aq_tail % 32) as u64 * 64, &cmd);
        self.aq_tail = self.aq_tail.wrapping_add(1);
        self.e.mmio_write(REG_AQ_DB, self.aq_tail as u32);
        let slot = ACQ + (self.acq_head % 32) as u64 * 64;
        let c = self.read(slot, 64);
        let want = if (self.acq_head / 32) & 1 == 0 { 1 } else { 0 };
        assert_eq!(
            c[3] & 1,
            want,
            "ACQ entry {} has the wrong phase",
            self.acq_head
        );
        assert_eq!(le16(&c, 0) & 0xfff, id, "completion echoes the command id");
        self.acq_head = self.acq_head.wrapping_add(1);
        let mut out = [0u8; 64];
        out.copy_from_slice(&c);
        (c[2], out)
    }

    fn get_feature(&mut self, id: u8, buf: Option<(u64, u32)>) -> (u8, [u8; 64]) {
        let mut c = [0u8; 64];
        c[2] = 8;
        c[17] = id;
        if let Some((a, l)) = buf {
            put32(&mut c, 4, l);
            put32(&mut c, 8, a as u32);
            c[3] |= 4;
        }
        self.admin(c)
    }

    fn set_feature(&mut self, id: u8, payload: &[u8], buf: Option<(u64, u32)>) -> u8 {
        let mut c = [0u8; 64];
        c[2] = 9;
        c[17] = id;
        c[20..20 + payload.len()].copy_from_slice(payload);
        if let Some((a, l)) = buf {
            put32(&mut c, 4, l);
            put32(&mut c, 8, a as u32);
        }
        self.admin(c).0
    }

    /// CREATE_CQ + CREATE_SQ for one direction of pair `i`; returns
    /// (sq doorbell offset, unmask offset, cq entry bytes).
    fn create_pair_dir(&mut self, i: u16, rx: bool) -> (u64, u64) {
        let (sq, cq, words) = if rx {
            (RX_SQ, RX_CQ, 4u8)
        } else {
            (TX_SQ, TX_CQ, 2u8)
        };
        let sq = sq + i as u64 * 0x0010_0000;
        let cq = cq + i as u64 * 0x0010_0000;
        let mut c = [0u8; 64];
        c[2] = 3;
        c[4] = 1 << 5;
        c[5] = words;
        put16(&mut c, 6, DEPTH);
        put32(&mut c, 8, 1 + i as u32);
        put32(&mut c, 12, cq as u32);
        let (st, r) = self.admin(c);
        assert_eq!(st, 0, "CREATE_CQ");
        let cq_idx = le16(&r, 8);
        let unmask = le32(&r, 20) as u64;
        let mut c = [0u8; 64];
        c[2] = 1;
        c[4] = if rx { 2 << 5 } else { 1 << 5 };
        c[6] = 1;
        c[7] = 1;
        put16(&mut c, 8, cq_idx);
        put16(&mut c, 10, DEPTH);
        put32(&mut c, 12, sq as u32);
        let (st, r) = self.admin(c);
        assert_eq!(st, 0, "CREATE_SQ");
        (le32(&r, 12) as u64, unmask)
    }

    fn bring_up(&mut self) {
        self.init_admin();
        let (st, r) = self.get_feature(1, None);
        assert_eq!(st, 0);
        let feats = le32(&r, 16);
        for b in [1, 7, 11, 26] {
            assert!(
                feats & (1 << b) != 0,
                "feature {b} must be advertised ({feats:#x})"
            );
        }
        assert_eq!(self.set_feature(26, &[0, 0, 0, 0, 0x1f, 0, 0, 0], None), 0);
        self.e.mmio_write(REG_INTR_MASK, 0);
        self.e.mmio_write(REG_AENQ_HEAD_DB, 16);
    }
}

#[test]
fn reset_handshake_and_registers() {
    let mut d = Drv::new(cfg("t", 1));
    assert_eq!(d.e.mmio_read(REG_DEV_STS) & 1, 1, "ready before reset");
    let caps = d.e.mmio_read(REG_CAPS);
    assert!((caps >> 1) & 0x1f != 0, "reset timeout must be non-zero");
    assert_eq!((caps >> 8) & 0xff, 48);
    assert!(d.e.mmio_read(REG_CTRL_VERSION) & 0xff_ffff >= 1);
    d.init_admin();
    d.e.mmio_write(REG_DEV_CTL, 1 | (3 << 28));
    assert_eq!(
        d.e.mmio_read(REG_DEV_STS) & 0x9,
        0x9,
        "reset in progress + ready"
    );
    assert_eq!(d.e.last_reset_reason, 3);
    d.e.mmio_write(REG_DEV_CTL, 0);
    assert_eq!(d.e.mmio_read(REG_DEV_STS) & 0x9, 0x1, "reset finished");
    assert_eq!(
        d.e.mmio_read(REG_AQ_BASE_LO),
        0,
        "reset forgets the admin queue"
    );
}

#[test]
fn readless_register_read() {
    let mut c = cfg("t", 1);
    c.readless = true;
    let mut d = Drv::new(c);
    assert_eq!(d.e.pci_revision() & 1, 0);
    d.write(RESP, &[0xff; 8]);
    d.e.mmio_write(REG_MMIO_RESP_LO, RESP as u32);
    d.e.mmio_write(REG_MMIO_RESP_HI, 0);
    d.e.mmio_write(REG_MMIO_REG_READ, ((REG_CAPS as u32) << 16) | 0x1234);
    let r = d.read(RESP, 8);
    assert_eq!(le16(&r, 0), 0x1234, "req_id echoed");
    assert_eq!(le16(&r, 2) as u64, REG_CAPS);
    assert_eq!(le32(&r, 4), d.e.mmio_read(REG_CAPS));
    // Counted apart: one read-less request, no load from BAR0 yet.
    assert_eq!(
        (d.e.stats.reg_reads_direct, d.e.stats.reg_reads_readless),
        (0, 1)
    );
    assert_eq!(d.e.bar_read(REG_CAPS), le32(&r, 4));
    assert_eq!(
        (d.e.stats.reg_reads_direct, d.e.stats.reg_reads_readless),
        (1, 1)
    );
    assert!(
        d.e.summary()
            .contains("register reads: direct 1, read-less 1")
    );
    // No response buffer: nothing is written and nothing breaks.
    d.e.mmio_write(REG_MMIO_RESP_LO, 0);
    d.e.mmio_write(REG_MMIO_REG_READ, 0x0008_0001);
    assert!(d.e.stats.guest_errors >= 1);
}

#[test]
fn admin_features_and_acq_phase_wrap() {
    let mut d = Drv::new(cfg("t", 4));
    d.init_admin();
    let (st, r) = d.get_feature(7, None);
    assert_eq!(st, 0);
    assert_eq!(r[8], 1, "MAX_QUEUES_EXT version 1");
    assert_eq!(le32(&r, 12), 4, "max TX SQs");
    let hdr = le32(&r, 44);
    assert!((1..=255).contains(&hdr), "max_tx_header_size {hdr}");
    assert_eq!(d.get_feature(99, None).0, ST_UNSUPPORTED);
    assert_eq!(
        d.get_feature(4, None).0,
        ST_UNSUPPORTED,
        "LLQ is not offered"
    );
    // RSS: table limits, key, hash-input block.
    let (st, r) = d.get_feature(12, None);
    assert_eq!(st, 0);
    assert!(le16(&r, 8) <= 7 && le16(&r, 10) >= 7);
    assert_eq!(d.get_feature(10, Some((CTRL, 48))).0, 0);
    assert_eq!(le32(&d.read(CTRL, 4), 0), 10, "key_parts");
    assert_eq!(d.get_feature(18, Some((CTRL, 256))).0, 0);
    assert_eq!(
        le16(&d.read(CTRL, 4), 0),
        0x3c,
        "TCP4 supports L3+L4 fields"
    );
    // MTU limits.
    assert_eq!(d.set_feature(14, &9000u32.to_le_bytes(), None), 0);
    assert_eq!(d.set_feature(14, &9001u32.to_le_bytes(), None), ST_ILLEGAL);
    assert_eq!(d.set_feature(14, &10u32.to_le_bytes(), None), ST_ILLEGAL);
    // 70 more commands: the ACQ wraps twice and the phase flips (checked in admin()).
    for _ in 0..70 {
        assert_eq!(d.get_feature(26, None).0, 0);
    }
    // A doorbell far past the head is refused, and the queue keeps working.
    let before = d.e.stats.guest_errors;
    d.e.mmio_write(REG_AQ_DB, d.aq_tail.wrapping_add(1000) as u32);
    assert!(d.e.stats.guest_errors > before);
}

#[test]
fn aenq_link_and_keepalive_respect_head() {
    let mut d = Drv::new(cfg("t", 1));
    d.bring_up();
    let e0 = d.read(AENQ, 64);
    assert_eq!(le16(&e0, 0), AENQ_LINK_CHANGE);
    assert_eq!(e0[4] & 1, 1, "phase 1 on the first pass");
    assert_eq!(le32(&e0, 16) & 1, 1, "link up");
    let fired = d.e.vectors[0].fired;
    assert!(fired >= 1, "AENQ entries raise vector 0");
    // 20 keep-alives: only 15 more fit until the driver moves the head.
    let mut t = Instant::now();
    for _ in 0..20 {
        t += Duration::from_millis(1001);
        d.e.tick(t);
    }
    for k in 1..16u64 {
        let e = d.read(AENQ + k * 64, 64);
        assert_eq!(le16(&e, 0), AENQ_KEEP_ALIVE, "entry {k}");
        assert_eq!(e[4] & 1, 1);
    }
    assert_eq!(
        d.e.mmio_read(REG_AENQ_TAIL),
        16,
        "device stopped at the producer limit"
    );
    d.e.mmio_write(REG_AENQ_HEAD_DB, 32);
    let e = d.read(AENQ, 64);
    assert_eq!(e[4] & 1, 0, "second pass has phase 0");
    assert_eq!(le16(&e, 0), AENQ_KEEP_ALIVE);
    // Stopping keep-alives (fault) stops them.
    d.e.faults.stop_keepalive = true;
    let tail = d.e.mmio_read(REG_AENQ_TAIL);
    d.e.tick(t + Duration::from_secs(5));
    assert_eq!(d.e.mmio_read(REG_AENQ_TAIL), tail);
}

fn tx_desc(
    len: u16,
    addr: u64,
    first: bool,
    last: bool,
    req_id: u16,
    phase: u8,
    ctrl: u32,
) -> [u8; 16] {
    let mut d = [0u8; 16];
    let mut w0 = len as u32 | ((phase as u32) << 24);
    if first {
        w0 |= 1 << 26 | 1 << 28 | (((req_id >> 10) as u32) & 0x3f) << 16;
    }
    if last {
        w0 |= 1 << 27;
    }
    put32(&mut d, 0, w0);
    let w1 = if first {
        ctrl | ((req_id as u32) & 0x3ff) << 22
    } else {
        0
    };
    put32(&mut d, 4, w1);
    put32(&mut d, 8, addr as u32);
    put32(&mut d, 12, (addr >> 32) as u32 & 0xffff);
    d
}

fn rx_desc(len: u16, addr: u64, req_id: u16, phase: u8) -> [u8; 16] {
    let mut d = [0u8; 16];
    put16(&mut d, 0, len);
    d[3] = 0x1c | phase;
    put16(&mut d, 4, req_id);
    put32(&mut d, 8, addr as u32);
    d
}

struct Path {
    a: Drv,
    b: Drv,
    a_tx_db: u64,
    a_unmask: u64,
    b_rx_db: u64,
    tx_tail: u16,
    tx_cq_head: u16,
    rx_tail: u16,
    rx_cq_head: u16,
}

impl Path {
    fn new() -> Path {
        let mut a = Drv::new(cfg("a", 1));
        let mut b = Drv::new(cfg("b", 1));
        a.bring_up();
        b.bring_up();
        let (a_tx_db, a_unmask) = a.create_pair_dir(0, false);
        a.create_pair_dir(0, true);
        b.create_pair_dir(0, false);
        let (b_rx_db, b_unmask) = b.create_pair_dir(0, true);
        a.e.mmio_write(a_unmask, 1 << 30);
        b.e.mmio_write(b_unmask, 1 << 30);
        Path {
            a,
            b,
            a_tx_db,
            a_unmask,
            b_rx_db,
            tx_tail: 0,
            tx_cq_head: 0,
            rx_tail: 0,
            rx_cq_head: 0,
        }
    }

    fn phase(counter: u16) -> u8 {
        if (counter / DEPTH) & 1 == 0 { 1 } else { 0 }
    }

    fn post_rx(&mut self, n: u16, len: u16) {
        for _ in 0..n {
            let slot = self.rx_tail % DEPTH;
            let d = rx_desc(
                len,
                BUFS + slot as u64 * 0x1000 % 0x80000,
                slot,
                Self::phase(self.rx_tail),
            );
            self.b.write(RX_SQ + slot as u64 * 16, &d);
            self.rx_tail = self.rx_tail.wrapping_add(1);
        }
        self.b.e.mmio_write(self.b_rx_db, self.rx_tail as u32);
    }

    /// Transmit `frame` split in two buffers; returns the TX completion req_id.
    fn send(&mut self, frame: &[u8], ctrl: u32) -> Option<u16> {
        let half = frame.len() / 2;
        let req = self.tx_tail % DEPTH;
        let buf = BUFS + 0x80000 + (req as u64 % 16) * 0x4000;
        self.a.write(buf, frame);
        for (k, (off, len)) in [(0, half), (half, frame.len() - half)].iter().enumerate() {
            let slot = self.tx_tail % DEPTH;
            let d = tx_desc(
                *len as u16,
                buf + *off as u64,
                k == 0,
                k == 1,
                req,
                Self::phase(self.tx_tail),
                ctrl,
            );
            self.a.write(TX_SQ + slot as u64 * 16, &d);
            self.tx_tail = self.tx_tail.wrapping_add(1);
        }
        self.a.e.mmio_write(self.a_tx_db, self.tx_tail as u32);
        for f in std::mem::take(&mut self.a.e.tx_out) {
            self.b.e.receive(f);
        }
        let c = self.a.read(TX_CQ + (self.tx_cq_head % DEPTH) as u64 * 8, 8);
        if c[3] & 1 != Self::phase(self.tx_cq_head) {
            return None;
        }
        self.tx_cq_head = self.tx_cq_head.wrapping_add(1);
        Some(le16(&c, 0))
    }

    /// Next RX completion: (status, len, req_id, hash) if valid.
    fn rx_comp(&mut self) -> Option<(u32, u16, u16, u32)> {
        let c = self
            .b
            .read(RX_CQ + (self.rx_cq_head % DEPTH) as u64 * 16, 16);
        let st = le32(&c, 0);
        if (st >> 24) & 1 != Self::phase(self.rx_cq_head) as u32 {
            return None;
        }
        self.rx_cq_head = self.rx_cq_head.wrapping_add(1);
        Some((st, le16(&c, 4), le16(&c, 6), le32(&c, 8)))
    }
}

fn udp_frame(payload_len: usize, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8];
    f[0..6].copy_from_slice(&[6, 0xed, 0xa0, 0, 0, 1]);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((28 + payload_len) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    let hc = !pkt::csum_fold(pkt::csum_add(0, &f[14..34]));
    f[24..26].copy_from_slice(&hc.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&5001u16.to_be_bytes());
    f[38..40].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    f.extend((0..payload_len).map(|i| (i * 7) as u8));
    f
}

#[test]
fn tx_to_rx_with_checksum_offload_and_phase_wrap() {
    let mut p = Path::new();
    p.post_rx(DEPTH - 1, 2048);
    // 600 packets through 256-entry rings: every ring wraps at least twice.
    let mut posted = DEPTH - 1;
    for n in 0..600u32 {
        let mut f = udp_frame(100 + (n as usize % 300), 1000 + n as u16);
        // Linux CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
        let mut full = f.clone();
        assert!(pkt::fill_l4_csum(&mut full));
        let pl = pkt::parse(&f);
        let mut ps = pkt::csum_add(0, &f[26..34]);
        ps += 17 + pl.l4_len as u32;
        let ps = pkt::csum_fold(ps);
        f[40..42].copy_from_slice(&ps.to_be_bytes());
        let ctrl = 8 | 13 << 8 | 1 << 14 | 1 << 17;
        let rid = p
            .send(&f, ctrl)
            .expect("TX completion with the right phase");
        assert_eq!(
            rid,
            (p.tx_tail.wrapping_sub(2)) % DEPTH,
            "TX completion req_id"
        );
        let (st, len, req, _hash) = p.rx_comp().expect("RX completion with the right phase");
        assert_eq!(len as usize, full.len(), "RX length");
        assert!(st & (1 << 26) != 0 && st & (1 << 27) != 0, "first and last");
        assert_eq!(st & 0x1f, 8, "l3 proto IPv4");
        assert_eq!((st >> 8) & 0x1f, 13, "l4 proto UDP");
        assert!(st & (1 << 16) != 0, "l4 checksum checked");
        assert_eq!(
            st & (3 << 13),
            0,
            "no checksum errors: the device completed the checksum"
        );
        let data = p.b.read(BUFS + req as u64 * 0x1000 % 0x80000, full.len());
        assert_eq!(
            data, full,
            "frame {n} arrives intact with the offloaded checksum"
        );
        p.post_rx(1, 2048);
        posted += 1;
    }
    assert!(posted > 2 * DEPTH);
    assert_eq!(p.b.e.stats.rx_pkts, 600);
    assert_eq!(p.a.e.stats.tx_pkts, 600);
    // The offload counters the guest tests read through `status`.
    assert_eq!(
        (p.a.e.stats.tx_csum, p.a.e.stats.tx_csum_partial),
        (600, 600)
    );
    assert_eq!(
        (p.b.e.stats.rx_csum_checked, p.b.e.stats.rx_csum_bad),
        (600, 0)
    );
    assert!(
        p.a.e
            .summary()
            .contains("offload: tx_csum 600 (partial 600), tso 0 pkts -> 0 segs"),
        "{}",
        p.a.e.summary()
    );
    assert!(p.b.e.summary().contains("rx_csum checked 600 bad 0"));
    // Without offload and with a wrong checksum: sent as is, counted bad.
    let mut f = udp_frame(64, 7);
    f[40..42].copy_from_slice(&0x1234u16.to_be_bytes());
    p.send(&f, 8 | 13 << 8).expect("TX completion");
    p.rx_comp().expect("RX completion");
    assert_eq!(p.a.e.stats.tx_csum, 600, "no offload asked");
    assert_eq!(
        (p.b.e.stats.rx_csum_checked, p.b.e.stats.rx_csum_bad),
        (601, 1)
    );
}

#[test]
fn multi_buffer_rx_and_backlog() {
    let mut p = Path::new();
    // Nothing posted: the frame waits in the backlog, then lands when buffers arrive.
    let f = udp_frame(3000, 7);
    p.send(&f, 0)
        .expect("TX completes even while the peer has no buffers");
    assert!(p.rx_comp().is_none());
    p.post_rx(4, 1024);
    let mut total = 0;
    let mut n = 0;
    loop {
        let (st, len, _, _) = p.rx_comp().expect("multi-buffer completions");
        assert_eq!(
            st & (1 << 26) != 0,
            n == 0,
            "first only on the first buffer"
        );
        total += len as usize;
        n += 1;
        if st & (1 << 27) != 0 {
            break;
        }
    }
    assert_eq!(
        (n, total),
        (3, f.len()),
        "3 buffers of 1024 carry {} bytes",
        f.len()
    );
    assert_eq!(
        p.b.e.stats.rx_jumbo,
        1,
        "a {}-byte frame is a jumbo one",
        f.len()
    );
    assert!(p.b.e.summary().contains("rx frames over 1514 B: 1\n"));
}

#[test]
fn malformed_guest_input_is_survived() {
    let mut p = Path::new();
    p.post_rx(8, 2048);
    // A TX buffer outside guest RAM: dropped, counted, still completed.
    let slot = p.tx_tail % DEPTH;
    let d = tx_desc(
        100,
        0xdead_0000_0000,
        true,
        true,
        slot,
        Path::phase(p.tx_tail),
        0,
    );
    p.a.write(TX_SQ + slot as u64 * 16, &d);
    p.tx_tail += 1;
    p.a.e.mmio_write(p.a_tx_db, p.tx_tail as u32);
    assert_eq!(p.a.e.stats.tx_drops, 1);
    assert!(p.a.e.stats.dma_errors >= 1);
    assert!(p.a.e.tx_out.is_empty());
    let c = p.a.read(TX_CQ, 8);
    assert_eq!(c[3] & 1, 1, "the bad packet is still completed");
    p.tx_cq_head += 1;
    // Doorbell beyond the ring: refused.
    let errs = p.a.e.stats.guest_errors;
    p.a.e.mmio_write(p.a_tx_db, (p.tx_tail + 5000) as u32);
    assert!(p.a.e.stats.guest_errors > errs);
    // Doorbells of absent queues, odd BAR0 offsets, bad unmask vectors.
    p.a.e.mmio_write(SQ_DB_BASE + 8 * 31, 3);
    p.a.e.mmio_write(0x0ffc, 1);
    p.a.e.mmio_write(UNMASK_BASE + 4 * 500, 1 << 30);
    // Queue creation with a ring outside RAM or absurd sizes.
    let mut c = [0u8; 64];
    c[2] = 3;
    c[5] = 2;
    put16(&mut c, 6, 256);
    put32(&mut c, 8, 1);
    put32(&mut c, 12, 0xfff0_0000);
    assert_eq!(p.a.admin(c).0, ST_ILLEGAL);
    put32(&mut c, 12, TX_CQ as u32);
    put16(&mut c, 6, 300);
    assert_eq!(p.a.admin(c).0, ST_ILLEGAL, "non-power-of-two depth");
    let mut c = [0u8; 64];
    c[2] = 0x7f;
    assert_eq!(
        p.a.admin(c).0,
        ST_UNSUPPORTED,
        "unknown opcode answered, not ignored"
    );
    // And traffic still flows.
    let f = udp_frame(64, 9);
    assert!(p.send(&f, 0).is_some());
    assert!(
        p.rx_comp().is_some(),
        "the device keeps serving after all that"
    );
}

#[test]
fn fault_injection() {
    let mut p = Path::new();
    p.post_rx(16, 2048);
    let f = udp_frame(64, 1);
    p.a.e.faults.drop_tx_comp = 1;
    assert!(p.send(&f, 0).is_none(), "TX completion withheld");
    assert!(p.rx_comp().is_some(), "the frame itself went out");
    p.a.e.faults.corrupt_tx_req_id = 1;
    p.tx_cq_head = 0;
    // The dropped completion's slot is now used by the next packet.
    let rid = p.send(&f, 0).expect("completion present");
    assert!(rid >= DEPTH, "corrupted req_id {rid} is out of range");
    p.rx_comp();
    p.b.e.faults.bad_rx_len = 1;
    p.send(&f, 0);
    let (_, len, _, _) = p.rx_comp().expect("rx completion");
    assert!(len as usize > 2048, "out-of-range RX length injected");
    // A TX-only stale phase leaves the receiver's RX completions alone.
    p.b.e.faults.stale_phase = 1;
    p.b.e.faults.stale_phase_tx = Some(true);
    p.send(&f, 0);
    assert!(p.rx_comp().is_some(), "TX-only stale phase: RX unaffected");
    assert_eq!(
        p.b.e.faults.stale_phase, 1,
        "still armed for a TX completion"
    );
    p.b.e.faults.stale_phase_tx = None;
    p.send(&f, 0);
    assert!(
        p.rx_comp().is_none(),
        "stale phase: the driver cannot see the completion"
    );
    p.a.e.raise_fatal();
    assert!(
        p.a.e.mmio_read(REG_DEV_STS) & (1 << 5) != 0,
        "fatal error status"
    );
    // Delayed admin completions arrive only after the delay, via the timer.
    p.a.e.faults.admin_delay_ms = 5;
    p.a.e.faults.admin_delay_count = 1;
    let mut c = [0u8; 64];
    c[2] = 8;
    c[17] = 26;
    put16(&mut c, 0, 31);
    let tail = p.a.aq_tail;
    c[3] = 1;
    p.a.write(AQ + (tail % 32) as u64 * 64, &c);
    p.a.e.mmio_write(REG_AQ_DB, tail as u32 + 1);
    let slot = ACQ + (p.a.acq_head % 32) as u64 * 64;
    let before = p.a.read(slot, 64);
    p.a.e.tick(Instant::now());
    assert_eq!(p.a.read(slot, 64), before, "not completed before the delay");
    p.a.e.tick(Instant::now() + Duration::from_millis(10));
    let after = p.a.read(slot, 64);
    assert_eq!(after[3] & 1, 1, "completed after the delay");
}

#[test]
fn interrupt_moderation_delays_and_automask() {
    let mut p = Path::new();
    p.a.e.cfg.moderation = true;
    p.post_rx(16, 2048);
    let f = udp_frame(64, 1);
    // Unmask with tx delay 50 µs: the completion does not fire at once.
    p.a.e.mmio_write(p.a_unmask, 1 << 30 | 50 << 15);
    let v = 1;
    let fired = p.a.e.vectors[v].fired;
    p.send(&f, 0).expect("completion");
    assert_eq!(p.a.e.vectors[v].fired, fired, "delayed by moderation");
    p.a.e.tick(Instant::now() + Duration::from_micros(60));
    assert_eq!(
        p.a.e.vectors[v].fired,
        fired + 1,
        "fired when the delay expired"
    );
    // Now masked: more completions do not fire until the driver unmasks.
    p.send(&f, 0).expect("completion");
    p.a.e.tick(Instant::now() + Duration::from_millis(1));
    assert_eq!(p.a.e.vectors[v].fired, fired + 1, "auto-masked");
    p.a.e.mmio_write(p.a_unmask, 1 << 30);
    assert_eq!(
        p.a.e.vectors[v].fired,
        fired + 2,
        "unmask with pending work fires (delay 0)"
    );
}

#[test]
fn rss_spreads_flows_by_indirection_table() {
    let mut a = Drv::new(cfg("a", 1));
    let mut b = Drv::new(cfg("b", 2));
    a.bring_up();
    b.bring_up();
    let mut dbs = Vec::new();
    for i in 0..2 {
        b.create_pair_dir(i, false);
        let (db, um) = b.create_pair_dir(i, true);
        b.e.mmio_write(um, 1 << 30);
        dbs.push(db);
    }
    // Table: even entries → RX SQ 0, odd → RX SQ 1.
    let mut t = vec![0u8; 512];
    for i in 0..128 {
        put16(&mut t, i * 4, (i % 2) as u16);
    }
    b.write(CTRL, &t);
    let mut pl = [0u8; 16];
    put16(&mut pl, 4, 7);
    assert_eq!(b.set_feature(12, &pl, Some((CTRL, 512))), 0);
    put16(&mut t, 0, 5);
    b.write(CTRL, &t);
    assert_eq!(
        b.set_feature(12, &pl, Some((CTRL, 512))),
        ST_ILLEGAL,
        "entry naming a missing queue"
    );
    for (i, db) in dbs.iter().enumerate() {
        for s in 0..32u16 {
            let d = rx_desc(2048, BUFS + (i as u64 * 32 + s as u64) * 0x800, s, 1);
            b.write(RX_SQ + i as u64 * 0x10_0000 + s as u64 * 16, &d);
        }
        b.e.mmio_write(*db, 32);
    }
    let key = {
        assert_eq!(b.get_feature(10, Some((CTRL, 48))).0, 0);
        let k = b.read(CTRL + 8, 40);
        let mut a = [0u8; 40];
        a.copy_from_slice(&k);
        a
    };
    let mut seen = [0usize; 2];
    let mut heads = [0u64; 2];
    for sport in 0..40u16 {
        let f = udp_frame(32, 2000 + sport);
        let mut input = Vec::new();
        let pp = pkt::parse(&f);
        pkt::hash_input(&f, &pp, 0x3c, &mut input);
        let h = pkt::toeplitz(&key, &input);
        let q = (h & 127) as usize % 2;
        assert!(b.e.receive(f));
        let c = b.read(RX_CQ + q as u64 * 0x10_0000 + heads[q] * 16, 16);
        assert_eq!(
            (le32(&c, 0) >> 24) & 1,
            1,
            "flow {sport} on queue {q} per table"
        );
        assert_eq!(le32(&c, 8), h, "hash reported in the completion");
        heads[q] += 1;
        seen[q] += 1;
    }
    assert!(
        seen[0] > 5 && seen[1] > 5,
        "40 flows spread over both queues: {seen:?}"
    );
    let _ = a;
}

#[test]
fn tso_through_meta_descriptor() {
    let mut p = Path::new();
    p.post_rx(32, 2048);
    // A 5000-byte TCP payload with a meta descriptor carrying MSS 1000.
    let mut f = vec![0u8; 14 + 20 + 20];
    f[12] = 0x08;
    f[14] = 0x45;
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[46] = 5 << 4;
    f[47] = 0x18;
    f.extend((0..5000).map(|i| (i % 241) as u8));
    let buf = BUFS + 0x90000;
    p.a.write(buf, &f);
    let mss: u32 = 1000;
    let mut meta = [0u8; 16];
    let w0 = 1 << 23 | 1 << 24 | 1 << 21 | 1 << 20 | 1 << 14 | 1 << 26 | ((mss >> 10) & 0xf) << 16;
    put32(&mut meta, 0, w0);
    put32(&mut meta, 8, 20 | 14 << 8 | 5 << 16 | (mss & 0x3ff) << 22);
    p.a.write(TX_SQ, &meta);
    let ctrl = 8 | 1 << 7 | 12 << 8 | 1 << 13 | 1 << 14;
    let d = tx_desc(f.len() as u16, buf, true, true, 0, 1, ctrl);
    p.a.write(TX_SQ + 16, &d);
    p.a.e.mmio_write(p.a_tx_db, 2);
    let frames = std::mem::take(&mut p.a.e.tx_out);
    assert_eq!(frames.len(), 5, "5000 bytes at MSS 1000");
    for fr in frames {
        assert!(fr.len() <= 14 + 40 + 1000);
        assert!(p.b.e.receive(fr));
        let (st, _, _, _) = p.rx_comp().expect("segment received");
        assert!(
            st & (1 << 16) != 0 && st & (3 << 13) == 0,
            "segment checksums verify"
        );
    }
    let c = p.a.read(TX_CQ, 8);
    assert_eq!(
        (le16(&c, 0), c[3] & 1),
        (0, 1),
        "one completion for the whole TSO packet"
    );
    assert_eq!((p.a.e.stats.tso_pkts, p.a.e.stats.tso_segs), (1, 5));
    assert_eq!(p.a.e.stats.tx_csum, 0, "TSO is counted apart");
    assert_eq!(p.b.e.stats.rx_csum_checked, 5);
}

/// xorshift64*: a small deterministic generator for the robustness test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_guest_input_never_panics_and_device_recovers() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut d = Drv::new(cfg("fuzz", 4));
    let mut p = Path::new();
    p.post_rx(64, 2048);
    for round in 0..20_000u32 {
        let r = rng.next();
        match r % 6 {
            // Any BAR0 register, any value (but not a reset every time).
            0 => {
                let off = (rng.next() % (BAR0_SIZE / 4)) * 4;
                if off != REG_DEV_CTL || round.is_multiple_of(50) {
                    d.e.mmio_write(off, rng.next() as u32);
                }
                let _ = d.e.mmio_read(off);
            }
            // Random admin commands through a sane admin queue.
            1 | 2 => {
                if d.e.mmio_read(REG_AQ_BASE_LO) == 0 {
                    d.init_admin();
                    d.aq_tail = 0;
                    d.acq_head = 0;
                }
                let mut c = [0u8; 64];
                for b in c.iter_mut() {
                    *b = rng.next() as u8;
                }
                c[2] %= 13;
                // Control buffers and rings sometimes inside fake RAM.
                if rng.next().is_multiple_of(2) {
                    put32(&mut c, 8, (RAM + rng.next() % 0x3f_0000) as u32);
                    put32(&mut c, 12, (RAM + rng.next() % 0x3f_0000) as u32);
                    c[16] = 0;
                    c[17] = 0;
                }
                put16(&mut c, 0, 0);
                c[3] = if (d.aq_tail / 32) & 1 == 0 { 1 } else { 0 };
                d.write(AQ + (d.aq_tail % 32) as u64 * 64, &c);
                d.aq_tail = d.aq_tail.wrapping_add(1);
                d.e.mmio_write(REG_AQ_DB, d.aq_tail as u32);
            }
            // Garbage TX descriptors and doorbells on a live queue pair.
            3 => {
                let slot = p.tx_tail % DEPTH;
                let mut desc = [0u8; 16];
                for b in desc.iter_mut() {
                    *b = rng.next() as u8;
                }
                if rng.next().is_multiple_of(2) {
                    put32(&mut desc, 8, (BUFS + rng.next() % 0x10_0000) as u32);
                    put32(&mut desc, 12, 0);
                }
                p.a.write(TX_SQ + slot as u64 * 16, &desc);
                p.tx_tail = p.tx_tail.wrapping_add(1);
                p.a.e.mmio_write(p.a_tx_db, p.tx_tail as u32);
                for f in std::mem::take(&mut p.a.e.tx_out) {
                    p.b.e.receive(f);
                }
            }
            // Garbage RX descriptors.
            4 => {
                let slot = p.rx_tail % DEPTH;
                let mut desc = [0u8; 16];
                for b in desc.iter_mut() {
                    *b = rng.next() as u8;
                }
                p.b.write(RX_SQ + slot as u64 * 16, &desc);
                p.rx_tail = p.rx_tail.wrapping_add(1);
                p.b.e.mmio_write(p.b_rx_db, p.rx_tail as u32);
            }
            // Random frames from the wire, random timer ticks.
            _ => {
                let len = (rng.next() % 2000) as usize;
                let f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                p.b.e.receive(f);
                p.b.e
                    .tick(Instant::now() + Duration::from_millis(rng.next() % 3000));
            }
        }
    }
    assert!(
        d.e.stats.guest_errors > 0,
        "the fuzzer did exercise error paths"
    );
    // Queue bases at the very top of the address space: refused as DMA
    // errors, no arithmetic overflow.
    for reg in [
        REG_AQ_BASE_LO,
        REG_AQ_BASE_HI,
        REG_ACQ_BASE_LO,
        REG_ACQ_BASE_HI,
    ] {
        d.e.mmio_write(reg, u32::MAX);
    }
    d.e.mmio_write(REG_AENQ_BASE_LO, u32::MAX);
    d.e.mmio_write(REG_AENQ_BASE_HI, u32::MAX);
    d.e.mmio_write(REG_AQ_CAPS, 0x0040_0020);
    d.e.mmio_write(REG_ACQ_CAPS, 0x0040_0020);
    d.e.mmio_write(REG_AENQ_CAPS, 0x0040_0010);
    let dma_errors = d.e.stats.dma_errors;
    d.e.mmio_write(REG_AQ_DB, 5);
    d.e.mmio_write(REG_AENQ_HEAD_DB, 16);
    d.e.mmio_write(REG_MMIO_RESP_LO, u32::MAX);
    d.e.mmio_write(REG_MMIO_RESP_HI, u32::MAX);
    d.e.mmio_write(REG_MMIO_REG_READ, 1);
    assert!(
        d.e.stats.dma_errors > dma_errors,
        "top-of-address-space rings are DMA errors"
    );
    // After all that, a reset brings the device back to a working state.
    d.e.mmio_write(REG_DEV_CTL, 1);
    d.e.mmio_write(REG_DEV_CTL, 0);
    assert_eq!(d.e.mmio_read(REG_DEV_STS) & 0x9, 1);
    d.aq_tail = 0;
    d.acq_head = 0;
    d.cmd_id = 0;
    d.bring_up();
    assert_eq!(d.get_feature(7, None).0, 0, "admin queue works after reset");
}

#[test]
fn unmask_intervals_counted_per_vector() {
    let mut p = Path::new();
    p.a.e.cfg.moderation = true;
    // Static 100/200 twice, then what adaptive moderation would write.
    for rx in [100u32, 100, 8, 64] {
        p.a.e.mmio_write(p.a_unmask, 1 << 30 | 200 << 15 | rx);
    }
    // Path::new() unmasked once with 0/0.
    let v = &p.a.e.vectors[1];
    assert_eq!(v.unmask_writes, 5);
    assert_eq!(v.rx_hist.counts, vec![(0, 1), (8, 1), (64, 1), (100, 2)]);
    assert_eq!(v.tx_hist.counts, vec![(0, 1), (200, 4)]);
    let s = p.a.e.summary();
    assert!(
        s.contains(
            "  vector 1: irqs 0, unmask writes 5, last rx 64 tx 200, \
             rx_usecs 0x1 8x1 64x1 100x2, tx_usecs 0x1 200x4\n"
        ),
        "{s}"
    );
    // A vector never unmasked still has its line, with explicit empties.
    let d = Drv::new(cfg("c", 2));
    assert!(
        d.e.summary().contains(
            "  vector 2: irqs 0, unmask writes 0, last rx 0 tx 0, rx_usecs -, tx_usecs -\n"
        )
    );
}

#[test]
fn interval_histogram_is_bounded() {
    let mut p = Path::new();
    // Path::new() asked for 0 once: 0..40 adds 31 more distinct values, then 8 others.
    for rx in 0..40u32 {
        p.a.e.mmio_write(p.a_unmask, 1 << 30 | rx);
    }
    let v = &p.a.e.vectors[1];
    assert_eq!(v.rx_hist.counts.len(), 32);
    assert_eq!(v.rx_hist.counts[0], (0, 2));
    assert_eq!(v.rx_hist.other, 8);
    assert!(p.a.e.summary().contains(" 31x1 otherx8, tx_usecs 0x41\n"));
}

#[test]
fn every_reset_reason_is_printed() {
    let mut d = Drv::new(cfg("a", 1));
    d.e.mmio_write(REG_DEV_CTL, 1 | 3 << 28);
    d.e.mmio_write(REG_DEV_CTL, 0);
    let s = d.e.summary();
    let line = s
        .lines()
        .find(|l| l.contains("reset reasons:"))
        .expect("reasons line");
    let want: String = (0..16)
        .map(|r| format!(" r{r}={}", u32::from(r == 3)))
        .collect();
    assert_eq!(line, format!("  reset reasons:{want}"));
}

#[test]
fn control_answers_carry_the_request_id() {
    let ports = vec![crate::port::Port::new(
        "ena0".into(),
        crate::pci::Function::new(Ena::new(cfg("ena0", 1))),
    )];
    let a = crate::answer(&ports, "@17-3 status");
    assert!(a.starts_with("> @17-3 status\nena0: link up"), "{a}");
    assert!(a.ends_with("\nend @17-3\n"), "{a}");
    assert!(a.contains("model cpu"), "{a}");
    let a = crate::answer(&ports, "@x fault 0 drop-tx-comp 2");
    assert_eq!(
        a,
        "> @x fault 0 drop-tx-comp 2\nok: fault 0 drop-tx-comp 2\nend @x\n"
    );
    assert_eq!(ports[0].lock().ena.faults.drop_tx_comp, 2);
    let a = crate::answer(&ports, "@y fault 3 fatal");
    assert_eq!(
        a,
        "> @y fault 3 fatal\nerror: no such function in 'fault 3 fatal'\nend @y\n"
    );
    // Without an id: the old form, no end line.
    assert_eq!(
        crate::answer(&ports, "clear 0"),
        "> clear 0\nfaults cleared\n"
    );
    assert_eq!(
        crate::answer(&ports, "@ status"),
        "> @ status\nerror: empty request id after '@'\nend @\n"
    );
}
