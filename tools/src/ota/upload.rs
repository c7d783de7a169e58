//! `otatool upload`: sends an image to a sketch running ArduinoOTA, as espota.py does.
//!
//! The exchange, as the device implements it (ArduinoOTA.cpp):
//! 1. UDP to the device: `"<cmd> <our TCP port> <size> <md5>\n"`, cmd 0 = flash, 100 = FS.
//! 2. The device answers `OK`, `ERR: <Updater error>` or `AUTH <nonce>`; to the latter we send
//!    `"200 <cnonce> <md5(md5(password):nonce:cnonce)>\n"` and get `OK`,
//!    `Authentication Failed` or `ERR: ...`.
//! 3. The device connects to our TCP port; we send 1460-byte chunks and wait after each for
//!    its acknowledgement (decimal byte counts, no separator); at the end it sends `OK`, or
//!    `ERROR[n]: text` when the Updater refuses the image (bad MD5, bad magic, ...).

use super::md5_hex;
use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `U_FLASH` and `U_FS` of the core's Updater.h, `U_AUTH` the authentication reply.
pub const CMD_FLASH: u32 = 0;
pub const CMD_FS: u32 = 100;
pub const CMD_AUTH: u32 = 200;
/// espota.py's chunk size (one TCP segment of a 1500-byte MTU).
pub const CHUNK: usize = 1460;
/// The final result may take a while: the device verifies the MD5 over the whole image and
/// then waits a second before `OK` (espota.py allows 60 s against its usual 10 s).
pub const RESULT_TIMEOUT_FACTOR: u32 = 6;

/// What went wrong, by class; each has its own exit code (see tools/README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The file or a local socket: nothing was sent, or could not be.
    Local,
    /// No answer to the invitation or the authentication, or no connection back.
    NoAnswer,
    /// The device wants a password and ours is missing or wrong.
    Auth,
    /// The device refused the update or reported an error (`ERR: ...`, `ERROR[n]: ...`).
    Device,
    /// The TCP transfer broke: connection dropped, acknowledgements stopped, no result.
    Transfer,
}

impl Failure {
    pub fn exit_code(self) -> u8 {
        match self {
            Failure::Local => 1,
            Failure::NoAnswer => 3,
            Failure::Auth => 4,
            Failure::Device => 5,
            Failure::Transfer => 6,
        }
    }
}

#[derive(Debug)]
pub struct UploadError {
    pub kind: Failure,
    pub msg: String,
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for UploadError {}

fn fail(kind: Failure, msg: impl Into<String>) -> UploadError {
    UploadError {
        kind,
        msg: msg.into(),
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A bar when standard error is a terminal, plain lines otherwise.
    Auto,
    /// Plain lines (every 10 %).
    Lines,
    /// Nothing.
    Quiet,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub file: PathBuf,
    /// Device address or host name.
    pub ip: String,
    pub port: u16,
    /// Empty means none, as the IDE passes `--auth=` without a password.
    pub auth: Option<String>,
    /// Filesystem image instead of a sketch.
    pub fs: bool,
    /// Local address to receive the device's connection on (default: all interfaces).
    pub host_ip: Option<IpAddr>,
    /// Local TCP port (0: any free port).
    pub host_port: u16,
    /// Wait for each answer of the device.
    pub timeout: Duration,
    pub progress: Progress,
    /// Report each protocol step on standard error.
    pub debug: bool,
}

/// What a successful upload did.
#[derive(Debug)]
pub struct Summary {
    pub file: PathBuf,
    pub size: usize,
    pub md5: String,
    pub device: SocketAddr,
    pub authenticated: bool,
}

/// The file espota.py would send: `FILE.signed` when it exists next to FILE.
pub fn pick_file(file: &Path) -> PathBuf {
    let mut signed = file.as_os_str().to_owned();
    signed.push(".signed");
    let signed = PathBuf::from(signed);
    if signed.is_file() {
        signed
    } else {
        file.to_path_buf()
    }
}

/// The authentication reply (ArduinoOTA's digest scheme): cnonce is any 32-hex string, the
/// device checks `md5hex(md5hex(password) ":" nonce ":" cnonce)`.
pub fn auth_response(password: &str, nonce: &str, cnonce: &str) -> String {
    md5_hex(format!("{}:{nonce}:{cnonce}", md5_hex(password.as_bytes())).as_bytes())
}

/// Runs one upload. Progress and steps go to standard error.
pub fn upload(opts: &Options) -> Result<Summary, UploadError> {
    let file = pick_file(&opts.file);
    if file != opts.file {
        eprintln!("Detected signed update: {} is sent instead", file.display());
    }
    let data = std::fs::read(&file)
        .map_err(|e| fail(Failure::Local, format!("{}: {e}", file.display())))?;
    if data.is_empty() {
        // The device's Updater refuses size 0 (UPDATE_ERROR_SIZE); say so before asking it.
        return Err(fail(
            Failure::Local,
            format!(
                "{}: file is empty; the device refuses a 0-byte update",
                file.display()
            ),
        ));
    }
    if data.len() > u32::MAX as usize {
        return Err(fail(
            Failure::Local,
            format!("{}: larger than 4 GiB", file.display()),
        ));
    }
    let md5 = md5_hex(&data);
    let device = resolve(&opts.ip, opts.port)?;
    let debug = |m: &str| {
        if opts.debug {
            eprintln!("otatool: {m}");
        }
    };

    let any: IpAddr = match device {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let local_ip = opts.host_ip.unwrap_or(any);
    let listener = TcpListener::bind((local_ip, opts.host_port)).map_err(|e| {
        fail(
            Failure::Local,
            format!("cannot listen on {local_ip} port {}: {e}", opts.host_port),
        )
    })?;
    let tcp_port = listener
        .local_addr()
        .map_err(|e| fail(Failure::Local, format!("listening socket: {e}")))?
        .port();

    let udp = UdpSocket::bind((local_ip, 0))
        .and_then(|u| u.connect(device).map(|_| u))
        .map_err(|e| fail(Failure::Local, format!("UDP socket to {device}: {e}")))?;
    udp.set_read_timeout(Some(opts.timeout))
        .map_err(|e| fail(Failure::Local, format!("UDP socket: {e}")))?;

    let cmd = if opts.fs { CMD_FS } else { CMD_FLASH };
    let invitation = format!("{cmd} {tcp_port} {} {md5}\n", data.len());
    debug(&format!(
        "invitation to {device}: {}",
        invitation.trim_end()
    ));
    eprintln!(
        "Sending invitation to {device} ({} image {}, {} bytes)",
        if opts.fs { "filesystem" } else { "sketch" },
        file.display(),
        data.len()
    );
    udp.send(invitation.as_bytes())
        .map_err(|e| fail(Failure::Local, format!("cannot send to {device}: {e}")))?;
    let answer = recv_answer(&udp, device, opts.timeout, "the invitation")?;
    debug(&format!("answer: {answer}"));

    let mut authenticated = false;
    if let Some(nonce) = answer.strip_prefix("AUTH ") {
        // Without --auth answer with the empty password, as espota.py does: a sketch that
        // called setPassword("") accepts it, and any other answer returns the device from
        // waiting for authentication to idle, so the next attempt is not swallowed.
        let password = opts.auth.as_deref().unwrap_or("");
        let nonce = nonce.trim();
        // Like espota.py: a client nonce from what identifies this upload.
        let cnonce =
            md5_hex(format!("{}{}{md5}{}", file.display(), data.len(), opts.ip).as_bytes());
        let reply = format!(
            "{CMD_AUTH} {cnonce} {}\n",
            auth_response(password, nonce, &cnonce)
        );
        eprintln!("Authenticating...");
        udp.send(reply.as_bytes())
            .map_err(|e| fail(Failure::Local, format!("cannot send to {device}: {e}")))?;
        let answer = recv_answer(&udp, device, opts.timeout, "the authentication")?;
        debug(&format!("answer: {answer}"));
        if answer == "Authentication Failed" && password.is_empty() {
            return Err(fail(
                Failure::Auth,
                format!("{device} requires a password (--auth)"),
            ));
        }
        if answer != "OK" {
            return Err(refusal(device, &answer, true));
        }
        authenticated = true;
    } else if answer != "OK" {
        return Err(refusal(device, &answer, false));
    }

    eprintln!("Waiting for {device} to connect to port {tcp_port}...");
    let mut stream = accept_from(&listener, device.ip(), opts.timeout, tcp_port)?;
    debug(&format!(
        "device connected from {:?}",
        stream.peer_addr().ok()
    ));
    send_image(&mut stream, &data, opts, device)?;
    Ok(Summary {
        file,
        size: data.len(),
        md5,
        device,
        authenticated,
    })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, UploadError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            fail(
                Failure::Local,
                format!("cannot resolve device address '{host}': {e}"),
            )
        })?
        .next()
        .ok_or_else(|| {
            fail(
                Failure::Local,
                format!("device address '{host}' has no IP address"),
            )
        })
}

fn recv_answer(
    udp: &UdpSocket,
    device: SocketAddr,
    timeout: Duration,
    what: &str,
) -> Result<String, UploadError> {
    let mut buf = [0u8; 128];
    match udp.recv(&mut buf) {
        Ok(n) => Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(fail(
            Failure::NoAnswer,
            format!(
                "no answer from {device} to {what} within {} s (is ArduinoOTA running there, on this port?)",
                secs(timeout)
            ),
        )),
        // An ICMP port-unreachable on the connected socket: nothing listens there.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Err(fail(
            Failure::NoAnswer,
            format!("{device} refused {what}: nothing listens on UDP port {}", device.port()),
        )),
        Err(e) => Err(fail(Failure::NoAnswer, format!("{device}: {e}"))),
    }
}

fn refusal(device: SocketAddr, answer: &str, after_auth: bool) -> UploadError {
    if answer == "Authentication Failed" {
        fail(
            Failure::Auth,
            format!("{device}: authentication failed (wrong password)"),
        )
    } else if let Some(e) = answer.strip_prefix("ERR: ") {
        fail(
            Failure::Device,
            format!("{device} refused the update: {}", e.trim()),
        )
    } else if answer.starts_with("AUTH") && after_auth {
        fail(
            Failure::Auth,
            format!("{device} asked for authentication again: {answer}"),
        )
    } else {
        fail(
            Failure::Device,
            format!("unexpected answer from {device}: {answer:?}"),
        )
    }
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Waits for the device's connection; connections from any other address are turned away,
/// so nobody else on the network can take the image.
fn accept_from(
    listener: &TcpListener,
    device: IpAddr,
    timeout: Duration,
    port: u16,
) -> Result<TcpStream, UploadError> {
    let local = |e: std::io::Error| fail(Failure::Local, format!("listening socket: {e}"));
    // std has no accept timeout; poll a non-blocking listener, bounded by the deadline.
    listener.set_nonblocking(true).map_err(local)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, peer)) if peer.ip().to_canonical() == device.to_canonical() => {
                s.set_nonblocking(false).map_err(local)?;
                return Ok(s);
            }
            Ok((_, peer)) => {
                eprintln!("otatool: ignored a connection from {peer} (not the device)")
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(local(e)),
        }
        if Instant::now() >= deadline {
            return Err(fail(
                Failure::NoAnswer,
                format!(
                    "{device} accepted the update but did not connect to port {port} within {} s (a firewall on this host?)",
                    secs(timeout)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The device's final word, found after its byte-count acknowledgements.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    Error(String),
    Unexpected(String),
}

/// Acknowledgements are ASCII digits only, so the first other byte starts the result:
/// `O` of `OK` or `E` of `ERROR[n]: ...` (espota.py looks for the same two letters).
fn verdict(replies: &[u8], complete: bool) -> Option<Verdict> {
    let start = replies.iter().position(|b| !b.is_ascii_digit())?;
    let text = String::from_utf8_lossy(&replies[start..]);
    match replies[start] {
        b'O' => Some(Verdict::Ok),
        // The message ends with a newline; until then (or the end of the stream) wait.
        b'E' if complete || text.contains('\n') => Some(Verdict::Error(text.trim().to_string())),
        b'E' => None,
        _ => Some(Verdict::Unexpected(text.trim().to_string())),
    }
}

struct Bar {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    total: usize,
    last_tenth: usize,
}

impl Bar {
    fn new(p: Progress, total: usize) -> Bar {
        let terminal = std::io::stderr().is_terminal();
        let bar = (p == Progress::Auto && terminal).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "Uploading [{bar:40}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        });
        Bar {
            lines: bar.is_none() && p != Progress::Quiet,
            bar,
            total,
            last_tenth: 0,
        }
    }
    fn set(&mut self, done: usize) {
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
        } else if self.lines {
            let tenth = done * 10 / self.total.max(1);
            if tenth > self.last_tenth {
                self.last_tenth = tenth;
                eprintln!(
                    "Uploading: {:>3}% ({done} of {} bytes)",
                    tenth * 10,
                    self.total
                );
            }
        }
    }
    fn finish(&self) {
        // Cleared, so the summary lines that follow start on a line of their own.
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
    fn abandon(&self) {
        if let Some(b) = &self.bar {
            b.abandon();
        }
    }
}

fn send_image(
    stream: &mut TcpStream,
    data: &[u8],
    opts: &Options,
    device: SocketAddr,
) -> Result<(), UploadError> {
    let mut bar = Bar::new(opts.progress, data.len());
    let started = Instant::now();
    let r = transfer(stream, data, opts, device, &mut bar);
    match &r {
        Ok(()) => {
            bar.finish();
            eprintln!(
                "Uploaded {} bytes in {:.1} s; {device} verified the image",
                data.len(),
                started.elapsed().as_secs_f64()
            );
        }
        Err(_) => bar.abandon(),
    }
    r
}

fn transfer(
    stream: &mut TcpStream,
    data: &[u8],
    opts: &Options,
    device: SocketAddr,
    bar: &mut Bar,
) -> Result<(), UploadError> {
    let local = |e: std::io::Error| fail(Failure::Local, format!("TCP socket: {e}"));
    stream.set_nodelay(true).map_err(local)?;
    stream
        .set_write_timeout(Some(opts.timeout))
        .map_err(local)?;
    stream.set_read_timeout(Some(opts.timeout)).map_err(local)?;
    let total = data.len();
    let mut replies = Vec::new();
    let mut buf = [0u8; 64];
    let mut sent = 0;
    for chunk in data.chunks(CHUNK) {
        stream.write_all(chunk).map_err(|e| {
            fail(
                Failure::Transfer,
                format!("connection to {device} lost after {sent} of {total} bytes: {e}"),
            )
        })?;
        sent += chunk.len();
        // Lock-step like espota.py: one acknowledgement per chunk keeps the device's small
        // receive buffers from overflowing.
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(fail(
                    Failure::Transfer,
                    format!("{device} closed the connection after {sent} of {total} bytes"),
                ))
            }
            Ok(n) => replies.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(fail(
                    Failure::Transfer,
                    format!(
                        "{device} stopped acknowledging after {sent} of {total} bytes (nothing within {} s)",
                        secs(opts.timeout)
                    ),
                ))
            }
            Err(e) => {
                return Err(fail(
                    Failure::Transfer,
                    format!("connection to {device} lost after {sent} of {total} bytes: {e}"),
                ))
            }
        }
        if let Some(Verdict::Error(_) | Verdict::Unexpected(_)) = verdict(&replies, false) {
            break;
        }
        bar.set(sent);
    }
    // The result: read until the device's verdict, the end of the stream or the deadline.
    let deadline = Instant::now() + opts.timeout * RESULT_TIMEOUT_FACTOR;
    let mut closed = false;
    loop {
        if let Some(v) = verdict(&replies, closed) {
            return match v {
                Verdict::Ok if sent == total => Ok(()),
                Verdict::Ok => Err(fail(
                    Failure::Device,
                    format!("{device} reported OK after only {sent} of {total} bytes"),
                )),
                Verdict::Error(e) => Err(fail(
                    Failure::Device,
                    format!("{device} reported an error after {sent} of {total} bytes: {e}"),
                )),
                Verdict::Unexpected(t) => Err(fail(
                    Failure::Device,
                    format!("unexpected reply from {device}: {t:?}"),
                )),
            };
        }
        if closed {
            return Err(fail(
                Failure::Transfer,
                format!(
                    "{device} closed the connection after all {total} bytes without reporting a result"
                ),
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail(
                Failure::Transfer,
                format!(
                    "no result from {device} within {} s after sending {sent} of {total} bytes",
                    secs(opts.timeout * RESULT_TIMEOUT_FACTOR)
                ),
            ));
        }
        stream.set_read_timeout(Some(left)).map_err(local)?;
        match stream.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => replies.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset after the verdict's first bytes still leaves them readable above.
            Err(_) => closed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_skips_counts() {
        assert_eq!(verdict(b"14601460", false), None);
        assert_eq!(verdict(b"1460OK", false), Some(Verdict::Ok));
        assert_eq!(verdict(b"12ERROR[7]: MD5", false), None);
        assert_eq!(
            verdict(b"12ERROR[7]: MD5", true),
            Some(Verdict::Error("ERROR[7]: MD5".into()))
        );
        assert_eq!(
            verdict(b"ERROR[4]: Not Enough Space\n", false),
            Some(Verdict::Error("ERROR[4]: Not Enough Space".into()))
        );
        assert_eq!(verdict(b"9x", false), Some(Verdict::Unexpected("x".into())));
    }

    #[test]
    fn failure_codes_distinct() {
        let all = [
            Failure::Local,
            Failure::NoAnswer,
            Failure::Auth,
            Failure::Device,
            Failure::Transfer,
        ];
        let mut codes: Vec<u8> = all.iter().map(|f| f.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        // 0 is success and 2 is clap's usage error.
        assert!(!codes.contains(&0) && !codes.contains(&2));
    }
}
