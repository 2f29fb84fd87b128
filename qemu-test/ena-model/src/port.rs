//! A served PCI function plus its packet backend and timer thread.

use crate::pci::Function;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::Thread;
use std::time::Instant;

pub enum Backend {
    /// Frames are discarded (counted as sent).
    Null,
    /// Back to back with another function of this process.
    Pair(Weak<Port>),
    /// A tap device (one write per frame).
    Tap(File),
    /// QEMU `-netdev stream` framing: 32-bit big-endian length, then the frame.
    Stream(Mutex<Option<UnixStream>>),
    /// QEMU `-netdev dgram` on UNIX sockets: one datagram per frame, sent to
    /// QEMU's socket path.
    Dgram(UnixDatagram, PathBuf),
}

pub struct Port {
    pub name: String,
    func: Mutex<Function>,
    timer: OnceLock<Thread>,
    pub backend: OnceLock<Backend>,
}

impl Port {
    pub fn new(name: String, func: Function) -> Arc<Self> {
        Arc::new(Port {
            name,
            func: Mutex::new(func),
            timer: OnceLock::new(),
            backend: OnceLock::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Function> {
        // A panic while holding the lock must not take the other functions down.
        self.func.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        eprintln!("ena-model[{}]: {msg}", self.name);
    }

    /// Start the thread that runs keep-alives, moderation timers and delayed
    /// admin completions.
    pub fn start_timer(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let t = std::thread::Builder::new()
            .name(format!("{}-timer", self.name))
            .spawn(move || {
                loop {
                    let Some(p) = me.upgrade() else { return };
                    let next = {
                        let mut f = p.lock();
                        f.ena.timer_kick = false;
                        f.ena.tick(Instant::now())
                    };
                    drop(p);
                    let now = Instant::now();
                    if next > now {
                        std::thread::park_timeout(next - now);
                    }
                }
            });
        match t {
            Ok(h) => {
                let _ = self.timer.set(h.thread().clone());
            }
            Err(e) => self.log(format_args!("cannot start timer thread: {e}")),
        }
    }

    fn kick_timer(&self) {
        if let Some(t) = self.timer.get() {
            t.unpark();
        }
    }

    /// After any guest access: hand transmitted frames to the backend (outside
    /// the lock) and wake the timer if a new deadline was armed.
    pub fn after_guest_access(&self) {
        let (frames, kick) = {
            let mut f = self.lock();
            let k = f.ena.timer_kick;
            f.ena.timer_kick = false;
            (std::mem::take(&mut f.ena.tx_out), k)
        };
        if kick {
            self.kick_timer();
        }
        if !frames.is_empty() {
            self.transmit(frames);
        }
    }

    fn transmit(&self, frames: Vec<Vec<u8>>) {
        match self.backend.get() {
            None | Some(Backend::Null) => {}
            Some(Backend::Pair(peer)) => {
                if let Some(peer) = peer.upgrade() {
                    peer.deliver(frames);
                }
            }
            Some(Backend::Tap(f)) => {
                let mut f: &File = f;
                for fr in frames {
                    if let Err(e) = f.write(&fr) {
                        self.log(format_args!("tap write: {e}"));
                    }
                }
            }
            Some(Backend::Dgram(sock, peer)) => {
                for fr in &frames {
                    // Before QEMU has bound its socket, or when its queue is
                    // full, the frame is lost like on a real wire.
                    let _ = sock.send_to(fr, peer);
                }
            }
            Some(Backend::Stream(s)) => {
                let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(sock) = g.as_mut() {
                    let mut buf = Vec::with_capacity(frames.iter().map(|f| f.len() + 4).sum());
                    for fr in &frames {
                        buf.extend_from_slice(&(fr.len() as u32).to_be_bytes());
                        buf.extend_from_slice(fr);
                    }
                    if let Err(e) = sock.write_all(&buf) {
                        self.log(format_args!("stream peer write: {e}"));
                        *g = None;
                    }
                }
            }
        }
    }

    /// Frames from the wire: into the RX rings (a batch under one lock).
    pub fn deliver(&self, frames: Vec<Vec<u8>>) {
        let kick = {
            let mut f = self.lock();
            for fr in frames {
                f.ena.receive(fr);
            }
            let k = f.ena.timer_kick;
            f.ena.timer_kick = false;
            k
        };
        if kick {
            self.kick_timer();
        }
    }
}

/// Reader thread of a tap device: each read is one frame.
pub fn tap_reader(port: Arc<Port>, mut tap: File) {
    let mut buf = vec![0u8; 65536];
    loop {
        match tap.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => port.deliver(vec![buf[..n].to_vec()]),
            Err(e) => {
                port.log(format_args!("tap read: {e}"));
                return;
            }
        }
    }
}

/// Reader of a `-netdev dgram` peer: each datagram is one frame.
pub fn dgram_reader(port: Arc<Port>, sock: UnixDatagram) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => port.deliver(vec![buf[..n].to_vec()]),
            Err(e) => {
                port.log(format_args!("dgram read: {e}"));
                return;
            }
        }
    }
}

/// Reader of a `-netdev stream` peer: length-prefixed frames, delivered in
/// batches of whatever arrived in one read.
pub fn stream_reader(port: Arc<Port>, mut sock: UnixStream) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match sock.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                port.log(format_args!("stream read: {e}"));
                return;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut frames = Vec::new();
        let mut at = 0;
        while buf.len() >= at + 4 {
            let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
            if len > 65536 {
                port.log(format_args!("stream peer sent a {len}-byte frame; closing"));
                return;
            }
            if buf.len() < at + 4 + len {
                break;
            }
            frames.push(buf[at + 4..at + 4 + len].to_vec());
            at += 4 + len;
        }
        buf.drain(..at);
        if !frames.is_empty() {
            port.deliver(frames);
        }
    }
}
