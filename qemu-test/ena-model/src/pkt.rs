//! Frame parsing, Internet checksums and the Toeplitz RSS hash.

pub const ETH_HLEN: usize = 14;

/// What the device needs to know about a frame's L3/L4 headers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// 4 or 6 (0: not IP).
    pub ip: u8,
    pub l3_off: usize,
    pub l4_off: usize,
    /// IP protocol / next header of the L4 payload (6 TCP, 17 UDP).
    pub l4_proto: u8,
    /// IPv4 fragment (MF set or non-zero offset): no L4 view.
    pub frag: bool,
    /// Bytes of the L4 segment per the IP length field (bounded by the frame).
    pub l4_len: usize,
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// Parse Ethernet (with up to two VLAN tags), IPv4 or IPv6 (no extension
/// headers) and locate the L4 header. Never panics on short input.
pub fn parse(frame: &[u8]) -> Parsed {
    let mut p = Parsed::default();
    let mut off = 12;
    let mut ethertype = match be16(frame, off) {
        Some(t) => t,
        None => return p,
    };
    let mut tags = 0;
    while (ethertype == 0x8100 || ethertype == 0x88a8) && tags < 2 {
        off += 4;
        tags += 1;
        ethertype = match be16(frame, off) {
            Some(t) => t,
            None => return p,
        };
    }
    let l3 = off + 2;
    match ethertype {
        0x0800 => {
            let Some(&vihl) = frame.get(l3) else { return p };
            let ihl = ((vihl & 0xf) as usize) * 4;
            if vihl >> 4 != 4 || ihl < 20 || frame.len() < l3 + ihl {
                return p;
            }
            let total = be16(frame, l3 + 2).unwrap_or(0) as usize;
            let frag = be16(frame, l3 + 6).unwrap_or(0);
            p.ip = 4;
            p.l3_off = l3;
            p.l4_off = l3 + ihl;
            p.l4_proto = frame[l3 + 9];
            p.frag = frag & 0x3fff != 0;
            let end = (l3 + total).min(frame.len());
            p.l4_len = end.saturating_sub(p.l4_off);
        }
        0x86dd => {
            if frame.len() < l3 + 40 || frame[l3] >> 4 != 6 {
                return p;
            }
            let plen = be16(frame, l3 + 4).unwrap_or(0) as usize;
            p.ip = 6;
            p.l3_off = l3;
            p.l4_off = l3 + 40;
            p.l4_proto = frame[l3 + 6];
            let end = (p.l4_off + plen).min(frame.len());
            p.l4_len = end.saturating_sub(p.l4_off);
        }
        _ => {}
    }
    p
}

/// One's-complement sum of `data` (16-bit big-endian words) added to `sum`.
pub fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
        if sum > 0xffff_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add((*last as u32) << 8);
    }
    sum
}

pub fn csum_fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn pseudo_header_sum(frame: &[u8], p: &Parsed) -> u32 {
    let mut s = 0u32;
    if p.ip == 4 {
        s = csum_add(s, &frame[p.l3_off + 12..p.l3_off + 20]);
    } else {
        s = csum_add(s, &frame[p.l3_off + 8..p.l3_off + 40]);
    }
    s = s.wrapping_add(p.l4_proto as u32);
    s.wrapping_add(p.l4_len as u32)
}

fn l4_csum_field(proto: u8) -> Option<usize> {
    match proto {
        6 => Some(16),
        17 => Some(6),
        _ => None,
    }
}

/// Complete a CHECKSUM_PARTIAL L4 checksum: the field already holds the
/// pseudo-header sum, so sum the segment from the L4 header on and store the
/// complement. Returns false when the frame cannot be offloaded.
pub fn tx_complete_l4_csum(frame: &mut [u8], p: &Parsed) -> bool {
    let Some(field) = l4_csum_field(p.l4_proto) else {
        return false;
    };
    if p.ip == 0 || p.frag || p.l4_len < field + 2 {
        return false;
    }
    let seg = &frame[p.l4_off..p.l4_off + p.l4_len];
    let mut c = !csum_fold(csum_add(0, seg));
    if c == 0 && p.l4_proto == 17 {
        c = 0xffff;
    }
    frame[p.l4_off + field..p.l4_off + field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Fill in a full L4 checksum (pseudo-header included) — used by tests and by
/// the device when it needs to build a frame itself.
pub fn fill_l4_csum(frame: &mut [u8]) -> bool {
    let p = parse(frame);
    let Some(field) = l4_csum_field(p.l4_proto) else {
        return false;
    };
    if p.ip == 0 || p.frag || p.l4_len < field + 2 {
        return false;
    }
    frame[p.l4_off + field] = 0;
    frame[p.l4_off + field + 1] = 0;
    let s = pseudo_header_sum(frame, &p);
    let mut c = !csum_fold(csum_add(s, &frame[p.l4_off..p.l4_off + p.l4_len]));
    if c == 0 && p.l4_proto == 17 {
        c = 0xffff;
    }
    frame[p.l4_off + field..p.l4_off + field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// TCP segmentation offload: cut a TCP/IPv4 or TCP/IPv6 super-frame into
/// frames of at most `mss` payload bytes with fixed-up lengths, IPv4 ids,
/// sequence numbers, flags and full checksums. None if it is not TCP or the
/// MSS is unusable.
pub fn tso_segment(frame: &[u8], mss: usize) -> Option<Vec<Vec<u8>>> {
    let p = parse(frame);
    if p.l4_proto != 6 || p.ip == 0 || p.frag || !(64..=9000).contains(&mss) {
        return None;
    }
    let thl = ((*frame.get(p.l4_off + 12)? >> 4) as usize) * 4;
    let hdr = p.l4_off + thl;
    if thl < 20 || frame.len() < hdr {
        return None;
    }
    let payload = &frame[hdr..];
    let seq0 = u32::from_be_bytes([
        frame[p.l4_off + 4],
        frame[p.l4_off + 5],
        frame[p.l4_off + 6],
        frame[p.l4_off + 7],
    ]);
    let id0 = if p.ip == 4 {
        u16::from_be_bytes([frame[p.l3_off + 4], frame[p.l3_off + 5]])
    } else {
        0
    };
    let flags0 = frame[p.l4_off + 13];
    let n = payload.len().div_ceil(mss).max(1);
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let chunk = &payload[(k * mss).min(payload.len())..((k + 1) * mss).min(payload.len())];
        let mut s = Vec::with_capacity(hdr + chunk.len());
        s.extend_from_slice(&frame[..hdr]);
        s.extend_from_slice(chunk);
        let l3len = s.len() - p.l3_off;
        if p.ip == 4 {
            s[p.l3_off + 2..p.l3_off + 4].copy_from_slice(&(l3len as u16).to_be_bytes());
            let id = id0.wrapping_add(k as u16);
            s[p.l3_off + 4..p.l3_off + 6].copy_from_slice(&id.to_be_bytes());
            s[p.l3_off + 10] = 0;
            s[p.l3_off + 11] = 0;
            let ihl = p.l4_off - p.l3_off;
            let c = !csum_fold(csum_add(0, &s[p.l3_off..p.l3_off + ihl]));
            s[p.l3_off + 10..p.l3_off + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            s[p.l3_off + 4..p.l3_off + 6].copy_from_slice(&((l3len - 40) as u16).to_be_bytes());
        }
        let seq = seq0.wrapping_add((k * mss) as u32);
        s[p.l4_off + 4..p.l4_off + 8].copy_from_slice(&seq.to_be_bytes());
        let mut fl = flags0;
        if k + 1 != n {
            fl &= !0x09; // FIN, PSH only on the last segment
        }
        if k != 0 {
            fl &= !0x80; // CWR only on the first
        }
        s[p.l4_off + 13] = fl;
        if !fill_l4_csum(&mut s) {
            return None;
        }
        out.push(s);
    }
    Some(out)
}

/// Receive-side verification result.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RxCsum {
    pub l3_err: bool,
    pub l4_checked: bool,
    pub l4_err: bool,
}

pub fn rx_verify(frame: &[u8], p: &Parsed) -> RxCsum {
    let mut r = RxCsum::default();
    if p.ip == 4 {
        let ihl = p.l4_off - p.l3_off;
        r.l3_err = csum_fold(csum_add(0, &frame[p.l3_off..p.l3_off + ihl])) != 0xffff;
    }
    if p.ip == 0 || p.frag {
        return r;
    }
    let Some(field) = l4_csum_field(p.l4_proto) else {
        return r;
    };
    if p.l4_len < field + 2 {
        return r;
    }
    r.l4_checked = true;
    if p.l4_proto == 17 && p.ip == 4 && frame[p.l4_off + 6] == 0 && frame[p.l4_off + 7] == 0 {
        return r; // UDP over IPv4 without a checksum
    }
    let s = pseudo_header_sum(frame, p);
    r.l4_err = csum_fold(csum_add(s, &frame[p.l4_off..p.l4_off + p.l4_len])) != 0xffff;
    r
}

/// Microsoft's RSS Toeplitz hash of `input` under a 40-byte `key`.
pub fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // Sliding 32-bit window over the key, starting at its first 4 bytes.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (next, &byte) in (4usize..).zip(input) {
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                result ^= window;
            }
            // Slide the next key bit (MSB first) into the window.
            let incoming = key.get(next).map_or(0, |k| (k >> bit) & 1);
            window = (window << 1) | incoming as u32;
        }
    }
    result
}

/// Flow protocol index used by ENA's hash-input configuration.
pub fn flow_proto(p: &Parsed) -> usize {
    match (p.ip, p.frag, p.l4_proto) {
        (4, false, 6) => 0,
        (4, false, 17) => 1,
        (6, _, 6) => 2,
        (6, _, 17) => 3,
        (4, true, _) => 6,
        (4, _, _) => 4,
        (6, _, _) => 5,
        _ => 7,
    }
}

/// Build the Toeplitz input from the fields selected for this frame's flow
/// type (bits: 0 L2 DA, 1 L2 SA, 2 L3 DA, 3 L3 SA, 4 L4 DP, 5 L4 SP), in the
/// Microsoft order: source address, destination address, source port,
/// destination port.
pub fn hash_input(frame: &[u8], p: &Parsed, fields: u16, out: &mut Vec<u8>) {
    out.clear();
    if p.ip == 4 {
        if fields & 0x8 != 0 {
            out.extend_from_slice(&frame[p.l3_off + 12..p.l3_off + 16]);
        }
        if fields & 0x4 != 0 {
            out.extend_from_slice(&frame[p.l3_off + 16..p.l3_off + 20]);
        }
    } else if p.ip == 6 {
        if fields & 0x8 != 0 {
            out.extend_from_slice(&frame[p.l3_off + 8..p.l3_off + 24]);
        }
        if fields & 0x4 != 0 {
            out.extend_from_slice(&frame[p.l3_off + 24..p.l3_off + 40]);
        }
    } else {
        if fields & 0x2 != 0 && frame.len() >= 12 {
            out.extend_from_slice(&frame[6..12]);
        }
        if fields & 0x1 != 0 && frame.len() >= 6 {
            out.extend_from_slice(&frame[0..6]);
        }
        return;
    }
    let ports = (p.l4_proto == 6 || p.l4_proto == 17) && !p.frag && p.l4_len >= 4;
    if ports {
        if fields & 0x20 != 0 {
            out.extend_from_slice(&frame[p.l4_off..p.l4_off + 2]);
        }
        if fields & 0x10 != 0 {
            out.extend_from_slice(&frame[p.l4_off + 2..p.l4_off + 4]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key from Microsoft's "Verifying the RSS Hash Calculation" page.
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    fn v4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> (Vec<u8>, Vec<u8>) {
        let mut ip = src.to_vec();
        ip.extend_from_slice(&dst);
        let mut tcp = ip.clone();
        tcp.extend_from_slice(&sp.to_be_bytes());
        tcp.extend_from_slice(&dp.to_be_bytes());
        (ip, tcp)
    }

    #[test]
    fn toeplitz_microsoft_ipv4_vectors() {
        // (destination, source, ipv4-only hash, ipv4-with-tcp hash)
        let cases = [
            (
                [161, 142, 100, 80],
                1766,
                [66, 9, 149, 187],
                2794,
                0x323e8fc2,
                0x51ccc178,
            ),
            (
                [65, 69, 140, 83],
                4739,
                [199, 92, 111, 2],
                14230,
                0xd718262a,
                0xc626b0ea,
            ),
            (
                [12, 22, 207, 184],
                38024,
                [24, 19, 198, 95],
                12898,
                0xd2d0a5de,
                0x5c2b394a,
            ),
            (
                [209, 142, 163, 6],
                2217,
                [38, 27, 205, 30],
                48228,
                0x82989176,
                0xafc7327f,
            ),
            (
                [202, 188, 127, 2],
                1303,
                [153, 39, 163, 191],
                44251,
                0x5d1809c5,
                0x10e828a2,
            ),
        ];
        for (dst, dp, src, sp, h_ip, h_tcp) in cases {
            let (ip, tcp) = v4(src, dst, sp, dp);
            assert_eq!(
                toeplitz(&MS_KEY, &ip),
                h_ip,
                "IPv4 hash for {src:?}->{dst:?}"
            );
            assert_eq!(
                toeplitz(&MS_KEY, &tcp),
                h_tcp,
                "TCPv4 hash for {src:?}->{dst:?}"
            );
        }
    }

    #[test]
    fn toeplitz_microsoft_ipv6_vectors() {
        fn a(s: &str) -> [u8; 16] {
            s.parse::<std::net::Ipv6Addr>().unwrap().octets()
        }
        let cases = [
            (
                "3ffe:2501:200:3::1",
                1766,
                "3ffe:2501:200:1fff::7",
                2794,
                0x2cc18cd5,
                0x40207d3d,
            ),
            (
                "ff02::1",
                4739,
                "3ffe:501:8::260:97ff:fe40:efab",
                14230,
                0x0f0c461c,
                0xdde51bbf,
            ),
            (
                "fe80::200:f8ff:fe21:67cf",
                38024,
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                0x4b61e985,
                0x02d1feef,
            ),
        ];
        for (dst, dp, src, sp, h_ip, h_tcp) in cases {
            let mut ip = a(src).to_vec();
            ip.extend_from_slice(&a(dst));
            let mut tcp = ip.clone();
            tcp.extend_from_slice(&(sp as u16).to_be_bytes());
            tcp.extend_from_slice(&(dp as u16).to_be_bytes());
            assert_eq!(toeplitz(&MS_KEY, &ip), h_ip, "IPv6 hash {src}->{dst}");
            assert_eq!(toeplitz(&MS_KEY, &tcp), h_tcp, "TCPv6 hash {src}->{dst}");
        }
    }

    pub fn udp4_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[13] = 0x00;
        f[14] = 0x45;
        let tot = (20 + 8 + payload.len()) as u16;
        f[16..18].copy_from_slice(&tot.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        let hc = !csum_fold(csum_add(0, &f[14..34]));
        f[24..26].copy_from_slice(&hc.to_be_bytes());
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[38..40].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn checksums_roundtrip() {
        let mut f = udp4_frame(b"hello, odd length");
        let p = parse(&f);
        assert_eq!((p.ip, p.l4_proto, p.l4_off, p.frag), (4, 17, 34, false));
        assert!(fill_l4_csum(&mut f));
        assert_eq!(
            rx_verify(&f, &p),
            RxCsum {
                l3_err: false,
                l4_checked: true,
                l4_err: false
            }
        );
        // Partial offload: the field holds the pseudo-header sum, the device finishes it.
        let good = f.clone();
        let ps = !csum_fold(pseudo_header_sum(&f, &p));
        f[40..42].copy_from_slice(&(!ps).to_be_bytes());
        assert!(tx_complete_l4_csum(&mut f, &p));
        assert_eq!(
            f, good,
            "partial checksum completion must equal the full checksum"
        );
        f[45] ^= 0x55;
        assert!(
            rx_verify(&f, &p).l4_err,
            "a corrupted payload must fail L4 verification"
        );
        f[22] ^= 1;
        assert!(
            rx_verify(&f, &p).l3_err,
            "a corrupted IPv4 header must fail"
        );
    }

    fn tcp4_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 32];
        f[12] = 0x08;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((20 + 32 + payload) as u16).to_be_bytes());
        f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[38..42].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        f[46] = 8 << 4;
        f[47] = 0x18 | 0x01 | 0x80; // PSH ACK FIN CWR
        f.extend((0..payload).map(|i| (i % 251) as u8));
        f
    }

    #[test]
    fn tso_segments_are_valid_tcp() {
        let f = tcp4_frame(10_000);
        let segs = tso_segment(&f, 1448).expect("segmentable");
        assert_eq!(segs.len(), 7, "ceil(10000 / 1448)");
        let mut payload = Vec::new();
        for (k, s) in segs.iter().enumerate() {
            let p = parse(s);
            let c = rx_verify(s, &p);
            assert!(
                !c.l3_err && c.l4_checked && !c.l4_err,
                "segment {k} checksums: {c:?}"
            );
            assert_eq!(u16::from_be_bytes([s[16], s[17]]) as usize, s.len() - 14);
            assert_eq!(
                u16::from_be_bytes([s[18], s[19]]),
                0x1234 + k as u16,
                "IPv4 id"
            );
            let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
            assert_eq!(
                seq,
                0xffff_fff0u32.wrapping_add(k as u32 * 1448),
                "seq wraps correctly"
            );
            let fl = s[47];
            assert_eq!(fl & 0x09 != 0, k == 6, "FIN/PSH only on the last");
            assert_eq!(fl & 0x80 != 0, k == 0, "CWR only on the first");
            assert!(s.len() - 66 <= 1448);
            payload.extend_from_slice(&s[66..]);
        }
        assert_eq!(payload, f[66..].to_vec(), "payload reassembles exactly");
        assert!(tso_segment(&f, 0).is_none(), "MSS 0 is refused");
        assert!(tso_segment(&udp4_frame(b"x"), 1000).is_none(), "not TCP");
        assert!(tso_segment(&f[..40], 1448).is_none(), "truncated header");
    }

    #[test]
    fn parse_is_total_on_garbage() {
        for len in 0..80 {
            let f = vec![0x45u8; len];
            let _ = parse(&f);
            let mut g = vec![0u8; len];
            if len > 13 {
                g[12] = 0x86;
                g[13] = 0xdd;
            }
            let p = parse(&g);
            let _ = rx_verify(&g, &p);
        }
    }
}
