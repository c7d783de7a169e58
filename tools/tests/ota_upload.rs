//! `otatool upload` against a device-side responder that follows ArduinoOTA.cpp (core 3.x):
//! the UDP invitation parsed with its parseInt/readStringUntil rules, the AUTH nonce and the
//! digest check, `OK`/`ERR: ...`/`Authentication Failed`, the connection back to the host,
//! the decimal byte-count acknowledgements per Update.write and the final `OK` or
//! `ERROR[n]: ...`. The responder is written from the protocol description
//! (shared/esp8266-compat.md §7 and ArduinoOTA.cpp), not from the client's code: it computes
//! its digests itself. Loopback only; every wait is bounded.

use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const OTATOOL: &str = env!("CARGO_BIN_EXE_otatool");
/// Upper bound for any wait of the responder, so a broken client cannot hang the test.
const GUARD: Duration = Duration::from_secs(10);

fn md5hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn md5_reference_vectors() {
    // RFC 1321's test suite: the responder's digests rest on these.
    assert_eq!(md5hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
}

/// What the simulated device does.
#[derive(Clone, Debug)]
enum Behaviour {
    /// As a working sketch: OK, receive, verify MD5, `OK`.
    Normal,
    /// Receives the invitation and never answers.
    Silent,
    /// `Update.begin` fails: answers `ERR: ` + this text.
    BeginError(String),
    /// Answers OK but never connects back.
    NoConnect,
    /// Closes the TCP connection once it has this many bytes.
    DropAfter(usize),
    /// Stops reading and acknowledging (connection kept open) after this many bytes.
    StallAfter(usize),
    /// Receives everything, then `Update.end` fails with this `ERROR[n]: ...` text.
    EndError(String),
    /// Receives everything, then closes without a result (espota.py would spin here).
    NoResult,
}

/// What the device saw.
#[derive(Debug, Default)]
struct Seen {
    invitation: Option<String>,
    cmd: Option<u32>,
    port: Option<u16>,
    size: Option<usize>,
    md5: Option<String>,
    auth_checked: bool,
    auth_ok: bool,
    connected: bool,
    data: Vec<u8>,
    dropped: bool,
    result_sent: Option<String>,
}

/// ArduinoOTA reads its UDP packet with a cursor: parseInt skips spaces and takes up to 16
/// digits; readStringUntil stops at the delimiter, a NUL or the end.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn read(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }
    fn parse_int(&mut self) -> u64 {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        let mut s = String::new();
        for _ in 0..16 {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    s.push(c as char);
                    self.i += 1;
                }
                _ => return s.parse().unwrap_or(0),
            }
        }
        0
    }
    fn until(&mut self, end: u8) -> String {
        let mut s = String::new();
        while let Some(c) = self.read() {
            if c == 0 || c == end {
                break;
            }
            s.push(c as char);
        }
        s
    }
}

struct Device {
    port: u16,
    done: mpsc::Receiver<Seen>,
}

impl Device {
    fn seen(&self) -> Seen {
        self.done
            .recv_timeout(GUARD + GUARD)
            .expect("responder finished")
    }
}

fn device(password: Option<&str>, behaviour: Behaviour) -> Device {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(GUARD)).unwrap();
    let port = udp.local_addr().unwrap().port();
    let password = password.map(str::to_string);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut seen = Seen::default();
        respond(&udp, password.as_deref(), &behaviour, &mut seen);
        let _ = tx.send(seen);
    });
    Device { port, done: rx }
}

fn respond(udp: &UdpSocket, password: Option<&str>, behaviour: &Behaviour, seen: &mut Seen) {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let Ok((n, host)) = udp.recv_from(&mut buf) else {
        return;
    };
    let pkt = &buf[..n];
    seen.invitation = Some(String::from_utf8_lossy(pkt).into_owned());
    let mut c = Cursor { b: pkt, i: 0 };
    let cmd = c.parse_int() as u32;
    if cmd != 0 && cmd != 100 {
        return;
    }
    let tcp_port = c.parse_int() as u16;
    let size = c.parse_int() as usize;
    c.read();
    let md5 = c.until(b'\n').trim().to_string();
    if md5.len() != 32 {
        return;
    }
    seen.cmd = Some(cmd);
    seen.port = Some(tcp_port);
    seen.size = Some(size);
    seen.md5 = Some(md5.clone());
    if let Behaviour::Silent = behaviour {
        return;
    }
    if let Some(pw) = password {
        // The device keeps md5hex(password); its nonce is md5hex(micros() as decimal).
        let stored = md5hex(pw.as_bytes());
        let nonce = md5hex(started.elapsed().as_micros().to_string().as_bytes());
        udp.send_to(format!("AUTH {nonce}").as_bytes(), host)
            .unwrap();
        let Ok((n, from)) = udp.recv_from(&mut buf) else {
            return;
        };
        assert_eq!(from, host, "auth reply from the inviting socket");
        let mut c = Cursor { b: &buf[..n], i: 0 };
        if c.parse_int() != 200 {
            return;
        }
        c.read();
        let cnonce = c.until(b' ');
        let response = c.until(b'\n');
        if cnonce.len() != 32 || response.len() != 32 {
            return;
        }
        seen.auth_checked = true;
        let expected = md5hex(format!("{stored}:{nonce}:{cnonce}").as_bytes());
        if expected != response {
            udp.send_to(b"Authentication Failed", host).unwrap();
            return;
        }
        seen.auth_ok = true;
    }
    // _runUpdate: Update.begin, then OK or ERR: <printError>.
    if let Behaviour::BeginError(e) = behaviour {
        udp.send_to(format!("ERR: {e}").as_bytes(), host).unwrap();
        return;
    }
    udp.send_to(b"OK", host).unwrap();
    if let Behaviour::NoConnect = behaviour {
        return;
    }
    let Ok(mut tcp) = TcpStream::connect_timeout(&SocketAddr::new(host.ip(), tcp_port), GUARD)
    else {
        return;
    };
    seen.connected = true;
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(GUARD)).unwrap();
    let mut chunk = vec![0u8; 4096];
    while seen.data.len() < size {
        let want = (size - seen.data.len()).min(chunk.len());
        match tcp.read(&mut chunk[..want]) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                seen.data.extend_from_slice(&chunk[..n]);
                match behaviour {
                    Behaviour::DropAfter(limit) if seen.data.len() >= *limit => {
                        seen.dropped = true;
                        return; // dropping tcp closes the connection
                    }
                    Behaviour::StallAfter(limit) if seen.data.len() >= *limit => {
                        seen.dropped = true;
                        // Keep the connection open and silent until the client gives up
                        // and closes it (each read bounded by GUARD).
                        while let Ok(n) = tcp.read(&mut chunk) {
                            if n == 0 {
                                break;
                            }
                        }
                        return;
                    }
                    _ => {}
                }
                // Update.write(client) returns the bytes taken; the device prints the count.
                tcp.write_all(n.to_string().as_bytes()).unwrap();
            }
        }
    }
    if let Behaviour::NoResult = behaviour {
        seen.dropped = true;
        return;
    }
    // Update.end(): the MD5 check; on success the device waits, then prints OK.
    let result = match behaviour {
        Behaviour::EndError(e) => e.clone(),
        _ if md5hex(&seen.data) != md5 => format!(
            "ERROR[7]: MD5 verification failed: expected: {md5}, calculated: {}\n",
            md5hex(&seen.data)
        ),
        _ => {
            thread::sleep(Duration::from_millis(20));
            "OK".to_string()
        }
    };
    let _ = tcp.write_all(result.as_bytes());
    seen.result_sent = Some(result);
    thread::sleep(Duration::from_millis(20));
}

/// Deterministic, non-repeating test data.
fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Runs otatool with a hard deadline (killed and failed if it overruns).
fn otatool(args: &[&str], deadline: Duration) -> (Output, Duration) {
    let t = Instant::now();
    let mut child = Command::new(OTATOOL)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > deadline {
            child.kill().unwrap();
            panic!("otatool {args:?} still running after {deadline:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), t.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn assert_received(dev: &Device, o: &Output, file: &[u8], cmd: u32, authed: bool) {
    let seen = dev.seen();
    assert!(
        o.status.success(),
        "otatool failed: {:?}\n{}",
        o.status,
        stderr(o)
    );
    assert_eq!(seen.cmd, Some(cmd));
    assert_eq!(seen.size, Some(file.len()));
    assert_eq!(seen.md5.as_deref(), Some(md5hex(file).as_str()));
    assert_eq!(seen.auth_checked, authed);
    assert_eq!(seen.auth_ok, authed);
    assert!(seen.connected);
    assert_eq!(seen.data.len(), file.len());
    assert!(seen.data == file, "received bytes differ from the file");
    assert_eq!(seen.result_sent.as_deref(), Some("OK"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("device reported OK"), "{out}");
    assert!(out.contains(&md5hex(file)), "{out}");
    assert!(stderr(o).contains("100%"), "progress lines: {}", stderr(o));
}

const SIZES: [usize; 4] = [1, 1460, 2921, 1 << 20];

#[test]
fn flash_without_password_sizes() {
    let dir = tempfile::tempdir().unwrap();
    for (i, &len) in SIZES.iter().enumerate() {
        let file = data(len, i as u32 + 1);
        let path = write(dir.path(), &format!("sketch{len}.bin"), &file);
        let dev = device(None, Behaviour::Normal);
        let port = dev.port.to_string();
        let (o, _) = otatool(
            &[
                "upload",
                &path,
                "--ip",
                "127.0.0.1",
                "--port",
                &port,
                "--host-ip",
                "127.0.0.1",
                "--timeout",
                "2",
            ],
            Duration::from_secs(30),
        );
        assert_received(&dev, &o, &file, 0, false);
    }
}

#[test]
fn filesystem_with_password_sizes_espota_spellings() {
    let dir = tempfile::tempdir().unwrap();
    for (i, &len) in SIZES.iter().enumerate() {
        let file = data(len, 100 + i as u32);
        let path = write(dir.path(), &format!("fs{len}.bin"), &file);
        let dev = device(Some("s3cret pass"), Behaviour::Normal);
        let port = dev.port.to_string();
        // espota.py's options, as an IDE or PlatformIO recipe passes them.
        let (o, _) = otatool(
            &[
                "upload",
                "-i",
                "127.0.0.1",
                "-p",
                &port,
                "--auth=s3cret pass",
                "-s",
                "-f",
                &path,
                "-I",
                "127.0.0.1",
                "-P",
                "0",
                "-r",
                "-t",
                "2",
            ],
            Duration::from_secs(30),
        );
        assert_received(&dev, &o, &file, 100, true);
    }
}

#[test]
fn flash_with_password_and_spiffs_long_option() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(5000, 7);
    let path = write(dir.path(), "a.bin", &file);
    let dev = device(Some("pw"), Behaviour::Normal);
    let port = dev.port.to_string();
    let (o, _) = otatool(
        &[
            "upload",
            "--file",
            &path,
            "--ip",
            "127.0.0.1",
            "--port",
            &port,
            "--auth",
            "pw",
            "--host_ip",
            "127.0.0.1",
            "--host_port",
            "0",
            "--timeout",
            "2",
        ],
        Duration::from_secs(30),
    );
    assert_received(&dev, &o, &file, 0, true);

    let dev = device(None, Behaviour::Normal);
    let port = dev.port.to_string();
    let (o, _) = otatool(
        &[
            "upload",
            &path,
            "--ip",
            "127.0.0.1",
            "--port",
            &port,
            "--spiffs",
            "--host-ip",
            "127.0.0.1",
            "--auth=",
            "--timeout",
            "2",
        ],
        Duration::from_secs(30),
    );
    // `--auth=` (the IDE's empty password) means no password.
    assert_received(&dev, &o, &file, 100, false);
}

#[test]
fn signed_file_next_to_image_is_sent_instead() {
    let dir = tempfile::tempdir().unwrap();
    let plain = data(3000, 9);
    let signed = data(3260, 10);
    let path = write(dir.path(), "s.bin", &plain);
    write(dir.path(), "s.bin.signed", &signed);
    let dev = device(None, Behaviour::Normal);
    let port = dev.port.to_string();
    let (o, _) = otatool(
        &[
            "upload",
            &path,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-I",
            "127.0.0.1",
            "-t",
            "2",
        ],
        Duration::from_secs(30),
    );
    assert_received(&dev, &o, &signed, 0, false);
    assert!(stderr(&o).contains("s.bin.signed"), "{}", stderr(&o));
}

/// Exit code, one `otatool: error:` line naming `want`, and the time taken.
fn fails(o: &Output, code: i32, want: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("otatool: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(
        errors[0].contains(want),
        "error should mention {want:?}: {err}"
    );
    assert!(o.stdout.is_empty(), "no success line on failure");
}

fn upload_args<'a>(path: &'a str, port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "upload",
        path,
        "--ip",
        "127.0.0.1",
        "--port",
        port,
        "--host-ip",
        "127.0.0.1",
        "--timeout",
        "1",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.bin", &data(100, 1));
    let dev = device(Some("right"), Behaviour::Normal);
    let port = dev.port.to_string();
    let (o, t) = otatool(
        &upload_args(&path, &port, &["--auth", "wrong"]),
        Duration::from_secs(10),
    );
    fails(&o, 4, "authentication failed");
    let seen = dev.seen();
    assert!(
        seen.auth_checked && !seen.auth_ok,
        "the device checked and refused"
    );
    assert!(!seen.connected);
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn password_required_but_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.bin", &data(100, 1));
    let dev = device(Some("right"), Behaviour::Normal);
    let port = dev.port.to_string();
    let (o, _) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 4, "requires a password");
    // It still answered the challenge (with the empty password), which returns the device
    // from waiting for authentication to idle.
    let seen = dev.seen();
    assert!(seen.auth_checked && !seen.auth_ok);
}

#[test]
fn empty_password_set_on_the_device() {
    // setPassword("") stores md5(""), so the device asks; no --auth answers it, as espota.py.
    let dir = tempfile::tempdir().unwrap();
    let file = data(3000, 11);
    let path = write(dir.path(), "a.bin", &file);
    let dev = device(Some(""), Behaviour::Normal);
    let port = dev.port.to_string();
    let (o, _) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    assert_received(&dev, &o, &file, 0, true);
}

#[test]
fn silent_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.bin", &data(100, 1));
    let dev = device(None, Behaviour::Silent);
    let port = dev.port.to_string();
    let (o, t) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 3, "no answer");
    assert!(
        dev.seen().invitation.is_some(),
        "the device got the invitation"
    );
    assert!(
        t >= Duration::from_millis(900) && t < Duration::from_secs(5),
        "{t:?}"
    );
}

#[test]
fn nothing_listening() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.bin", &data(100, 1));
    // A port that was just free: the kernel answers port-unreachable.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (o, t) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn device_refuses_with_err() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.bin", &data(100, 1));
    // Update.printError's form after the "ERR: " prefix.
    let dev = device(
        None,
        Behaviour::BeginError("ERROR[4]: Not Enough Space\n".into()),
    );
    let port = dev.port.to_string();
    let (o, t) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 5, "refused the update: ERROR[4]: Not Enough Space");
    let seen = dev.seen();
    assert!(seen.md5.is_some() && !seen.connected);
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn device_refuses_after_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.bin", &data(100, 1));
    let dev = device(
        Some("pw"),
        Behaviour::BeginError(
            "ERROR[11]: Invalid bootstrapping state, reset ESP8266 before updating\n".into(),
        ),
    );
    let port = dev.port.to_string();
    let (o, _) = otatool(
        &upload_args(&path, &port, &["-a", "pw"]),
        Duration::from_secs(10),
    );
    fails(&o, 5, "Invalid bootstrapping state");
    assert!(dev.seen().auth_ok);
}

#[test]
fn device_never_connects_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.bin", &data(100, 1));
    let dev = device(None, Behaviour::NoConnect);
    let port = dev.port.to_string();
    let (o, t) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 3, "did not connect");
    assert!(!dev.seen().connected);
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn device_drops_connection_mid_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(200_000, 3);
    let path = write(dir.path(), "a.bin", &file);
    let dev = device(None, Behaviour::DropAfter(50_000));
    let port = dev.port.to_string();
    let (o, t) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 6, "of 200000 bytes");
    let seen = dev.seen();
    assert!(seen.dropped, "the fault fired");
    assert!(seen.data.len() >= 50_000 && seen.data.len() < file.len());
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn device_stops_acknowledging() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(200_000, 4);
    let path = write(dir.path(), "a.bin", &file);
    let dev = device(None, Behaviour::StallAfter(30_000));
    let port = dev.port.to_string();
    let (o, t) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 6, "stopped acknowledging");
    assert!(dev.seen().dropped, "the fault fired");
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn device_reports_error_at_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(4000, 5);
    let path = write(dir.path(), "a.bin", &file);
    let dev = device(
        None,
        Behaviour::EndError("ERROR[10]: Magic byte is not 0xE9\n".into()),
    );
    let port = dev.port.to_string();
    let (o, _) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 5, "ERROR[10]: Magic byte is not 0xE9");
    let seen = dev.seen();
    assert_eq!(seen.data, file, "all data arrived before the error");
    assert!(seen.result_sent.unwrap().starts_with("ERROR[10]"));
}

#[test]
fn empty_file_refused_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty.bin", b"");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port().to_string();
    let (o, _) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 1, "empty");
    // Nothing reached the device.
    udp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(udp.recv_from(&mut buf).is_err());
}

#[test]
fn missing_file_and_bad_options() {
    let (o, _) = otatool(
        &[
            "upload",
            "/nonexistent/x.bin",
            "--ip",
            "127.0.0.1",
            "--timeout",
            "1",
        ],
        Duration::from_secs(10),
    );
    fails(&o, 1, "/nonexistent/x.bin");
    let (o, _) = otatool(&["upload", "--ip", "127.0.0.1"], Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2), "no file is a usage error");
    let (o, _) = otatool(
        &["upload", "x.bin", "--ip", "127.0.0.1", "--timeout", "0"],
        Duration::from_secs(10),
    );
    fails(&o, 1, "--timeout");
}

#[test]
fn device_closes_without_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(5000, 6);
    let path = write(dir.path(), "a.bin", &file);
    let dev = device(None, Behaviour::NoResult);
    let port = dev.port.to_string();
    let (o, t) = otatool(&upload_args(&path, &port, &[]), Duration::from_secs(10));
    fails(&o, 6, "without reporting a result");
    let seen = dev.seen();
    assert!(
        seen.dropped && seen.result_sent.is_none(),
        "the fault fired"
    );
    assert_eq!(seen.data, file);
    assert!(t < Duration::from_secs(5), "{t:?}");
}
