//! `otatool serve` as ESPhttpUpdate sees it: each test starts the binary on 127.0.0.1 (a
//! free port), sends the request bytes ESP8266HTTPClient writes for ESP8266httpUpdate
//! (`GET <url> HTTP/1.0`, Host, User-Agent, Connection, the `x-ESP8266-*` headers in the
//! order handleUpdate adds them, Content-Length: 0) and checks status, headers and body.
//! Responses are parsed with httparse; MD5s are computed here, independently of the server.

use md5::{Digest, Md5};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const OTATOOL: &str = env!("CARGO_BIN_EXE_otatool");

fn md5hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(OTATOOL)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let buf = stderr.clone();
    // Drain stderr for the server's whole life; the first line names the port.
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let a: SocketAddr = rest.split('/').next().unwrap().parse().unwrap();
                let _ = tx.send(a);
            }
            let mut b = buf.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("server did not start: {}", stderr.lock().unwrap()));
    Server {
        child,
        addr,
        stderr,
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request as the device's HTTP client writes it, with `headers` after Host.
fn request(addr: SocketAddr, path: &str, headers: &[(String, String)]) -> Resp {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.0\r\nHost: {}:{}\r\n",
        addr.ip(),
        addr.port()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // HTTP/1.0 with Connection: close: the response ends with the connection.
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let mut hs = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut hs);
    let n = match r.parse(&raw).unwrap() {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => panic!("incomplete response: {raw:?}"),
    };
    let resp = Resp {
        status: r.code.unwrap(),
        headers: r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: raw[n..].to_vec(),
    };
    if let Some(len) = resp.header("content-length") {
        assert_eq!(
            len.parse::<usize>().unwrap(),
            resp.body.len(),
            "Content-Length"
        );
    }
    resp
}

/// The request headers of ESP8266httpUpdate::handleUpdate, in its order.
struct Esp {
    mac: String,
    free: u64,
    sketch_md5: String,
    chip: u64,
    spiffs: bool,
    /// getAvailableVersion()'s request (mode `version`).
    query: bool,
    version: Option<String>,
}

impl Esp {
    fn new(mac: &str) -> Esp {
        Esp {
            mac: mac.into(),
            free: 1_000_000,
            sketch_md5: md5hex(b"the sketch running now"),
            chip: 4 << 20,
            spiffs: false,
            query: false,
            version: None,
        }
    }
    fn headers(&self) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = [
            ("User-Agent", "ESP8266-http-Update".to_string()),
            ("Connection", "close".to_string()),
            ("x-ESP8266-Chip-ID", "1234567".to_string()),
            ("x-ESP8266-STA-MAC", self.mac.clone()),
            ("x-ESP8266-AP-MAC", ap_mac(&self.mac)),
            ("x-ESP8266-free-space", self.free.to_string()),
            ("x-ESP8266-sketch-size", "373940".to_string()),
            ("x-ESP8266-sketch-md5", self.sketch_md5.clone()),
            ("x-ESP8266-chip-size", self.chip.to_string()),
            ("x-ESP8266-sdk-version", "2.2.2-dev(38a443e)".to_string()),
            (
                "x-ESP8266-mode",
                if self.query {
                    "version"
                } else if self.spiffs {
                    "spiffs"
                } else {
                    "sketch"
                }
                .to_string(),
            ),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        if let Some(v) = &self.version {
            h.push(("x-ESP8266-version".into(), v.clone()));
        }
        h
    }
    fn get(&self, srv: &Server) -> Resp {
        request(srv.addr, "/esp/update/arduino.php", &self.headers())
    }
}

/// The soft-AP MAC is the station MAC with the locally-administered bit set.
fn ap_mac(sta: &str) -> String {
    let first = u8::from_str_radix(&sta[..2], 16).unwrap() | 2;
    format!("{first:02X}{}", &sta[2..])
}

/// A sketch image header for `size_code` (high nibble of byte 3), then filler.
fn sketch(len: usize, size_code: u8, seed: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    v[..4].copy_from_slice(&[0xE9, 3, 2, size_code << 4]);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn put(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Replaces the manifest the way an operator should: write aside, rename over.
fn set_manifest(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("fleet.toml");
    let tmp = dir.join(".fleet.toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

fn assert_image(r: &Resp, file: &[u8]) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        r.header("content-length"),
        Some(file.len().to_string().as_str())
    );
    assert!(r.body == file, "served bytes differ from the file");
    // The device verifies the image against x-MD5.
    assert_eq!(r.header("x-md5"), Some(md5hex(&r.body).as_str()));
}

const DOOR: &str = "18:FE:AA:AA:AA:AA";
const TEMP: &str = "18:FE:AA:AA:AA:BB";

fn fleet(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, PathBuf) {
    let app = sketch(40_000, 4, 1);
    let door = gzip(&sketch(60_000, 4, 2));
    let door_fs = vec![0x5Au8; 8192];
    // A signed file: payload ‖ 256-byte signature ‖ u32 LE 256. Served as is.
    let mut temp = sketch(30_000, 2, 3);
    temp.extend_from_slice(&[0xA5; 256]);
    temp.extend_from_slice(&256u32.to_le_bytes());
    put(dir, "app-2.1.bin", &app);
    put(dir, "door-7.bin.gz", &door);
    put(dir, "door-fs-3.bin", &door_fs);
    put(dir, "temp-1.0.0.bin.signed", &temp);
    let m = set_manifest(
        dir,
        &format!(
            r#"
[default]
sketch = "app-2.1.bin"
version = "2.1"

[groups.door]
macs = ["{}"]
sketch = "door-7.bin.gz"
version = "DOOR-7-g14f53a19"
fs = "door-fs-3.bin"
fs_version = "DOOR-FS-3"
layout = "4M2M"

[devices."{}"]
sketch = "temp-1.0.0.bin.signed"
"#,
            DOOR.to_lowercase(),
            TEMP
        ),
    );
    (app, door, door_fs, temp, m)
}

fn start_fleet() -> (tempfile::TempDir, Server, Vec<Vec<u8>>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (app, door, door_fs, temp, m) = fleet(dir.path());
    let log = dir.path().join("checkin.jsonl");
    let srv = serve(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ]);
    (dir, srv, vec![app, door, door_fs, temp], log)
}

#[test]
fn sketch_mode_outdated_gets_image_current_gets_304() {
    let (_d, srv, img, _) = start_fleet();
    let (app, door, _, temp) = (&img[0], &img[1], &img[2], &img[3]);

    // Default entry, old version and other MD5: the image.
    let mut esp = Esp::new("5C:CF:7F:01:02:03");
    esp.version = Some("2.0".into());
    assert_image(&esp.get(&srv), app);
    assert!(esp
        .get(&srv)
        .header("content-disposition")
        .unwrap()
        .contains("app-2.1.bin"));
    // Same version as the manifest: 304, no body.
    esp.version = Some("2.1".into());
    let r = esp.get(&srv);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    // No version header but the MD5 of the image it runs: 304.
    esp.version = None;
    esp.sketch_md5 = md5hex(app);
    assert_eq!(esp.get(&srv).status, 304);

    // Group (MAC written lowercase in the manifest): the gzip image, as it is.
    let mut door_esp = Esp::new(DOOR);
    door_esp.version = Some("DOOR-6".into());
    assert_image(&door_esp.get(&srv), door);
    // Running the inflated image of that gzip file: 304.
    door_esp.sketch_md5 = md5hex(&sketch(60_000, 4, 2));
    assert_eq!(door_esp.get(&srv).status, 304);

    // Device entry without a version: the signed file as it is; then MD5 of its payload.
    let mut temp_esp = Esp::new(TEMP);
    temp_esp.version = Some("TEMP-0.9".into());
    assert_image(&temp_esp.get(&srv), temp);
    temp_esp.sketch_md5 = md5hex(&temp[..temp.len() - 260]);
    assert_eq!(temp_esp.get(&srv).status, 304);
}

#[test]
fn spiffs_mode_uses_the_filesystem_image_and_its_version() {
    let (_d, srv, img, _) = start_fleet();
    let mut esp = Esp::new(DOOR);
    esp.spiffs = true;
    esp.version = Some("DOOR-FS-2".into());
    assert_image(&esp.get(&srv), &img[2]);
    esp.version = Some("DOOR-FS-3".into());
    assert_eq!(esp.get(&srv).status, 304);
    // The default entry has no filesystem image.
    let mut other = Esp::new("5C:CF:7F:00:00:01");
    other.spiffs = true;
    let r = other.get(&srv);
    assert_eq!(r.status, 404);
    assert!(r.text().contains("no filesystem image"), "{}", r.text());
}

#[test]
fn unknown_mac_without_default_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let img = sketch(5000, 4, 9);
    put(dir.path(), "a.bin", &img);
    let m = set_manifest(
        dir.path(),
        &format!("[devices.\"{TEMP}\"]\nsketch = \"a.bin\"\n"),
    );
    let srv = serve(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
    ]);
    let r = Esp::new("5C:CF:7F:99:99:99").get(&srv);
    assert_eq!(r.status, 404);
    assert!(r.text().contains("5C:CF:7F:99:99:99"), "{}", r.text());
    assert_image(&Esp::new(TEMP).get(&srv), &img);
}

#[test]
fn requests_without_user_agent_or_headers_are_403() {
    let (_d, srv, _, log) = start_fleet();
    let full = Esp::new(DOOR).headers();
    let mut sent = 0;
    // No User-Agent, a browser's User-Agent.
    let no_ua: Vec<_> = full
        .iter()
        .filter(|(n, _)| n != "User-Agent")
        .cloned()
        .collect();
    let r = request(srv.addr, "/u", &no_ua);
    sent += 1;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("User-Agent"), "{}", r.text());
    let mut browser = full.clone();
    browser[0].1 = "Mozilla/5.0".into();
    assert_eq!(request(srv.addr, "/u", &browser).status, 403);
    sent += 1;
    // Each required header missing in turn: 403 naming it.
    for name in [
        "x-ESP8266-STA-MAC",
        "x-ESP8266-AP-MAC",
        "x-ESP8266-free-space",
        "x-ESP8266-sketch-size",
        "x-ESP8266-sketch-md5",
        "x-ESP8266-chip-size",
        "x-ESP8266-sdk-version",
        "x-ESP8266-mode",
    ] {
        let h: Vec<_> = full.iter().filter(|(n, _)| n != name).cloned().collect();
        let r = request(srv.addr, "/u", &h);
        sent += 1;
        assert_eq!(r.status, 403, "without {name}");
        assert!(r.text().contains(name), "reason names {name}: {}", r.text());
    }
    // Malformed values.
    for (name, value) in [
        ("x-ESP8266-STA-MAC", "not-a-mac"),
        ("x-ESP8266-free-space", "lots"),
        ("x-ESP8266-sketch-md5", "1234"),
        ("x-ESP8266-mode", "firmware"),
    ] {
        let h: Vec<_> = full
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    if n == name {
                        value.to_string()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        let r = request(srv.addr, "/u", &h);
        sent += 1;
        assert_eq!(r.status, 403, "{name}: {value}");
        assert!(r.text().contains(name), "{}", r.text());
    }
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), sent);
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["decision"], "forbidden");
        assert_eq!(v["status"], 403);
    }
}

#[test]
fn image_that_cannot_fit_is_refused() {
    let (_d, srv, img, _) = start_fleet();
    // Free sketch space one byte short.
    let mut esp = Esp::new("5C:CF:7F:01:02:04");
    esp.free = img[0].len() as u64 - 1;
    let r = esp.get(&srv);
    assert_eq!(r.status, 409);
    assert!(r.text().contains("free sketch space"), "{}", r.text());
    esp.free = img[0].len() as u64;
    assert_image(&esp.get(&srv), &img[0]);
    // Built for 4 MB flash, the chip has 1 MB (the device's own check, -107).
    esp.chip = 1 << 20;
    let r = esp.get(&srv);
    assert_eq!(r.status, 409);
    assert!(r.text().contains("flash"), "{}", r.text());
    // Filesystem image larger than the chip.
    let mut fs = Esp::new(DOOR);
    fs.spiffs = true;
    fs.chip = 4096;
    let r = fs.get(&srv);
    assert_eq!(r.status, 409);
    assert!(
        r.text().contains("larger than the flash chip"),
        "{}",
        r.text()
    );
}

#[test]
fn filesystem_image_larger_than_layout_fs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "a.bin", &sketch(5000, 0, 1));
    // 1M64: a 64 KB filesystem.
    put(dir.path(), "fs.bin", &vec![0u8; 70_000]);
    let m = set_manifest(
        dir.path(),
        "[default]\nsketch = \"a.bin\"\nfs = \"fs.bin\"\nfs_version = \"F2\"\nlayout = \"1M64\"\n",
    );
    let srv = serve(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
    ]);
    let mut esp = Esp::new(DOOR);
    esp.spiffs = true;
    esp.chip = 1 << 20;
    esp.version = Some("F1".into());
    let r = esp.get(&srv);
    assert_eq!(r.status, 409);
    assert!(r.text().contains("1M64"), "{}", r.text());
}

fn synthetic_macs(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "5C:CF:7F:{:02X}:{:02X}:{:02X}",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            )
        })
        .collect()
}

fn updated(srv: &Server, macs: &[String]) -> Vec<bool> {
    macs.iter()
        .map(|m| {
            let mut e = Esp::new(m);
            e.version = Some("1.0".into());
            let r = e.get(srv);
            assert!(r.status == 200 || r.status == 304, "{}", r.status);
            r.status == 200
        })
        .collect()
}

#[test]
fn staged_rollout_30_percent_of_1000_then_60() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "app.bin", &sketch(1024, 4, 5));
    let m = set_manifest(
        dir.path(),
        "[default]\nsketch = \"app.bin\"\nversion = \"2.0\"\nrollout = 30\n",
    );
    let log = dir.path().join("log.jsonl");
    let srv = serve(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ]);
    let macs = synthetic_macs(1000);
    let t = Instant::now();
    let first = updated(&srv, &macs);
    let n30 = first.iter().filter(|&&u| u).count();
    // Within ±5 % of 300 (and of 600 below), the stricter reading of "±5 %".
    assert!((285..=315).contains(&n30), "30 % of 1000: {n30}");
    // Stable: the same devices on every request.
    assert_eq!(updated(&srv, &macs), first);
    // The log says why each was held.
    let text = std::fs::read_to_string(&log).unwrap();
    let held = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["decision"] == "held")
        .count();
    assert_eq!(held, 2 * (1000 - n30));
    // Raised to 60 % (manifest re-read): a superset.
    set_manifest(
        dir.path(),
        "[default]\nsketch = \"app.bin\"\nversion = \"2.0\"\nrollout = 60\n",
    );
    let second = updated(&srv, &macs);
    let n60 = second.iter().filter(|&&u| u).count();
    assert!((570..=630).contains(&n60), "60 % of 1000: {n60}");
    assert!(
        first.iter().zip(&second).all(|(a, b)| !a || *b),
        "devices chosen at 30 % stay chosen"
    );
    assert!(t.elapsed() < Duration::from_secs(30));
}

#[test]
fn checkin_log_has_one_json_line_per_request() {
    let (_d, srv, _, log) = start_fleet();
    let mut esp = Esp::new(DOOR);
    esp.version = Some("DOOR-6".into());
    assert_eq!(esp.get(&srv).status, 200);
    esp.version = Some("DOOR-7-g14f53a19".into());
    assert_eq!(esp.get(&srv).status, 304);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["mac"], DOOR);
    assert_eq!(lines[0]["version"], "DOOR-6");
    assert_eq!(lines[0]["decision"], "update");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["image"], "door-7.bin.gz");
    assert_eq!(lines[0]["entry"], "group door");
    assert_eq!(lines[1]["version"], "DOOR-7-g14f53a19");
    assert_eq!(lines[1]["decision"], "current");
    assert_eq!(lines[1]["status"], 304);
}

#[test]
fn manifest_is_reread_on_change_and_a_bad_edit_keeps_the_last_good_one() {
    let (d, srv, img, _) = start_fleet();
    let m = d.path().join("fleet.toml");
    let esp = Esp::new("5C:CF:7F:0A:0B:0C");
    assert_image(&esp.get(&srv), &img[0]);
    let new = sketch(12_345, 4, 77);
    put(d.path(), "app-2.2.bin", &new);
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("app-2.1.bin", "app-2.2.bin");
    set_manifest(d.path(), &text);
    assert_image(&esp.get(&srv), &new);
    // A broken edit: the server says so and keeps serving the last good manifest.
    set_manifest(d.path(), "[default\nsketch = ");
    assert_image(&esp.get(&srv), &new);
    // The stderr line precedes the response but reaches us through the drain thread.
    let t = Instant::now();
    while !srv
        .stderr
        .lock()
        .unwrap()
        .contains("still using the manifest")
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no warning about the bad manifest: {}",
            srv.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn without_manifest_the_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let img = sketch(3000, 4, 8);
    std::fs::create_dir(dir.path().join("esp")).unwrap();
    put(&dir.path().join("esp"), "arduino.bin", &img);
    let srv = serve(&["--dir", dir.path().to_str().unwrap()]);
    let esp = Esp::new(DOOR);
    assert_image(&request(srv.addr, "/esp/arduino.bin", &esp.headers()), &img);
    let mut cur = Esp::new(DOOR);
    cur.sketch_md5 = md5hex(&img);
    assert_eq!(
        request(srv.addr, "/esp/arduino.bin", &cur.headers()).status,
        304
    );
    assert_eq!(
        request(srv.addr, "/esp/missing.bin", &esp.headers()).status,
        404
    );
    assert_eq!(
        request(srv.addr, "/esp/../../etc/passwd", &esp.headers()).status,
        404
    );
    // A directory is not an image.
    assert_eq!(request(srv.addr, "/esp", &esp.headers()).status, 404);
}

#[test]
fn startup_errors_exit_1_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "a.bin", &sketch(100, 4, 1));
    let cases: [(&str, &str); 7] = [
        ("[default\n", "manifest"),
        (
            "[default]\nsketch = \"a.bin\"\nrolout = 5\n",
            "unknown field `rolout`",
        ),
        (
            "[groups.g]\nmacs = []\nsketch = \"a.bin\"\nverison = \"1\"\n",
            "unknown field `verison`",
        ),
        ("[default]\nsketch = \"missing.bin\"\n", "missing.bin"),
        (
            "[default]\nsketch = \"a.bin\"\nfs = \"a.bin\"\n",
            "fs_version",
        ),
        ("[default]\nsketch = \"a.bin\"\nrollout = 130\n", "rollout"),
        (
            "[groups.g]\nmacs = [\"18:FE:AA:AA:AA\"]\nsketch = \"a.bin\"\n",
            "not a MAC",
        ),
    ];
    for (text, want) in cases {
        let m = set_manifest(dir.path(), text);
        let o = Command::new(OTATOOL)
            .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir.path())
            .arg("--manifest")
            .arg(&m)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{text}: {err}");
        assert!(
            err.starts_with("otatool: error: ") && err.contains(want),
            "{text}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one error line: {err}");
    }
    let o = Command::new(OTATOOL)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            "/nonexistent/dir",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a directory"));
}

#[test]
fn default_listen_address_is_loopback() {
    let o = Command::new(OTATOOL)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("[default: 127.0.0.1:8266]"), "{help}");
}

#[test]
fn two_instances_decide_alike() {
    // Stateless: a second server over the same files answers every device the same way,
    // so instances behind a load balancer agree (rollout included).
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "app.bin", &sketch(2048, 4, 6));
    let m = set_manifest(
        dir.path(),
        "[default]\nsketch = \"app.bin\"\nversion = \"3.0\"\nrollout = 50\n",
    );
    let args = [
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
    ];
    let a = serve(&args);
    let b = serve(&args);
    assert_ne!(a.addr, b.addr);
    let macs = synthetic_macs(200);
    let from_a = updated(&a, &macs);
    let from_b = updated(&b, &macs);
    assert_eq!(from_a, from_b);
    let n = from_a.iter().filter(|&&u| u).count();
    assert!(
        n > 0 && n < macs.len(),
        "a 50 % rollout splits the fleet: {n}"
    );
}

#[test]
fn only_get_is_answered() {
    let (_d, srv, _, log) = start_fleet();
    let mut s = TcpStream::connect_timeout(&srv.addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"POST /u HTTP/1.0\r\nUser-Agent: ESP8266-http-Update\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.0 405") || raw.starts_with(b"HTTP/1.1 405"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // Not a device check-in: nothing logged.
    assert!(!log.exists() || std::fs::read_to_string(&log).unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = serve(&["--dir", dir.path().to_str().unwrap()]);
    // SAFETY: signalling our own child process by its id.
    let rc = unsafe { libc::kill(srv.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "server still running"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn get_available_version_is_answered_with_x_version() {
    let (_d, srv, img, log) = start_fleet();
    let mut esp = Esp::new("5C:CF:7F:01:02:05");
    esp.query = true;
    esp.version = Some("2.0".into());
    let r = esp.get(&srv);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-version"), Some("2.1"));
    assert_eq!(r.header("x-md5"), Some(md5hex(&img[0]).as_str()));
    assert!(r.body.is_empty(), "no image in a version answer");
    // The device entry names no version: nothing to tell.
    let mut temp = Esp::new(TEMP);
    temp.query = true;
    let r = temp.get(&srv);
    assert_eq!(r.status, 404);
    assert!(r.text().contains("no version"), "{}", r.text());
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["mode"], "version");
    assert_eq!(first["decision"], "version");
}

#[test]
fn get_available_version_outside_the_rollout_reports_the_own_version() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "app.bin", &sketch(1024, 4, 5));
    let m = set_manifest(
        dir.path(),
        "[default]\nsketch = \"app.bin\"\nversion = \"5.0\"\nrollout = 50\n",
    );
    let srv = serve(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
    ]);
    let mut offered = std::collections::BTreeSet::new();
    for mac in synthetic_macs(40) {
        let mut esp = Esp::new(&mac);
        esp.query = true;
        esp.version = Some("4.0".into());
        let r = esp.get(&srv);
        assert_eq!(r.status, 200);
        let v = r.header("x-version").unwrap().to_string();
        // Offered the new version exactly when an update request would get the image.
        let mut upd = Esp::new(&mac);
        upd.version = Some("4.0".into());
        let gets_image = upd.get(&srv).status == 200;
        assert_eq!(v == "5.0", gets_image, "{mac}");
        offered.insert(v);
    }
    assert_eq!(
        offered.len(),
        2,
        "both answers occur in a 50 % rollout: {offered:?}"
    );
}

#[test]
fn checkin_log_goes_to_stdout_without_log_option() {
    let dir = tempfile::tempdir().unwrap();
    let img = sketch(2000, 4, 12);
    put(dir.path(), "a.bin", &img);
    let mut child = Command::new(OTATOOL)
        .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .parse()
        .unwrap();
    let srv = Server {
        child,
        addr,
        stderr: Arc::new(Mutex::new(String::new())),
    };
    let mut esp = Esp::new(DOOR);
    esp.version = Some("0.1".into());
    assert_image(&request(srv.addr, "/a.bin", &esp.headers()), &img);
    let mut srv = srv;
    let mut out = BufReader::new(srv.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["mac"], DOOR);
    assert_eq!(v["version"], "0.1");
    assert_eq!(v["decision"], "update");
    assert_eq!(v["entry"], "path");
    assert_eq!(v["image_md5"], md5hex(&img));
}

#[test]
fn unusable_images_are_500() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "notes.txt", b"hello, not firmware");
    put(dir.path(), "empty.bin", b"");
    let srv = serve(&["--dir", dir.path().to_str().unwrap()]);
    let esp = Esp::new(DOOR);
    let r = request(srv.addr, "/notes.txt", &esp.headers());
    assert_eq!(r.status, 500);
    assert!(r.text().contains("not a sketch image"), "{}", r.text());
    let r = request(srv.addr, "/empty.bin", &esp.headers());
    assert_eq!(r.status, 500);
    assert!(r.text().contains("empty"), "{}", r.text());
    // A filesystem image has no magic byte to check.
    let mut fs = Esp::new(DOOR);
    fs.spiffs = true;
    assert_image(
        &request(srv.addr, "/notes.txt", &fs.headers()),
        b"hello, not firmware",
    );
}
