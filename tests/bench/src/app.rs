//! What a test app printed, and what it must print for a given image.

/// One loaded segment as the app saw it: address, length, FNV-1a of its bytes.
pub type SegSum = (u32, u32, u32);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppOutput {
    pub id: String,
    pub ver: u32,
    /// CCOUNT at the app's first instruction.
    pub entry_cc: u32,
    pub segs: Vec<SegSum>,
    /// Result of a function run from the flash window (ver + 3000 when irom0 is right).
    pub irom: Option<u32>,
    /// User RTC words 0..6 as the app found them (the boot report: magic, event, code,
    /// journal, trial boots left, CRC).
    pub report: Vec<u32>,
    /// Result of the confirm call (confirming apps only).
    pub confirm: Option<i32>,
    /// The app got to the end.
    pub done: bool,
}

impl AppOutput {
    /// The last app start in `console` (None if no app started).
    pub fn parse(console: &str) -> Option<AppOutput> {
        let start = console.rfind("APP id=")?;
        let mut a = AppOutput::default();
        for line in console[start..].lines() {
            let Some(rest) = line.strip_prefix("APP ") else { continue };
            let t: Vec<&str> = rest.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            match t.first().copied() {
                Some(s) if s.starts_with("id=") => {
                    for kv in &t {
                        if let Some(v) = kv.strip_prefix("id=") {
                            a.id = v.into();
                        } else if let Some(v) = kv.strip_prefix("ver=") {
                            a.ver = v.parse().unwrap_or(0);
                        } else if let Some(v) = kv.strip_prefix("cc=") {
                            a.entry_cc = v.parse().unwrap_or(0);
                        }
                    }
                }
                Some("seg") if t.len() == 4 => {
                    if let (Some(ad), Ok(l), Some(s)) = (hex(t[1]), t[2].parse(), hex(t[3])) {
                        a.segs.push((ad, l, s));
                    }
                }
                Some("irom") => a.irom = t.get(1).and_then(|v| v.strip_prefix("irom=").or(Some(v))).and_then(|v| v.parse().ok()),
                Some(s) if s.starts_with("irom=") => a.irom = s[5..].parse().ok(),
                Some("report") => a.report = t[1..].iter().enumerate().filter_map(|(i, v)| if i == 0 || i == 3 || i == 5 { hex(v) } else { v.parse().ok() }).collect(),
                Some("confirm") => a.confirm = t.get(1).and_then(|v| v.parse().ok()),
                Some("done") => a.done = true,
                _ => {}
            }
        }
        Some(a)
    }
}

/// FNV-1a, as the app computes it.
pub fn fnv(b: &[u8]) -> u32 {
    let mut h = 0x811C_9DC5u32;
    for &x in b {
        h ^= x as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The segment sums an app must print when booted from `flash_image` (an Arduino image:
/// bootloader slot, app at 0x1000). irom0 is seen through the flash window, so its bytes
/// are the image bytes (CRC words included).
pub fn expected_segs(flash_image: &[u8]) -> Result<Vec<SegSum>, String> {
    let app = &flash_image[0x1000..];
    let p = tools::image::parse_image(app).map_err(|e| e.to_string())?;
    Ok(p.segments.iter().map(|s| (s.addr, s.len, fnv(&app[s.data_offset..s.data_offset + s.len as usize]))).collect())
}
