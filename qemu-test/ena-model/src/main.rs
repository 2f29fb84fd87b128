//! ena-model: ENA PCI functions served to QEMU over vfio-user.
//!
//! Usage: ena-model [options] SOCKET...   (one vfio-user socket per function)
//!   --queues N          IO queue pairs per function (default 2, max 32)
//!   --backend KIND      pair (needs two sockets; TX of one is RX of the other),
//!                       null, tap:IFNAME (first function), stream:PATH (first
//!                       function; listens for QEMU `-netdev stream` there),
//!                       dgram:MINE:QEMUS (first function; binds datagram
//!                       socket MINE, sends to QEMU's `-netdev dgram` socket QEMUS)
//!   --readless          revision 0: the driver reads registers through DMA
//!   --no-moderation     do not advertise interrupt moderation
//!   --max-mtu N         maximum MTU (default 9000)
//!   --ctl FILE          poll FILE for control lines (link/fault/status); answers
//!                       are appended to FILE.out. Works from inside the guest
//!                       when FILE is on a shared directory.
//!
//! Control lines: `status` (counters, every reset reason's count, offload
//! counters, per IO vector its interrupts and the moderation intervals the
//! driver asked for), `link F up|down`, `fault F NAME [N]` where NAME is
//! drop-tx-comp, drop-rx-comp, corrupt-tx-req-id, corrupt-rx-req-id, bad-rx-len,
//! stale-phase (N events; `stale-phase N tx|rx`: only TX or RX completions), drop-admin-irq (N events), admin-delay MS [COUNT] (the next COUNT,
//! default 1, admin completions come MS late), stop-keepalive,
//! resume-keepalive, fatal; `clear F`. F is the function index (0, 1, ...).
//! A line may start with a request id, `@ID CMD...`: its answer in FILE.out
//! then starts with `> @ID CMD...` and ends with the line `end @ID`.

mod ena;
mod mem;
mod pci;
mod pkt;
mod port;
mod vfio;

#[cfg(test)]
mod tests;

use port::{Backend, Port};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::Duration;

struct Opts {
    sockets: Vec<String>,
    queues: u16,
    backend: String,
    readless: bool,
    moderation: bool,
    max_mtu: u32,
    ctl: Option<String>,
}

fn usage() -> ! {
    let text = include_str!("main.rs");
    for l in text.lines().skip(2).take_while(|l| l.starts_with("//!")) {
        eprintln!("{}", l.trim_start_matches("//!").trim_start_matches(' '));
    }
    std::process::exit(2);
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        sockets: Vec::new(),
        queues: 2,
        backend: "pair".into(),
        readless: false,
        moderation: true,
        max_mtu: 9000,
        ctl: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--queues" => {
                o.queues = val("--queues")?
                    .parse()
                    .map_err(|_| "--queues wants a number")?
            }
            "--backend" => o.backend = val("--backend")?,
            "--readless" => o.readless = true,
            "--no-moderation" => o.moderation = false,
            "--max-mtu" => {
                o.max_mtu = val("--max-mtu")?
                    .parse()
                    .map_err(|_| "--max-mtu wants a number")?
            }
            "--ctl" => o.ctl = Some(val("--ctl")?),
            "-h" | "--help" => usage(),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => o.sockets.push(s.to_string()),
        }
    }
    if o.sockets.is_empty() {
        return Err("no socket given".into());
    }
    if !(1..=ena::MAX_QUEUES).contains(&o.queues) {
        return Err(format!("--queues must be 1..={}", ena::MAX_QUEUES));
    }
    if !(1500..=9216).contains(&o.max_mtu) {
        return Err("--max-mtu must be 1500..=9216".into());
    }
    if o.backend == "pair" && o.sockets.len() != 2 {
        return Err("--backend pair needs exactly two sockets".into());
    }
    Ok(o)
}

fn open_tap(name: &str) -> Result<File, String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("/dev/net/tun: {e}"))?;
    // struct ifreq: 16-byte name, then flags (short).
    let mut ifr = [0u8; 40];
    let n = name.as_bytes();
    if n.is_empty() || n.len() > 15 {
        return Err(format!("bad tap name '{name}'"));
    }
    ifr[..n.len()].copy_from_slice(n);
    let flags: u16 = 0x0002 | 0x1000; // IFF_TAP | IFF_NO_PI
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    const TUNSETIFF: libc::c_ulong = 0x400454ca;
    // SAFETY: TUNSETIFF reads/writes a struct ifreq, for which ifr has room.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            TUNSETIFF,
            ifr.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(format!(
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(f)
}

/// The model's own CPU time (user + system) and what it cost per packet.
fn cpu_report(ports: &[Arc<Port>]) -> String {
    // SAFETY: getrusage fills a zero-initialised struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (user, sys) = (secs(ru.ru_utime), secs(ru.ru_stime));
    let pkts: u64 = ports
        .iter()
        .map(|p| {
            let s = p.lock().ena.stats;
            s.tx_pkts + s.rx_pkts
        })
        .sum();
    let per = if pkts > 0 {
        (user + sys) * 1e6 / pkts as f64
    } else {
        0.0
    };
    format!(
        "model cpu: user {user:.2} s, sys {sys:.2} s; {pkts} packets handled (tx+rx); {per:.2} us cpu per packet\n"
    )
}

fn control(ports: &[Arc<Port>], line: &str) -> String {
    let w: Vec<&str> = line.split_whitespace().collect();
    let port = |s: Option<&&str>| -> Result<&Arc<Port>, String> {
        s.and_then(|s| s.parse::<usize>().ok())
            .and_then(|i| ports.get(i))
            .ok_or_else(|| format!("no such function in '{line}'"))
    };
    let r: Result<String, String> = (|| match w.first().copied() {
        None => Ok(String::new()),
        Some("status") => {
            let mut s: String = ports.iter().map(|p| p.lock().ena.summary()).collect();
            s += &cpu_report(ports);
            Ok(s)
        }
        Some("link") => {
            let p = port(w.get(1))?;
            let up = match w.get(2).copied() {
                Some("up") => true,
                Some("down") => false,
                _ => return Err("link F up|down".into()),
            };
            p.lock().ena.set_link(up);
            p.after_guest_access();
            Ok(format!("link {}", if up { "up" } else { "down" }))
        }
        Some("clear") => {
            port(w.get(1))?.lock().ena.faults = ena::Faults::default();
            Ok("faults cleared".into())
        }
        Some("fault") => {
            let p = port(w.get(1))?;
            let n: u32 = w.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            let mut f = p.lock();
            let fl = &mut f.ena.faults;
            match w.get(2).copied() {
                Some("drop-tx-comp") => fl.drop_tx_comp = n,
                Some("drop-rx-comp") => fl.drop_rx_comp = n,
                Some("corrupt-tx-req-id") => fl.corrupt_tx_req_id = n,
                Some("corrupt-rx-req-id") => fl.corrupt_rx_req_id = n,
                Some("bad-rx-len") => fl.bad_rx_len = n,
                Some("stale-phase") => {
                    fl.stale_phase = n;
                    fl.stale_phase_tx = match w.get(4).copied() {
                        None => None,
                        Some("tx") => Some(true),
                        Some("rx") => Some(false),
                        Some(d) => return Err(format!("stale-phase N [tx|rx], not '{d}'")),
                    };
                }
                Some("drop-admin-irq") => fl.drop_admin_irq = n,
                Some("admin-delay") => {
                    fl.admin_delay_ms = n;
                    fl.admin_delay_count = w.get(4).and_then(|s| s.parse().ok()).unwrap_or(1);
                }
                Some("stop-keepalive") => fl.stop_keepalive = true,
                Some("resume-keepalive") => fl.stop_keepalive = false,
                Some("fatal") => f.ena.raise_fatal(),
                _ => return Err(format!("unknown fault in '{line}'")),
            }
            Ok(format!("ok: {line}"))
        }
        Some(c) => Err(format!("unknown command '{c}'")),
    })();
    match r {
        Ok(s) => s,
        Err(e) => format!("error: {e}"),
    }
}

/// The answer to one control line, as appended to the `.out` file: `> LINE`,
/// the command's output, and for a line with a request id (`@ID CMD...`) a
/// last line `end @ID`. The id lets a reader wait for this very answer
/// (not an older one) and know it is complete.
fn answer(ports: &[Arc<Port>], line: &str) -> String {
    let (id, cmd) = match line.strip_prefix('@') {
        Some(rest) => {
            let (id, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (Some(id), cmd.trim())
        }
        None => (None, line),
    };
    let out = match id {
        Some("") => "error: empty request id after '@'".to_string(),
        _ => control(ports, cmd),
    };
    let mut s = format!("> {line}\n");
    let out = out.trim_end();
    if !out.is_empty() {
        s += out;
        s.push('\n');
    }
    if let Some(id) = id {
        s += &format!("end @{id}\n");
    }
    s
}

fn control_poller(ports: Vec<Arc<Port>>, path: String) {
    let mut pos = 0u64;
    let mut partial = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(mut f) = File::open(&path) else {
            continue;
        };
        let Ok(len) = f.metadata().map(|m| m.len()) else {
            continue;
        };
        if len < pos {
            pos = 0; // truncated: start over
        }
        if len == pos || f.seek(SeekFrom::Start(pos)).is_err() {
            continue;
        }
        let mut s = String::new();
        if f.read_to_string(&mut s).is_err() {
            continue;
        }
        pos += s.len() as u64;
        partial.push_str(&s);
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            let answer = answer(&ports, line.trim());
            eprint!("ena-model: control {answer}");
            if let Ok(mut o) = OpenOptions::new()
                .create(true)
                .append(true)
                .open(format!("{path}.out"))
            {
                // One write per answer, so a reader never sees half of it
                // followed by its end marker from elsewhere.
                let _ = o.write_all(answer.as_bytes());
            }
        }
    }
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ena-model: {e}");
            usage();
        }
    };
    // Handle SIGTERM/SIGINT in a dedicated thread: block them everywhere first.
    // SAFETY: plain signal-mask manipulation on a zero-initialised sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };

    let mut ports = Vec::new();
    let mut listeners = Vec::new();
    for (i, path) in o.sockets.iter().enumerate() {
        let _ = std::fs::remove_file(path);
        let l = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ena-model: cannot listen on {path}: {e}");
                std::process::exit(1);
            }
        };
        let cfg = ena::Config {
            name: format!("ena{i}"),
            mac: [0x06, 0xed, 0xa0, 0x00, 0x00, i as u8 + 1],
            queues: o.queues,
            readless: o.readless,
            moderation: o.moderation,
            max_mtu: o.max_mtu,
        };
        let port = Port::new(cfg.name.clone(), pci::Function::new(ena::Ena::new(cfg)));
        ports.push(port);
        listeners.push(l);
    }
    let backend_err = |e: String| -> ! {
        eprintln!("ena-model: backend {}: {e}", o.backend);
        std::process::exit(1);
    };
    match o.backend.as_str() {
        "pair" => {
            let _ = ports[0]
                .backend
                .set(Backend::Pair(Arc::downgrade(&ports[1])));
            let _ = ports[1]
                .backend
                .set(Backend::Pair(Arc::downgrade(&ports[0])));
        }
        "null" => {
            let _ = ports[0].backend.set(Backend::Null);
        }
        b if b.starts_with("tap:") => {
            let tap = open_tap(&b[4..]).unwrap_or_else(|e| backend_err(e));
            let rd = tap
                .try_clone()
                .unwrap_or_else(|e| backend_err(e.to_string()));
            let _ = ports[0].backend.set(Backend::Tap(tap));
            let p = ports[0].clone();
            std::thread::spawn(move || port::tap_reader(p, rd));
        }
        b if b.starts_with("stream:") => {
            let path = &b[7..];
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path).unwrap_or_else(|e| backend_err(e.to_string()));
            let _ = ports[0]
                .backend
                .set(Backend::Stream(std::sync::Mutex::new(None)));
            let p = ports[0].clone();
            std::thread::spawn(move || {
                for s in l.incoming() {
                    let Ok(s) = s else { continue };
                    p.log(format_args!("stream peer connected"));
                    let Ok(rd) = s.try_clone() else { continue };
                    if let Some(Backend::Stream(m)) = p.backend.get() {
                        *m.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                    }
                    let p2 = p.clone();
                    std::thread::spawn(move || port::stream_reader(p2, rd));
                }
            });
        }
        b if b.starts_with("dgram:") => {
            let mut parts = b[6..].splitn(2, ':');
            let (Some(mine), Some(theirs)) = (parts.next(), parts.next()) else {
                backend_err("dgram:MINE:QEMUS needs two socket paths".into())
            };
            let _ = std::fs::remove_file(mine);
            let sock = std::os::unix::net::UnixDatagram::bind(mine)
                .unwrap_or_else(|e| backend_err(e.to_string()));
            let rd = sock
                .try_clone()
                .unwrap_or_else(|e| backend_err(e.to_string()));
            let _ = ports[0]
                .backend
                .set(Backend::Dgram(sock, std::path::PathBuf::from(theirs)));
            let p = ports[0].clone();
            std::thread::spawn(move || port::dgram_reader(p, rd));
        }
        _ => backend_err("unknown backend".into()),
    }
    for (p, l) in ports.iter().zip(listeners) {
        p.start_timer();
        let p = p.clone();
        std::thread::spawn(move || vfio::serve(l, p));
    }
    if let Some(ctl) = o.ctl.clone() {
        let ps = ports.clone();
        std::thread::spawn(move || control_poller(ps, ctl));
    }
    eprintln!(
        "ena-model: serving {} function(s), {} queue pair(s) each, backend {}",
        ports.len(),
        o.queues,
        o.backend
    );
    let mut sig: libc::c_int = 0;
    // SAFETY: waits for one of the signals blocked above.
    unsafe { libc::sigwait(&set, &mut sig) };
    eprintln!("ena-model: signal {sig}, final state:");
    for p in &ports {
        eprint!("{}", p.lock().ena.summary());
    }
    eprint!("{}", cpu_report(&ports));
    for s in &o.sockets {
        let _ = std::fs::remove_file(s);
    }
    std::process::exit(0);
}
