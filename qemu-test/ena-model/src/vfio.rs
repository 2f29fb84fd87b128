//! The server half of the vfio-user protocol (QEMU docs/interop/vfio-user.rst),
//! just what a PCI function with MSI-X needs: version negotiation, device,
//! region and IRQ info, region reads/writes (posted or not), SET_IRQS with
//! eventfds, DMA_MAP/UNMAP with fds, device reset.

use crate::mem::{DMA_READ, DMA_WRITE};
use crate::pci;
use crate::port::Port;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

const HDR: usize = 16;
const CMD_VERSION: u16 = 1;
const CMD_DMA_MAP: u16 = 2;
const CMD_DMA_UNMAP: u16 = 3;
const CMD_DEVICE_GET_INFO: u16 = 4;
const CMD_GET_REGION_INFO: u16 = 5;
const CMD_GET_REGION_IO_FDS: u16 = 6;
const CMD_GET_IRQ_INFO: u16 = 7;
const CMD_SET_IRQS: u16 = 8;
const CMD_REGION_READ: u16 = 9;
const CMD_REGION_WRITE: u16 = 10;
const CMD_DEVICE_RESET: u16 = 13;

const F_REPLY: u32 = 0x1;
const F_TYPE_MASK: u32 = 0xf;
const F_NO_REPLY: u32 = 0x10;
const F_ERROR: u32 = 0x20;

const MAX_FDS: usize = 16;
const MAX_XFER: usize = 1 << 20;
const MAX_MSG: usize = MAX_XFER + 64;

// vfio ioctl-level constants.
const DEVICE_FLAGS_RESET: u32 = 1 << 0;
const DEVICE_FLAGS_PCI: u32 = 1 << 1;
const REGION_INFO_READ: u32 = 1 << 0;
const REGION_INFO_WRITE: u32 = 1 << 1;
const IRQ_INFO_EVENTFD: u32 = 1 << 0;
const IRQ_INFO_NORESIZE: u32 = 1 << 3;
const IRQ_SET_DATA_NONE: u32 = 1 << 0;
const IRQ_SET_DATA_BOOL: u32 = 1 << 1;
const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
const IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
const DMA_UNMAP_ALL: u32 = 1 << 1;

pub struct Msg {
    pub id: u16,
    pub cmd: u16,
    pub flags: u32,
    pub body: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Receive one message (header with any passed fds, then the body).
fn recv_msg(sock: &mut UnixStream) -> io::Result<Option<Msg>> {
    let mut hdr = [0u8; HDR];
    // Room for MAX_FDS descriptors in one SCM_RIGHTS control message.
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: hdr.as_mut_ptr().cast(),
        iov_len: HDR,
    };
    // SAFETY: an all-zero msghdr is a valid empty value.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: mh points at live buffers (hdr, cbuf) of the sizes given.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 {
        return Ok(None);
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel filled into cbuf with
    // the libc CMSG helpers, which stay within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const libc::c_int;
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for k in 0..len / std::mem::size_of::<libc::c_int>() {
                    let fd = std::ptr::read_unaligned(data.add(k));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    let n = n as usize;
    if n < HDR {
        sock.read_exact(&mut hdr[n..])?;
    }
    let size = le32(&hdr, 4) as usize;
    if !(HDR..=MAX_MSG).contains(&size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message size {size} out of range"),
        ));
    }
    let mut body = vec![0u8; size - HDR];
    sock.read_exact(&mut body)?;
    Ok(Some(Msg {
        id: le16(&hdr, 0),
        cmd: le16(&hdr, 2),
        flags: le32(&hdr, 8),
        body,
        fds,
    }))
}

fn send_reply(sock: &mut UnixStream, m: &Msg, result: Result<Vec<u8>, i32>) -> io::Result<()> {
    if m.flags & F_NO_REPLY != 0 {
        return Ok(());
    }
    let (flags, err, body) = match result {
        Ok(b) => (F_REPLY, 0, b),
        Err(e) => (F_REPLY | F_ERROR, e as u32, Vec::new()),
    };
    let mut out = Vec::with_capacity(HDR + body.len());
    out.extend_from_slice(&m.id.to_le_bytes());
    out.extend_from_slice(&m.cmd.to_le_bytes());
    out.extend_from_slice(&((HDR + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&err.to_le_bytes());
    out.extend_from_slice(&body);
    sock.write_all(&out)
}

/// Accept QEMU connections one after another and serve them.
pub fn serve(listener: UnixListener, port: Arc<Port>) {
    loop {
        let (mut sock, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                port.log(format_args!("accept failed: {e}"));
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        port.log(format_args!("client connected"));
        let r = serve_conn(&mut sock, &port);
        port.log(format_args!(
            "client disconnected ({})",
            match r {
                Ok(()) => "EOF".to_string(),
                Err(e) => e.to_string(),
            }
        ));
        let mut f = port.lock();
        f.reset();
        f.ena.mem.unmap_all();
        for v in f.ena.vectors.iter_mut() {
            v.fd = None;
        }
    }
}

fn serve_conn(sock: &mut UnixStream, port: &Arc<Port>) -> io::Result<()> {
    let mut negotiated = false;
    while let Some(mut m) = recv_msg(sock)? {
        if m.flags & F_TYPE_MASK != 0 {
            port.log(format_args!("ignoring non-request message (cmd {})", m.cmd));
            continue;
        }
        if !negotiated && m.cmd != CMD_VERSION {
            send_reply(sock, &m, Err(libc::EINVAL))?;
            continue;
        }
        let result = match m.cmd {
            CMD_VERSION => {
                negotiated = true;
                version(port, &m)
            }
            CMD_DMA_MAP => dma_map(port, &mut m),
            CMD_DMA_UNMAP => dma_unmap(port, &m),
            CMD_DEVICE_GET_INFO => device_info(&m),
            CMD_GET_REGION_INFO => region_info(port, &m),
            CMD_GET_REGION_IO_FDS => Err(libc::ENOTSUP),
            CMD_GET_IRQ_INFO => irq_info(port, &m),
            CMD_SET_IRQS => set_irqs(port, &mut m),
            CMD_REGION_READ => region_read(port, &m),
            CMD_REGION_WRITE => region_write(port, &m),
            CMD_DEVICE_RESET => {
                port.lock().reset();
                Ok(Vec::new())
            }
            c => {
                port.log(format_args!("unsupported vfio-user command {c}"));
                Err(libc::ENOSYS)
            }
        };
        match &result {
            Err(e) if m.cmd != CMD_GET_IRQ_INFO => {
                port.log(format_args!("command {} failed with errno {e}", m.cmd))
            }
            _ => {}
        }
        send_reply(sock, &m, result)?;
        port.after_guest_access();
    }
    Ok(())
}

fn version(port: &Port, m: &Msg) -> Result<Vec<u8>, i32> {
    if m.body.len() < 4 {
        return Err(libc::EINVAL);
    }
    let (major, minor) = (le16(&m.body, 0), le16(&m.body, 2));
    if major != 0 {
        port.log(format_args!("client speaks vfio-user {major}.{minor}"));
        return Err(libc::ENOTSUP);
    }
    let caps = format!(
        "{{\"capabilities\":{{\"max_msg_fds\":{MAX_FDS},\"max_data_xfer_size\":{MAX_XFER},\"pgsizes\":4096}}}}"
    );
    let mut b = Vec::new();
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(caps.as_bytes());
    b.push(0);
    Ok(b)
}

fn dma_map(port: &Port, m: &mut Msg) -> Result<Vec<u8>, i32> {
    if m.body.len() < 32 {
        return Err(libc::EINVAL);
    }
    let flags = le32(&m.body, 4);
    let offset = le64(&m.body, 8);
    let iova = le64(&m.body, 16);
    let size = le64(&m.body, 24);
    let fd = m.fds.pop();
    let mut f = port.lock();
    f.ena
        .mem
        .map(iova, size, fd, offset, flags & (DMA_READ | DMA_WRITE))
        .map_err(|e| {
            port.log(format_args!("DMA_MAP refused: {e}"));
            libc::EINVAL
        })?;
    Ok(Vec::new())
}

fn dma_unmap(port: &Port, m: &Msg) -> Result<Vec<u8>, i32> {
    if m.body.len() < 24 {
        return Err(libc::EINVAL);
    }
    let flags = le32(&m.body, 4);
    let iova = le64(&m.body, 8);
    let size = le64(&m.body, 16);
    let mut f = port.lock();
    if flags & DMA_UNMAP_ALL != 0 {
        f.ena.mem.unmap_all();
    } else {
        let (_, partial) = f.ena.mem.unmap(iova, size);
        if partial {
            port.log(format_args!(
                "DMA_UNMAP {iova:#x}+{size:#x} cut through a mapping (removed whole)"
            ));
        }
    }
    Ok(m.body[..24].to_vec())
}

fn device_info(m: &Msg) -> Result<Vec<u8>, i32> {
    if m.body.len() < 16 {
        return Err(libc::EINVAL);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&(DEVICE_FLAGS_PCI | DEVICE_FLAGS_RESET).to_le_bytes());
    b.extend_from_slice(&pci::NUM_REGIONS.to_le_bytes());
    b.extend_from_slice(&pci::NUM_IRQS.to_le_bytes());
    Ok(b)
}

fn region_info(port: &Port, m: &Msg) -> Result<Vec<u8>, i32> {
    if m.body.len() < 32 {
        return Err(libc::EINVAL);
    }
    let index = le32(&m.body, 8);
    if index >= pci::NUM_REGIONS {
        return Err(libc::EINVAL);
    }
    let size = port.lock().region_size(index);
    let flags = if size != 0 {
        REGION_INFO_READ | REGION_INFO_WRITE
    } else {
        0
    };
    let mut b = Vec::new();
    b.extend_from_slice(&32u32.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&index.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    Ok(b)
}

fn irq_info(port: &Port, m: &Msg) -> Result<Vec<u8>, i32> {
    if m.body.len() < 16 {
        return Err(libc::EINVAL);
    }
    let index = le32(&m.body, 8);
    let count = port.lock().irq_count(index).ok_or(libc::EINVAL)?;
    let flags = if index == pci::IRQ_MSIX {
        IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE
    } else {
        IRQ_INFO_EVENTFD
    };
    let mut b = Vec::new();
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&index.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    Ok(b)
}

fn set_irqs(port: &Port, m: &mut Msg) -> Result<Vec<u8>, i32> {
    if m.body.len() < 20 {
        return Err(libc::EINVAL);
    }
    let flags = le32(&m.body, 4);
    let index = le32(&m.body, 8);
    let start = le32(&m.body, 12) as usize;
    let count = le32(&m.body, 16) as usize;
    let mut f = port.lock();
    if index != pci::IRQ_MSIX {
        // No INTx/MSI: only "disable" requests make sense.
        return if count == 0 {
            Ok(Vec::new())
        } else {
            Err(libc::EINVAL)
        };
    }
    let nvec = f.ena.vectors.len();
    if flags & IRQ_SET_ACTION_TRIGGER == 0 {
        // Mask/unmask of MSI-X vectors is emulated by QEMU itself.
        return Ok(Vec::new());
    }
    if flags & IRQ_SET_DATA_NONE != 0 && count == 0 {
        for v in f.ena.vectors.iter_mut() {
            v.fd = None;
        }
        return Ok(Vec::new());
    }
    if start.checked_add(count).is_none_or(|e| e > nvec) {
        return Err(libc::EINVAL);
    }
    if flags & IRQ_SET_DATA_EVENTFD != 0 {
        if !m.fds.is_empty() && m.fds.len() != count {
            port.log(format_args!(
                "SET_IRQS: {} fds for {count} vectors",
                m.fds.len()
            ));
            return Err(libc::EINVAL);
        }
        let mut fds = std::mem::take(&mut m.fds).into_iter();
        for v in start..start + count {
            f.ena.vectors[v].fd = fds.next();
        }
    } else if flags & (IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL) != 0 {
        // Software trigger of the vectors: fire them (used rarely by QEMU).
        for v in start..start + count {
            if let Some(fd) = &f.ena.vectors[v].fd {
                let one = 1u64.to_ne_bytes();
                // SAFETY: 8-byte write from a live buffer to an eventfd we own.
                unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), 8) };
            }
        }
    }
    Ok(Vec::new())
}

fn region_rw_args(m: &Msg) -> Result<(u64, u32, usize), i32> {
    if m.body.len() < 16 {
        return Err(libc::EINVAL);
    }
    let count = le32(&m.body, 12) as usize;
    if count > MAX_XFER {
        return Err(libc::E2BIG);
    }
    Ok((le64(&m.body, 0), le32(&m.body, 8), count))
}

fn region_read(port: &Port, m: &Msg) -> Result<Vec<u8>, i32> {
    let (off, region, count) = region_rw_args(m)?;
    let mut b = m.body[..16].to_vec();
    b.resize(16 + count, 0);
    port.lock().read(region, off, &mut b[16..])?;
    Ok(b)
}

fn region_write(port: &Port, m: &Msg) -> Result<Vec<u8>, i32> {
    let (off, region, count) = region_rw_args(m)?;
    if m.body.len() < 16 + count {
        return Err(libc::EINVAL);
    }
    port.lock().write(region, off, &m.body[16..16 + count])?;
    Ok(m.body[..16].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ena::{Config, Ena};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    struct Client {
        s: UnixStream,
        id: u16,
    }

    impl Client {
        fn call(
            &mut self,
            cmd: u16,
            flags: u32,
            body: &[u8],
            fds: &[RawFd],
        ) -> (u32, u32, Vec<u8>) {
            self.id += 1;
            let mut m = Vec::new();
            m.extend_from_slice(&self.id.to_le_bytes());
            m.extend_from_slice(&cmd.to_le_bytes());
            m.extend_from_slice(&((HDR + body.len()) as u32).to_le_bytes());
            m.extend_from_slice(&flags.to_le_bytes());
            m.extend_from_slice(&0u32.to_le_bytes());
            m.extend_from_slice(body);
            let mut iov = libc::iovec {
                iov_base: m.as_mut_ptr().cast(),
                iov_len: m.len(),
            };
            let mut cbuf = [0u64; 16];
            // SAFETY: zeroed msghdr is valid; filled below with live buffers.
            let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
            mh.msg_iov = &mut iov;
            mh.msg_iovlen = 1;
            if !fds.is_empty() {
                // SAFETY: CMSG helpers on our own control buffer, sized for 16 fds.
                unsafe {
                    let len = libc::CMSG_SPACE((fds.len() * 4) as u32) as usize;
                    mh.msg_control = cbuf.as_mut_ptr().cast();
                    mh.msg_controllen = len as _;
                    let c = libc::CMSG_FIRSTHDR(&mh);
                    (*c).cmsg_level = libc::SOL_SOCKET;
                    (*c).cmsg_type = libc::SCM_RIGHTS;
                    (*c).cmsg_len = libc::CMSG_LEN((fds.len() * 4) as u32) as _;
                    let d = libc::CMSG_DATA(c) as *mut RawFd;
                    for (k, fd) in fds.iter().enumerate() {
                        d.add(k).write_unaligned(*fd);
                    }
                }
            }
            // SAFETY: sendmsg with the message built above.
            let n = unsafe { libc::sendmsg(self.s.as_raw_fd(), &mh, 0) };
            assert_eq!(n as usize, m.len(), "sendmsg");
            if flags & F_NO_REPLY != 0 {
                return (0, 0, Vec::new());
            }
            let mut h = [0u8; HDR];
            self.s.read_exact(&mut h).expect("reply header");
            assert_eq!(le16(&h, 0), self.id, "reply id matches");
            let size = le32(&h, 4) as usize;
            let mut b = vec![0u8; size - HDR];
            self.s.read_exact(&mut b).expect("reply body");
            (le32(&h, 8), le32(&h, 12), b)
        }
    }

    fn memfd(size: i64) -> OwnedFd {
        // SAFETY: memfd_create with a static name; result checked.
        let fd = unsafe { libc::memfd_create(c"ram".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is fresh and owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: resize our memfd.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), size) }, 0);
        fd
    }

    #[test]
    fn protocol_roundtrip_with_dma_and_irqs() {
        let dir = std::env::temp_dir().join(format!("ena-model-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        let cfg = Config {
            name: "p".into(),
            mac: [6, 0xed, 0xa0, 0, 0, 1],
            queues: 2,
            readless: false,
            moderation: false,
            max_mtu: 9000,
        };
        let port = Port::new("p".into(), pci::Function::new(Ena::new(cfg)));
        let p2 = port.clone();
        std::thread::spawn(move || serve(l, p2));
        let mut c = Client {
            s: UnixStream::connect(&path).expect("connect"),
            id: 0,
        };
        // Anything before VERSION is refused.
        let (fl, err, _) = c.call(CMD_DEVICE_GET_INFO, 0, &[0; 16], &[]);
        assert!(
            fl & F_ERROR != 0 && err != 0,
            "request before negotiation must fail visibly"
        );
        let mut v = vec![0, 0, 0, 0];
        v.extend_from_slice(b"{\"capabilities\":{\"max_msg_fds\":16}}\0");
        let (fl, _, b) = c.call(CMD_VERSION, 0, &v, &[]);
        assert_eq!(fl & F_ERROR, 0);
        let caps = String::from_utf8_lossy(&b[4..]).to_string();
        assert!(
            caps.contains("max_msg_fds") && caps.ends_with('\0'),
            "caps {caps:?}"
        );
        let (_, _, b) = c.call(CMD_DEVICE_GET_INFO, 0, &[0; 16], &[]);
        assert_eq!(le32(&b, 4) & DEVICE_FLAGS_PCI, DEVICE_FLAGS_PCI);
        assert_eq!(le32(&b, 8), pci::NUM_REGIONS);
        // Config space: identity and MSI-X capability.
        let mut rd = Vec::new();
        rd.extend_from_slice(&0u64.to_le_bytes());
        rd.extend_from_slice(&pci::REGION_CONFIG.to_le_bytes());
        rd.extend_from_slice(&256u32.to_le_bytes());
        let (_, _, b) = c.call(CMD_REGION_READ, 0, &rd, &[]);
        let cs = &b[16..];
        assert_eq!((le16(cs, 0), le16(cs, 2)), (0x1d0f, 0xec20));
        assert_eq!(cs[0x40], 0x11, "MSI-X capability");
        assert_eq!(le16(cs, 0x42) & 0x7ff, 2, "3 vectors: table size - 1");
        // Region info for BAR0 and an absent BAR.
        let mut ri = vec![0u8; 32];
        ri[0..4].copy_from_slice(&32u32.to_le_bytes());
        let (_, _, b) = c.call(CMD_GET_REGION_INFO, 0, &ri, &[]);
        assert_eq!(le64(&b, 16), 0x4000);
        ri[8] = 2;
        let (_, _, b) = c.call(CMD_GET_REGION_INFO, 0, &ri, &[]);
        assert_eq!(le64(&b, 16), 0, "BAR2 absent (no LLQ)");
        ri[8] = 50;
        assert!(c.call(CMD_GET_REGION_INFO, 0, &ri, &[]).0 & F_ERROR != 0);
        // DMA map a memfd as guest RAM at 1 MiB, and one mapping without fd.
        let ram = memfd(1 << 20);
        let mut dm = Vec::new();
        dm.extend_from_slice(&32u32.to_le_bytes());
        dm.extend_from_slice(&3u32.to_le_bytes());
        dm.extend_from_slice(&0u64.to_le_bytes());
        dm.extend_from_slice(&(1u64 << 20).to_le_bytes());
        dm.extend_from_slice(&(1u64 << 20).to_le_bytes());
        assert_eq!(
            c.call(CMD_DMA_MAP, 0, &dm, &[ram.as_raw_fd()]).0 & F_ERROR,
            0
        );
        dm[16..24].copy_from_slice(&0xc0000u64.to_le_bytes());
        dm[24..32].copy_from_slice(&0x10000u64.to_le_bytes());
        assert_eq!(c.call(CMD_DMA_MAP, 0, &dm, &[]).0 & F_ERROR, 0);
        // Overlapping map refused with an errno.
        let (fl, err, _) = c.call(CMD_DMA_MAP, 0, &dm, &[]);
        assert!(fl & F_ERROR != 0 && err == libc::EINVAL as u32);
        // MSI-X eventfds for all 3 vectors.
        // SAFETY: eventfd creation; results checked.
        let efds: Vec<OwnedFd> = (0..3)
            .map(|_| unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_NONBLOCK)) })
            .collect();
        let mut si = Vec::new();
        si.extend_from_slice(&20u32.to_le_bytes());
        si.extend_from_slice(&(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).to_le_bytes());
        si.extend_from_slice(&pci::IRQ_MSIX.to_le_bytes());
        si.extend_from_slice(&0u32.to_le_bytes());
        si.extend_from_slice(&3u32.to_le_bytes());
        let raw: Vec<RawFd> = efds.iter().map(|f| f.as_raw_fd()).collect();
        assert_eq!(c.call(CMD_SET_IRQS, 0, &si, &raw).0 & F_ERROR, 0);
        // Posted BAR0 writes: set up the admin queue in the memfd RAM, then an
        // admin command whose completion must raise vector 0.
        let wr = |c: &mut Client, off: u64, val: u32, post: bool| {
            let mut w = Vec::new();
            w.extend_from_slice(&off.to_le_bytes());
            w.extend_from_slice(&pci::REGION_BAR0.to_le_bytes());
            w.extend_from_slice(&4u32.to_le_bytes());
            w.extend_from_slice(&val.to_le_bytes());
            c.call(CMD_REGION_WRITE, if post { F_NO_REPLY } else { 0 }, &w, &[]);
        };
        let aq = 1u64 << 20;
        let acq = aq + 0x1000;
        wr(&mut c, 0x10, aq as u32, true);
        wr(&mut c, 0x18, 0x0040_0020, true);
        wr(&mut c, 0x20, acq as u32, true);
        wr(&mut c, 0x28, 0x0040_0020, true);
        wr(&mut c, 0x4c, 0, true);
        // Write a GET_FEATURE(26) command into "guest RAM" through the memfd.
        let mut cmd = [0u8; 64];
        cmd[2] = 8;
        cmd[3] = 1;
        cmd[17] = 26;
        // SAFETY: pwrite of a local buffer into our memfd.
        let n = unsafe { libc::pwrite(ram.as_raw_fd(), cmd.as_ptr().cast(), 64, 0) };
        assert_eq!(n, 64);
        wr(&mut c, 0x2c, 1, false);
        let mut e = [0u8; 64];
        // SAFETY: pread into a local buffer from our memfd.
        let n = unsafe { libc::pread(ram.as_raw_fd(), e.as_mut_ptr().cast(), 64, 0x1000) };
        assert_eq!(n, 64);
        assert_eq!((e[2], e[3] & 1), (0, 1), "ACQ entry: success, phase 1");
        assert_eq!(le32(&e, 8), 0x1f, "supported AENQ groups");
        let mut cnt = [0u8; 8];
        // SAFETY: read of an eventfd counter into a local buffer.
        let n = unsafe { libc::read(efds[0].as_raw_fd(), cnt.as_mut_ptr().cast(), 8) };
        assert_eq!(n, 8, "vector 0 eventfd was signalled");
        // Unaligned BAR0 access: logged, device keeps serving.
        let mut rd = Vec::new();
        rd.extend_from_slice(&0x58u64.to_le_bytes());
        rd.extend_from_slice(&pci::REGION_BAR0.to_le_bytes());
        rd.extend_from_slice(&4u32.to_le_bytes());
        let (_, _, b) = c.call(CMD_REGION_READ, 0, &rd, &[]);
        assert_eq!(le32(&b, 16) & 1, 1, "DEV_STS ready");
        rd[12] = 2;
        let (_, _, b) = c.call(CMD_REGION_READ, 0, &rd, &[]);
        assert_eq!(&b[16..18], &[0xff, 0xff]);
        // Unmap everything; a doorbell now cannot reach the ring (DMA error counted).
        let mut um = Vec::new();
        um.extend_from_slice(&24u32.to_le_bytes());
        um.extend_from_slice(&DMA_UNMAP_ALL.to_le_bytes());
        um.extend_from_slice(&[0u8; 16]);
        assert_eq!(c.call(CMD_DMA_UNMAP, 0, &um, &[]).0 & F_ERROR, 0);
        wr(&mut c, 0x2c, 2, false);
        assert!(port.lock().ena.stats.dma_errors >= 1);
        assert_eq!(port.lock().ena.mem.count(), 0);
        // Garbage message size: the connection is dropped, the server survives.
        let mut bad = Client {
            s: UnixStream::connect(&path).expect("second connect"),
            id: 0,
        };
        drop(c);
        let mut m = [0u8; 16];
        m[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bad.s.write_all(&m).expect("write");
        let mut again = Client {
            s: UnixStream::connect(&path).expect("third connect"),
            id: 0,
        };
        drop(bad);
        let (fl, _, _) = again.call(CMD_VERSION, 0, &v, &[]);
        assert_eq!(
            fl & F_ERROR,
            0,
            "server still serving after a malformed client"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
