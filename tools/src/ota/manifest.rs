//! The fleet manifest of `otatool serve`: which image each device gets.
//!
//! ```toml
//! [default]                      # every device not named below
//! sketch = "app-2.1.bin.gz.signed"
//! version = "2.1"                # what the sketch passes to ESPhttpUpdate.update()
//! rollout = 30                   # percent of devices, chosen by a stable hash of the MAC
//!
//! [groups.door]
//! macs = ["18:FE:AA:AA:AA:AA", "18:FE:AA:AA:AA:AB"]
//! sketch = "door-7.bin"
//! version = "DOOR-7-g14f53a19"
//! fs = "door-fs-3.bin"           # filesystem image (ESPhttpUpdate.updateFS)
//! fs_version = "DOOR-FS-3"       # the version updateFS() sends while it runs this one
//! layout = "4M2M"                # optional: refuse FS images larger than its FS
//!
//! [devices."18:FE:AA:AA:AA:BB"]
//! sketch = "temp-1.0.0.bin"
//! ```
//!
//! A device entry wins over a group, a group over `[default]`.

use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Sketch image, relative to the served directory.
    pub sketch: Option<String>,
    /// The version string a device running `sketch` reports (x-ESP8266-version).
    pub version: Option<String>,
    /// Filesystem image, relative to the served directory.
    pub fs: Option<String>,
    /// The version string a device sends with updateFS() while it has `fs`.
    pub fs_version: Option<String>,
    /// Percentage of this entry's devices that get the images (default 100).
    pub rollout: Option<f64>,
    /// Salt of the rollout hash (default: the version, else the image name), so raising the
    /// percentage of one release keeps the devices already chosen.
    pub rollout_seed: Option<String>,
    /// Flash layout (e.g. `4M2M`) whose FS size bounds filesystem images.
    pub layout: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub macs: Vec<String>,
    #[serde(flatten)]
    pub entry: Entry,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub default: Option<Entry>,
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    #[serde(default)]
    pub devices: BTreeMap<String, Entry>,
}

/// Where a device's entry came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Device,
    Group(String),
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Device => f.write_str("device"),
            Source::Group(g) => write!(f, "group {g}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// `AA:BB:CC:DD:EE:FF`, uppercase, as WiFi.macAddress() writes it; `None` if not a MAC.
pub fn normalize_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_uppercase())
}

/// A file name inside the served directory: relative, no `..`, no root.
pub fn check_rel_path(p: &str) -> Result<()> {
    let path = Path::new(p);
    if p.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Error::invalid(format!(
            "'{p}': image paths must be relative to --dir, without '..'"
        )));
    }
    Ok(())
}

impl Entry {
    fn check(&self, what: &str, dir: &Path) -> Result<()> {
        let e = |m: String| Error::invalid(format!("{what}: {m}"));
        if self.sketch.is_none() && self.fs.is_none() {
            return Err(e("names neither `sketch` nor `fs`".into()));
        }
        for p in [&self.sketch, &self.fs].into_iter().flatten() {
            check_rel_path(p).map_err(|x| e(x.to_string()))?;
            if !dir.join(p).is_file() {
                return Err(e(format!("image '{p}' not found in {}", dir.display())));
            }
        }
        // Without a version there is no way to tell that a device already has the
        // filesystem image (the MD5 header is the sketch's), so it would reflash forever.
        if self.fs.is_some() && self.fs_version.is_none() {
            return Err(e(
                "`fs` needs `fs_version` (the version updateFS() sends while it runs that image)"
                    .into(),
            ));
        }
        if let Some(r) = self.rollout {
            if !(0.0..=100.0).contains(&r) {
                return Err(e(format!("rollout {r} is not a percentage 0..100")));
            }
        }
        if let Some(l) = &self.layout {
            crate::layout::find(l).map_err(|x| e(x.to_string()))?;
        }
        Ok(())
    }

    pub fn rollout_percent(&self) -> f64 {
        self.rollout.unwrap_or(100.0)
    }

    pub fn seed(&self) -> &str {
        self.rollout_seed
            .as_deref()
            .or(self.version.as_deref())
            .or(self.sketch.as_deref())
            .or(self.fs.as_deref())
            .unwrap_or("")
    }
}

impl Manifest {
    /// Parses and checks a manifest against the served directory.
    pub fn parse(text: &str, dir: &Path) -> Result<Manifest> {
        let mut m: Manifest = toml::from_str(text).map_err(|e| {
            // One line, like every otatool error: the message and where, without the snippet.
            let at = e.span().map_or(String::new(), |s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            });
            let msg = e.message().trim().replace('\n', "; ");
            Error::invalid(format!("manifest: {msg}{at}"))
        })?;
        if let Some(d) = &m.default {
            d.check("[default]", dir)?;
        }
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut devices = BTreeMap::new();
        for (mac, entry) in std::mem::take(&mut m.devices) {
            let n = normalize_mac(&mac)
                .ok_or_else(|| Error::invalid(format!("[devices.\"{mac}\"]: not a MAC address")))?;
            entry.check(&format!("[devices.\"{mac}\"]"), dir)?;
            if devices.insert(n.clone(), entry).is_some() {
                return Err(Error::invalid(format!("device {n} is listed twice")));
            }
        }
        m.devices = devices;
        for (name, g) in m.groups.iter_mut() {
            g.entry.check(&format!("[groups.{name}]"), dir)?;
            for mac in g.macs.iter_mut() {
                let n = normalize_mac(mac).ok_or_else(|| {
                    Error::invalid(format!("[groups.{name}]: '{mac}' is not a MAC address"))
                })?;
                // A device in two groups would get whichever sorts first: refuse instead.
                if let Some(other) = seen.insert(n.clone(), name.clone()) {
                    return Err(Error::invalid(format!(
                        "{n} is in groups {other} and {name}"
                    )));
                }
                *mac = n;
            }
        }
        Ok(m)
    }

    /// The entry for a device (MAC already normalised).
    pub fn select(&self, mac: &str) -> Option<(&Entry, Source)> {
        if let Some(e) = self.devices.get(mac) {
            return Some((e, Source::Device));
        }
        for (name, g) in &self.groups {
            if g.macs.iter().any(|m| m == mac) {
                return Some((&g.entry, Source::Group(name.clone())));
            }
        }
        self.default.as_ref().map(|e| (e, Source::Default))
    }
}

/// Whether a device is in a rollout of `percent`: a stable hash of seed and MAC picks a
/// bucket 0..10000, so the same devices are chosen on every request and every instance,
/// and raising the percentage only adds devices.
pub fn in_rollout(seed: &str, mac: &str, percent: f64) -> bool {
    use sha2::{Digest, Sha256};
    if percent >= 100.0 {
        return true;
    }
    let h = Sha256::digest(format!("{seed}\n{mac}").as_bytes());
    let v = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    ((v % 10_000) as f64) < percent * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            normalize_mac("18:fe:aa:aa:aa:0b").as_deref(),
            Some("18:FE:AA:AA:AA:0B")
        );
        assert_eq!(normalize_mac("18:fe:aa:aa:aa"), None);
        assert_eq!(normalize_mac("18:fe:aa:aa:aa:zz"), None);
    }

    #[test]
    fn rollout_monotone() {
        let macs: Vec<String> = (0..500)
            .map(|i| format!("5C:CF:7F:00:{:02X}:{:02X}", i / 256, i % 256))
            .collect();
        for m in &macs {
            if in_rollout("1.0", m, 20.0) {
                assert!(
                    in_rollout("1.0", m, 50.0),
                    "{m} left the rollout when it grew"
                );
            }
            assert!(!in_rollout("1.0", m, 0.0));
        }
    }

    #[test]
    fn paths() {
        assert!(check_rel_path("a/b.bin").is_ok());
        assert!(check_rel_path("../b.bin").is_err());
        assert!(check_rel_path("/etc/passwd").is_err());
    }
}
