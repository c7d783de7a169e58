//! OTA over the network: `upload` is the host side of ArduinoOTA's protocol (what espota.py
//! speaks to a sketch running ArduinoOTA), `serve` is an update server for the device's
//! ESPhttpUpdate client. Both speak the device side's formats exactly, so stock sketches work.

pub mod manifest;
pub mod serve;
pub mod upload;

use md5::{Digest, Md5};

/// Lowercase hex MD5, the only form the device side writes and compares.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
