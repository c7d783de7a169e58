//! `otatool serve`: the server side of ESPhttpUpdate (ESP8266httpUpdate.cpp).
//!
//! The device sends `GET <url> HTTP/1.0` with `User-Agent: ESP8266-http-Update` and
//! `x-ESP8266-*` headers describing itself; it expects 200 with Content-Length, `x-MD5` and
//! the image, or 304 when there is nothing new. Every answer is decided from the request,
//! the manifest and the image files alone (the check-in log is written, never read), so any
//! number of instances behind a load balancer serve one fleet consistently.

use super::manifest::{check_rel_path, in_rollout, normalize_mac, Entry, Manifest, Source};
use super::md5_hex;
use crate::{Error, Result};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const USER_AGENT: &str = "ESP8266-http-Update";

/// The headers ESPhttpUpdate always sends (the seed documentation's PHP example checks the
/// same list, plus the mode, without which sketch and filesystem requests look alike).
pub const REQUIRED: [&str; 8] = [
    "x-ESP8266-STA-MAC",
    "x-ESP8266-AP-MAC",
    "x-ESP8266-free-space",
    "x-ESP8266-sketch-size",
    "x-ESP8266-sketch-md5",
    "x-ESP8266-chip-size",
    "x-ESP8266-sdk-version",
    "x-ESP8266-mode",
];

#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub manifest: Option<PathBuf>,
    pub listen: SocketAddr,
    /// Check-in log (JSON lines, appended); standard output without it.
    pub log: Option<PathBuf>,
}

/// What a device said about itself.
#[derive(Clone, Debug)]
pub struct Device {
    pub sta_mac: String,
    pub ap_mac: String,
    pub free_space: u64,
    pub sketch_size: u64,
    pub sketch_md5: String,
    pub chip_size: u64,
    pub sdk_version: String,
    pub fs: bool,
    /// `x-ESP8266-mode: version`: getAvailableVersion() asks which version is on offer.
    pub query: bool,
    pub version: Option<String>,
}

/// The answer to one request.
#[derive(Debug)]
pub enum Decision {
    /// 403: not ESPhttpUpdate, or headers missing or malformed.
    Forbidden(String),
    /// 404: no image for this device (or no such file without a manifest).
    NoImage(String),
    /// 304: the device already runs the image.
    Current(String),
    /// 304: an image exists but the device is outside its staged rollout.
    Held(String),
    /// 409: the image cannot fit the device (free space, chip or FS size).
    TooBig(String),
    /// 500: the configured image is unusable (unreadable, empty, not a sketch image).
    BadImage(String),
    /// 200 without a body: `x-version` (and `x-MD5`) answer getAvailableVersion().
    Version {
        version: String,
        md5: Option<String>,
    },
    /// 200: send `data`.
    Update {
        name: String,
        data: Vec<u8>,
        md5: String,
    },
}

impl Decision {
    pub fn status(&self) -> StatusCode {
        match self {
            Decision::Forbidden(_) => StatusCode::FORBIDDEN,
            Decision::NoImage(_) => StatusCode::NOT_FOUND,
            Decision::Current(_) | Decision::Held(_) => StatusCode::NOT_MODIFIED,
            Decision::TooBig(_) => StatusCode::CONFLICT,
            Decision::BadImage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Decision::Update { .. } | Decision::Version { .. } => StatusCode::OK,
        }
    }
    /// The word the check-in log records.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Forbidden(_) => "forbidden",
            Decision::NoImage(_) => "no-image",
            Decision::Current(_) => "current",
            Decision::Held(_) => "held",
            Decision::TooBig(_) => "too-big",
            Decision::BadImage(_) => "bad-image",
            Decision::Version { .. } => "version",
            Decision::Update { .. } => "update",
        }
    }
    pub fn reason(&self) -> String {
        match self {
            Decision::Forbidden(r)
            | Decision::NoImage(r)
            | Decision::Current(r)
            | Decision::Held(r)
            | Decision::TooBig(r)
            | Decision::BadImage(r) => r.clone(),
            Decision::Version { version, .. } => format!("offers version {version}"),
            Decision::Update { name, data, .. } => format!("sending {name} ({} bytes)", data.len()),
        }
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Checks the user agent and the headers; the reason says what is wrong.
pub fn parse_device(h: &HeaderMap) -> std::result::Result<Device, String> {
    if header_str(h, "user-agent") != Some(USER_AGENT) {
        return Err(format!(
            "only for ESP8266 updater: User-Agent must be {USER_AGENT}"
        ));
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|n| header_str(h, n).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "only for ESP8266 updater: missing header(s) {}",
            missing.join(", ")
        ));
    }
    let get = |n: &str| header_str(h, n).unwrap_or_default();
    let num = |n: &str| {
        get(n)
            .parse::<u64>()
            .map_err(|_| format!("header {n}: '{}' is not a number", get(n)))
    };
    let mac = |n: &str| {
        normalize_mac(get(n))
            .ok_or_else(|| format!("header {n}: '{}' is not a MAC address", get(n)))
    };
    let md5 = get("x-ESP8266-sketch-md5").to_ascii_lowercase();
    if md5.len() != 32 || !md5.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "header x-ESP8266-sketch-md5: '{md5}' is not an MD5"
        ));
    }
    let (fs, query) = match get("x-ESP8266-mode") {
        "sketch" => (false, false),
        "spiffs" => (true, false),
        "version" => (false, true),
        m => {
            return Err(format!(
                "header x-ESP8266-mode: '{m}' (expected sketch, spiffs or version)"
            ))
        }
    };
    Ok(Device {
        sta_mac: mac("x-ESP8266-STA-MAC")?,
        ap_mac: mac("x-ESP8266-AP-MAC")?,
        free_space: num("x-ESP8266-free-space")?,
        sketch_size: num("x-ESP8266-sketch-size")?,
        sketch_md5: md5,
        chip_size: num("x-ESP8266-chip-size")?,
        sdk_version: get("x-ESP8266-sdk-version").to_string(),
        fs,
        query,
        version: header_str(h, "x-ESP8266-version")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
    })
}

/// MD5s a device may report while running `data`: the file's, the payload's of a signed
/// file (the Updater drops the signature) and the inflated image's of a gzip file.
pub fn running_md5s(data: &[u8]) -> Vec<String> {
    let mut out = vec![md5_hex(data)];
    let payload = crate::sign::split(data).map_or(data, |s| s.payload);
    if payload.len() != data.len() {
        out.push(md5_hex(payload));
    }
    if payload.starts_with(&[0x1f, 0x8b]) {
        // Bounded: no ESP8266 flash holds more than 16 MB.
        let mut inflated = Vec::new();
        let r = flate2::read::GzDecoder::new(payload)
            .take(16 << 20)
            .read_to_end(&mut inflated);
        if r.is_ok() {
            out.push(md5_hex(&inflated));
        }
    }
    out
}

/// The image for one request: what the manifest names, or the requested path without one.
struct Target {
    file: String,
    version: Option<String>,
    rollout: f64,
    seed: String,
    layout: Option<String>,
    source: String,
}

fn target(
    manifest: Option<&Manifest>,
    dev: &Device,
    path: &str,
) -> std::result::Result<Target, String> {
    let Some(m) = manifest else {
        // The "simple updater": the URL names the file.
        let file = path.trim_start_matches('/').to_string();
        check_rel_path(&file).map_err(|e| e.to_string())?;
        return Ok(Target {
            seed: file.clone(),
            file,
            version: None,
            rollout: 100.0,
            layout: None,
            source: "path".into(),
        });
    };
    let (e, src): (&Entry, Source) = m.select(&dev.sta_mac).ok_or_else(|| {
        format!(
            "no image configured for {} (no [default] in the manifest)",
            dev.sta_mac
        )
    })?;
    let (file, version) = if dev.fs {
        (e.fs.clone(), e.fs_version.clone())
    } else {
        (e.sketch.clone(), e.version.clone())
    };
    let file = file.ok_or_else(|| {
        format!(
            "no {} image configured for {} ({src})",
            if dev.fs { "filesystem" } else { "sketch" },
            dev.sta_mac
        )
    })?;
    Ok(Target {
        file,
        version,
        rollout: e.rollout_percent(),
        seed: e.seed().to_string(),
        layout: e.layout.clone(),
        source: src.to_string(),
    })
}

/// Decides one request from its headers, the manifest and the files (blocking I/O).
pub fn decide(
    dir: &Path,
    manifest: Option<&Manifest>,
    headers: &HeaderMap,
    path: &str,
) -> (Decision, Option<Device>, Option<String>) {
    let dev = match parse_device(headers) {
        Ok(d) => d,
        Err(r) => return (Decision::Forbidden(r), None, None),
    };
    let t = match target(manifest, &dev, path) {
        Ok(t) => t,
        Err(r) => return (Decision::NoImage(r), Some(dev), None),
    };
    let d = decide_for(dir, &dev, &t);
    (d, Some(dev), Some(t.source))
}

fn decide_for(dir: &Path, dev: &Device, t: &Target) -> Decision {
    let path = dir.join(&t.file);
    if !path.is_file() {
        return Decision::NoImage(format!("no image {} in the served directory", t.file));
    }
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => return Decision::BadImage(format!("image {}: {e}", t.file)),
    };
    if data.is_empty() {
        return Decision::BadImage(format!("image {} is empty", t.file));
    }
    if dev.query {
        return offer_version(dev, t, &data);
    }
    if let (Some(want), Some(have)) = (&t.version, &dev.version) {
        if want == have {
            return Decision::Current(format!("runs version {have}"));
        }
    }
    if !dev.fs && running_md5s(&data).contains(&dev.sketch_md5) {
        return Decision::Current(format!("runs {} (sketch MD5 {})", t.file, dev.sketch_md5));
    }
    if !in_rollout(&t.seed, &dev.sta_mac, t.rollout) {
        return Decision::Held(format!("outside the {} % rollout of {}", t.rollout, t.file));
    }
    let len = data.len() as u64;
    if dev.fs {
        if len > dev.chip_size {
            return Decision::TooBig(format!(
                "filesystem image {} ({len} bytes) is larger than the flash chip ({} bytes)",
                t.file, dev.chip_size
            ));
        }
        if let Some(l) = t
            .layout
            .as_deref()
            .and_then(|l| crate::layout::find(l).ok())
        {
            let fs = u64::from(l.fs_end - l.fs_start);
            if len > fs {
                return Decision::TooBig(format!(
                    "filesystem image {} ({len} bytes) is larger than the FS of layout {} ({fs} bytes)",
                    t.file, l.name
                ));
            }
        }
    } else {
        if len > dev.free_space {
            return Decision::TooBig(format!(
                "image {} ({len} bytes) does not fit the device's free sketch space ({} bytes)",
                t.file, dev.free_space
            ));
        }
        // The device peeks these 4 bytes before it writes anything (-106 / -107).
        match data[0] {
            0xE9 if data.len() >= 4 => {
                if let Some(size) = crate::image::FlashSize::from_code(data[3] >> 4) {
                    if u64::from(size.bytes()) > dev.chip_size {
                        return Decision::TooBig(format!(
                            "image {} is built for {size} flash, the device has {} bytes",
                            t.file, dev.chip_size
                        ));
                    }
                }
            }
            0xE9 | 0x1F => {}
            b => {
                return Decision::BadImage(format!(
                "{} is not a sketch image (first byte 0x{b:02X}, the device wants 0xE9 or gzip)",
                t.file
            ))
            }
        }
    }
    let md5 = md5_hex(&data);
    Decision::Update {
        name: t.file.clone(),
        data,
        md5,
    }
}

/// getAvailableVersion(): the version of the sketch image this device would get. A device
/// outside the rollout is told its own version (nothing new for it yet).
fn offer_version(dev: &Device, t: &Target, data: &[u8]) -> Decision {
    let Some(v) = &t.version else {
        return Decision::NoImage(format!(
            "no version named for {} in the manifest (getAvailableVersion needs one)",
            t.file
        ));
    };
    if in_rollout(&t.seed, &dev.sta_mac, t.rollout) {
        return Decision::Version {
            version: v.clone(),
            md5: Some(md5_hex(data)),
        };
    }
    match &dev.version {
        Some(own) => Decision::Version {
            version: own.clone(),
            md5: None,
        },
        None => Decision::NoImage(format!("outside the {} % rollout of {}", t.rollout, t.file)),
    }
}

/// Shared by all requests: paths, the last manifest read, the log.
pub struct Shared {
    dir: PathBuf,
    manifest_path: Option<PathBuf>,
    manifest: Mutex<Option<(Vec<u8>, Arc<Manifest>)>>,
    log: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    pub fn new(cfg: &Config) -> Result<Shared> {
        if !cfg.dir.is_dir() {
            return Err(Error::invalid(format!(
                "{}: not a directory",
                cfg.dir.display()
            )));
        }
        let log: Box<dyn Write + Send> = match &cfg.log {
            Some(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| Error::io(p, e))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        let s = Shared {
            dir: cfg.dir.clone(),
            manifest_path: cfg.manifest.clone(),
            manifest: Mutex::new(None),
            log: Mutex::new(log),
        };
        // A bad manifest at start is an error; later, the last good one stays in use.
        s.current_manifest()?;
        Ok(s)
    }

    /// The manifest, re-read when the file's bytes changed since the last request.
    fn current_manifest(&self) -> Result<Option<Arc<Manifest>>> {
        let Some(p) = &self.manifest_path else {
            return Ok(None);
        };
        let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
        let mut cache = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((old, m)) = cache.as_ref() {
            if *old == bytes {
                return Ok(Some(m.clone()));
            }
        }
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| Error::invalid(format!("{}: not UTF-8", p.display())))?;
        let m = Arc::new(
            Manifest::parse(&text, &self.dir)
                .map_err(|e| Error::invalid(format!("{}: {e}", p.display())))?,
        );
        if cache.is_some() {
            eprintln!("otatool serve: manifest {} reloaded", p.display());
        }
        *cache = Some((bytes, m.clone()));
        Ok(Some(m))
    }

    fn manifest_or_last(&self) -> Option<Arc<Manifest>> {
        match self.current_manifest() {
            Ok(m) => m,
            Err(e) => {
                eprintln!("otatool serve: {e}; still using the manifest read before");
                let cache = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
                cache.as_ref().map(|(_, m)| m.clone())
            }
        }
    }

    /// One request, start to end: decision and log line.
    pub fn handle(&self, headers: &HeaderMap, path: &str, peer: Option<SocketAddr>) -> Decision {
        let manifest = self.manifest_or_last();
        let (d, dev, source) = decide(&self.dir, manifest.as_deref(), headers, path);
        self.log_line(&d, dev.as_ref(), source.as_deref(), headers, path, peer);
        d
    }

    fn log_line(
        &self,
        d: &Decision,
        dev: Option<&Device>,
        source: Option<&str>,
        headers: &HeaderMap,
        path: &str,
        peer: Option<SocketAddr>,
    ) {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |t| t.as_secs_f64());
        let (image, md5) = match d {
            Decision::Update { name, md5, .. } => (Some(name.as_str()), Some(md5.as_str())),
            _ => (None, None),
        };
        let line = serde_json::json!({
            "time": time,
            "remote": peer.map(|p| p.to_string()),
            "path": path,
            // Raw header when the request was refused before it could be parsed.
            "mac": dev.map(|d| d.sta_mac.clone()).or_else(|| header_str(headers, "x-ESP8266-STA-MAC").map(str::to_string)),
            "mode": dev.map(|d| if d.query { "version" } else if d.fs { "spiffs" } else { "sketch" }),
            "version": dev.and_then(|d| d.version.clone()),
            "sketch_md5": dev.map(|d| d.sketch_md5.clone()),
            "free_space": dev.map(|d| d.free_space),
            "sketch_size": dev.map(|d| d.sketch_size),
            "chip_size": dev.map(|d| d.chip_size),
            "sdk_version": dev.map(|d| d.sdk_version.clone()),
            "ap_mac": dev.map(|d| d.ap_mac.clone()),
            "entry": source,
            "status": d.status().as_u16(),
            "decision": d.label(),
            "reason": d.reason(),
            "image": image,
            "image_md5": md5,
        });
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        // One write per line, so appends of several instances to one file do not interleave.
        let text = format!("{line}\n");
        if let Err(e) = log.write_all(text.as_bytes()).and_then(|_| log.flush()) {
            eprintln!("otatool serve: check-in log: {e}");
        }
    }
}

fn respond(d: Decision) -> Response {
    let status = d.status();
    match d {
        Decision::Update { name, data, md5 } => {
            let mut r = Response::new(Body::from(data));
            *r.status_mut() = status;
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&md5) {
                h.insert("x-MD5", v);
            }
            let base = Path::new(&name)
                .file_name()
                .map_or(name.clone(), |n| n.to_string_lossy().into_owned());
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename={base}")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Decision::Version { version, md5 } => {
            let mut r = status.into_response();
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&version) {
                h.insert("x-version", v);
            }
            if let Some(v) = md5.and_then(|m| HeaderValue::from_str(&m).ok()) {
                h.insert("x-MD5", v);
            }
            r
        }
        // 304 carries no body; the reason is in the log.
        Decision::Current(_) | Decision::Held(_) => status.into_response(),
        other => (status, format!("{}\n", other.reason())).into_response(),
    }
}

async fn handler(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "ESPhttpUpdate uses GET\n").into_response();
    }
    let path = uri.path().to_string();
    // File reads and hashing are blocking work: keep them off the async workers.
    match tokio::task::spawn_blocking(move || shared.handle(&headers, &path, Some(peer))).await {
        Ok(d) => respond(d),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handler).with_state(shared)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, before
/// the server announces itself, so a signal right after the announcement is not lost.
fn shutdown() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let err = |e: std::io::Error| Error::invalid(format!("cannot handle signals: {e}"));
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Serves until SIGINT or SIGTERM. Errors: directory, manifest, log file or address.
pub fn run(cfg: Config) -> Result<()> {
    let shared = Arc::new(Shared::new(&cfg)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("cannot start the server runtime: {e}")))?;
    rt.block_on(async move {
        let stop = shutdown()?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| Error::invalid(format!("cannot listen on {}: {e}", cfg.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::invalid(format!("listening socket: {e}")))?;
        eprintln!(
            "otatool serve: listening on http://{addr}/ (images from {}{})",
            cfg.dir.display(),
            cfg.manifest
                .as_ref()
                .map_or(String::new(), |m| format!(", manifest {}", m.display()))
        );
        axum::serve(
            listener,
            router(shared).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| Error::invalid(format!("server: {e}")))
    })
}
