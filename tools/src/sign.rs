//! Update signing, compatible with the Arduino core's `tools/signing.py` and its device side
//! (`Updater` + BearSSL):
//!
//! * signed file = `payload ‖ signature ‖ u32 LE signature length`;
//! * current scheme: RSASSA-PKCS1-v1_5 with SHA-256 (the DigestInfo form `openssl dgst
//!   -sha256 -sign` makes);
//! * legacy scheme (`--legacy`, devices with core ≤ 2.5.2): PKCS#1 v1.5 type-1 padding
//!   over the raw 32-byte SHA-256 digest, no DigestInfo (`openssl rsautl -sign`).
//!
//! Keys are read in every PEM/DER form openssl writes (PKCS#8 "PRIVATE KEY", PKCS#1 "RSA
//! PRIVATE KEY", SPKI "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY").

use crate::error::{Error, Result};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// Length of the trailer that carries the signature length.
pub const LEN_TRAILER: usize = 4;

/// Which padding a signature uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// PKCS#1 v1.5 with the SHA-256 DigestInfo (core ≥ 2.6.0).
    Pkcs1Sha256,
    /// PKCS#1 v1.5 over the bare digest (core ≤ 2.5.2).
    Legacy,
}

impl Scheme {
    fn padding(self) -> Pkcs1v15Sign {
        match self {
            Scheme::Pkcs1Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Scheme::Legacy => Pkcs1v15Sign::new_unprefixed(),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Pkcs1Sha256 => "rsa-pkcs1v15-sha256",
            Scheme::Legacy => "rsa-pkcs1v15-raw-digest (legacy)",
        }
    }
}

/// Makes a new RSA key pair of `bits` bits (2048 is what the Arduino docs use).
pub fn keygen(bits: usize) -> Result<RsaPrivateKey> {
    if !(1024..=8192).contains(&bits) {
        return Err(Error::invalid(format!(
            "RSA key size {bits} is out of range (1024..=8192)"
        )));
    }
    RsaPrivateKey::new(&mut rand::thread_rng(), bits)
        .map_err(|e| Error::invalid(format!("key generation failed: {e}")))
}

/// The private key as PKCS#8 PEM (what `openssl genrsa` 3.x writes).
pub fn private_pem(key: &RsaPrivateKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 encoding of a valid key")
        .to_string()
}

/// The public key as SPKI PEM ("PUBLIC KEY", what `openssl rsa -pubout` writes and the
/// device's `BearSSL::PublicKey` reads).
pub fn public_pem(key: &RsaPublicKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("SPKI encoding of a valid key")
}

/// Why otatool takes RSA keys only, for the error on any other kind.
const RSA_ONLY: &str = "otatool and the ESP8266 Updater use RSA keys only: the device checks \
RSA PKCS#1 v1.5 SHA-256 signatures (what signing.py and otatool sign make), while openssl's \
EC signatures are DER-encoded, which the device's raw ECDSA check rejects, and Ed25519 it \
cannot check at all. Make an RSA key with `otatool keygen -o private.key` or \
`openssl genrsa -out private.key 2048`";

/// The PEM label and DER body of a PEM file, if `bytes` is one.
fn pem_body(bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let s = std::str::from_utf8(bytes).ok()?;
    let start = s.find("-----BEGIN ")?;
    rsa::pkcs8::der::pem::decode_vec(s[start..].trim_end().as_bytes())
        .ok()
        .map(|(label, der)| (label.to_string(), der))
        .or_else(|| {
            // Undecodable PEM: still report its label.
            let label = s[start + 11..].split("-----").next()?.to_string();
            Some((label, Vec::new()))
        })
}

/// The algorithm of a key that is not RSA (EC, Ed25519, ...), from its PEM label or its
/// PKCS#8 / SubjectPublicKeyInfo algorithm identifier; `None` for RSA or unknown input.
pub fn non_rsa_kind(bytes: &[u8]) -> Option<&'static str> {
    use rsa::pkcs8::{PrivateKeyInfo, SubjectPublicKeyInfoRef};
    let der = match pem_body(bytes) {
        Some((label, der)) => {
            match label.as_str() {
                "EC PRIVATE KEY" | "EC PUBLIC KEY" | "EC PARAMETERS" => return Some("EC"),
                "DSA PRIVATE KEY" => return Some("DSA"),
                "OPENSSH PRIVATE KEY" => return Some("OpenSSH-format"),
                _ => {}
            }
            der
        }
        None => bytes.to_vec(),
    };
    if is_sec1_ec(&der) {
        return Some("EC");
    }
    let oid = PrivateKeyInfo::try_from(der.as_slice())
        .map(|k| k.algorithm.oid)
        .or_else(|_| SubjectPublicKeyInfoRef::try_from(der.as_slice()).map(|k| k.algorithm.oid))
        .ok()?;
    Some(match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => return None,
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.3.101.110" | "1.3.101.111" => "X25519/X448",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        _ => "non-RSA",
    })
}

/// SEC1 `ECPrivateKey` DER (what `openssl ec -outform DER` writes): SEQUENCE { INTEGER 1,
/// OCTET STRING, [0] named curve }, the curve under the ANSI X9.62 or SECG arc.
fn is_sec1_ec(der: &[u8]) -> bool {
    let head = &der[..der.len().min(80)];
    let has = |pat: &[u8]| head.windows(pat.len()).any(|w| w == pat);
    der.first() == Some(&0x30)
        && (der.get(2..6) == Some(&[2, 1, 1, 4]) || der.get(3..7) == Some(&[2, 1, 1, 4]))
        && (has(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01]) || has(&[0x2B, 0x81, 0x04, 0x00]))
}

fn refuse_non_rsa(bytes: &[u8]) -> Result<()> {
    match non_rsa_kind(bytes) {
        Some(kind) => Err(Error::invalid(format!("this is an {kind} key; {RSA_ONLY}"))),
        None => Ok(()),
    }
}

/// `true` when `bytes` hold private key material of any kind (PEM label or PKCS#8/PKCS#1
/// DER), so it can be kept out of anything that is published or compiled into firmware.
pub fn is_private_key(bytes: &[u8]) -> bool {
    use rsa::pkcs8::PrivateKeyInfo;
    match pem_body(bytes) {
        Some((label, _)) => label.contains("PRIVATE KEY"),
        None => {
            PrivateKeyInfo::try_from(bytes).is_ok() || RsaPrivateKey::from_pkcs1_der(bytes).is_ok()
        }
    }
}

/// Reads a private key from PEM or DER, PKCS#8 or PKCS#1.
pub fn read_private_key(bytes: &[u8]) -> Result<RsaPrivateKey> {
    refuse_non_rsa(bytes)?;
    if let Ok(s) = std::str::from_utf8(bytes) {
        if s.contains("-----BEGIN") {
            if s.contains("ENCRYPTED PRIVATE KEY") || s.contains("Proc-Type: 4,ENCRYPTED") {
                return Err(Error::invalid(
                    "private key is encrypted; decrypt it first (openssl rsa -in KEY -out PLAIN)",
                ));
            }
            return RsaPrivateKey::from_pkcs8_pem(s)
                .or_else(|_| RsaPrivateKey::from_pkcs1_pem(s))
                .map_err(|_| {
                    let what = if s.contains("PUBLIC KEY") {
                        " (this is a public key)"
                    } else {
                        ""
                    };
                    Error::invalid(format!("not an RSA private key in PEM form{what}"))
                });
        }
    }
    RsaPrivateKey::from_pkcs8_der(bytes)
        .or_else(|_| RsaPrivateKey::from_pkcs1_der(bytes))
        .map_err(|_| Error::invalid("not an RSA private key (PEM or DER, PKCS#8 or PKCS#1)"))
}

/// Reads a public key from PEM or DER (SPKI or PKCS#1); a private key gives its public half.
pub fn read_public_key(bytes: &[u8]) -> Result<RsaPublicKey> {
    read_key(bytes).map(|(k, _)| k)
}

/// As [`read_public_key`], and says whether the input was a private key.
pub fn read_key(bytes: &[u8]) -> Result<(RsaPublicKey, bool)> {
    refuse_non_rsa(bytes)?;
    if is_private_key(bytes) {
        return read_private_key(bytes).map(|k| (k.to_public_key(), true));
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        if s.contains("-----BEGIN") {
            return RsaPublicKey::from_public_key_pem(s)
                .or_else(|_| RsaPublicKey::from_pkcs1_pem(s))
                .map(|k| (k, false))
                .map_err(|_| Error::invalid("not an RSA public key in PEM form"));
        }
    }
    RsaPublicKey::from_public_key_der(bytes)
        .or_else(|_| RsaPublicKey::from_pkcs1_der(bytes))
        .map(|k| (k, false))
        .map_err(|_| Error::invalid("not an RSA public key (PEM or DER, SPKI or PKCS#1)"))
}

/// Signs `payload` and returns the bare signature (modulus length bytes).
pub fn signature(payload: &[u8], key: &RsaPrivateKey, scheme: Scheme) -> Result<Vec<u8>> {
    let digest = Sha256::digest(payload);
    key.sign(scheme.padding(), &digest)
        .map_err(|e| Error::invalid(format!("signing failed: {e}")))
}

/// `payload ‖ signature ‖ u32 LE length`, as signing.py writes it.
pub fn sign(payload: &[u8], key: &RsaPrivateKey, scheme: Scheme) -> Result<Vec<u8>> {
    let sig = signature(payload, key, scheme)?;
    let mut out = Vec::with_capacity(payload.len() + sig.len() + LEN_TRAILER);
    out.extend_from_slice(payload);
    out.extend_from_slice(&sig);
    out.extend_from_slice(&(sig.len() as u32).to_le_bytes());
    Ok(out)
}

/// A signed file split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signed<'a> {
    pub payload: &'a [u8],
    pub signature: &'a [u8],
}

/// Splits a signed file by its trailer. `None` unless the trailer names a length that an
/// RSA or EC signature can have (32..=1024 bytes) and that fits the file.
pub fn split(b: &[u8]) -> Option<Signed<'_>> {
    let n = b.len().checked_sub(LEN_TRAILER)?;
    let t = &b[n..];
    let sig_len = u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize;
    if !(32..=1024).contains(&sig_len) || sig_len > n {
        return None;
    }
    Some(Signed {
        payload: &b[..n - sig_len],
        signature: &b[n - sig_len..n],
    })
}

/// Checks a signed file against a public key the way the device does: the trailer length
/// must equal the modulus length, then the signature must verify. Tries the current scheme
/// first, then the legacy one, and says which matched.
pub fn verify(b: &[u8], key: &RsaPublicKey) -> Result<Scheme> {
    let s = split(b).ok_or_else(|| {
        Error::invalid("no signature trailer (last 4 bytes are not a plausible signature length)")
    })?;
    if s.signature.len() != key.size() {
        return Err(Error::refused(format!(
            "signature is {} bytes but the key's modulus is {} bytes (the device rejects this: UPDATE_ERROR_SIGN)",
            s.signature.len(),
            key.size()
        )));
    }
    let digest = Sha256::digest(s.payload);
    for scheme in [Scheme::Pkcs1Sha256, Scheme::Legacy] {
        if key.verify(scheme.padding(), &digest, s.signature).is_ok() {
            return Ok(scheme);
        }
    }
    Err(Error::refused(
        "signature does not verify with this public key (wrong key or modified file)",
    ))
}

/// Refuses a private key whose public half is not `public` (so `sign --check-with` can
/// catch a release signed with the wrong key before it ships).
pub fn check_pair(private: &RsaPrivateKey, public: &RsaPublicKey) -> Result<()> {
    if private.n() != public.n() || private.e() != public.e() {
        return Err(Error::refused("private key does not match the public key"));
    }
    Ok(())
}

/// The header signing.py writes for the firmware build (`Updater_Signing.h`): the key
/// file's bytes as a PROGMEM char array, byte for byte its format.
pub fn arduino_header(key_file: &[u8]) -> String {
    let mut s = String::from("#include <pgmspace.h>\n#define ARDUINO_SIGNING 1\nstatic const char signing_pubkey[] PROGMEM = {\n");
    let bytes: Vec<String> = key_file.iter().map(|b| format!("0x{b:02x}")).collect();
    s.push_str(&bytes.join(", \n"));
    s.push_str("\n};\n");
    s
}

/// A Rust form of the public key for `updater`: modulus and exponent, big-endian, the
/// numbers a no_std PKCS#1 verifier needs, plus the SPKI DER the device-side libraries
/// accept.
pub fn rust_source(key: &RsaPublicKey) -> String {
    fn bytes(b: &[u8]) -> String {
        let mut s = String::new();
        for (i, chunk) in b.chunks(16).enumerate() {
            if i > 0 {
                s.push('\n');
            }
            s.push_str("    ");
            let line: Vec<String> = chunk.iter().map(|x| format!("0x{x:02x},")).collect();
            s.push_str(&line.join(" "));
        }
        s
    }
    let n = key.n().to_bytes_be();
    let e = key.e().to_bytes_be();
    let der = key
        .to_public_key_der()
        .expect("SPKI encoding of a valid key");
    format!(
        "// Update signing public key (RSA-{bits}), written by `otatool pubkey --format rust`.\n\
         /// Modulus, big-endian.\n\
         pub const SIGNING_KEY_N: [u8; {nl}] = [\n{nb}\n];\n\
         /// Public exponent, big-endian.\n\
         pub const SIGNING_KEY_E: [u8; {el}] = [\n{eb}\n];\n\
         /// The same key as SubjectPublicKeyInfo DER.\n\
         pub const SIGNING_KEY_SPKI_DER: [u8; {dl}] = [\n{db}\n];\n",
        bits = key.n().bits(),
        nl = n.len(),
        nb = bytes(&n),
        el = e.len(),
        eb = bytes(&e),
        dl = der.as_bytes().len(),
        db = bytes(der.as_bytes()),
    )
}

/// Modulus size in bits (for `info`).
pub fn key_bits(key: &RsaPublicKey) -> usize {
    key.n().bits()
}

/// SHA-256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_both_schemes_and_tamper() {
        let key = keygen(1024).unwrap();
        let public = key.to_public_key();
        for scheme in [Scheme::Pkcs1Sha256, Scheme::Legacy] {
            let signed = sign(b"firmware bytes", &key, scheme).unwrap();
            assert_eq!(signed.len(), 14 + 128 + 4);
            assert_eq!(&signed[signed.len() - 4..], &128u32.to_le_bytes());
            assert_eq!(verify(&signed, &public).unwrap(), scheme);
            let mut bad = signed.clone();
            bad[3] ^= 1;
            assert!(verify(&bad, &public).is_err());
        }
        let other = keygen(1024).unwrap().to_public_key();
        assert!(verify(&sign(b"x", &key, Scheme::Pkcs1Sha256).unwrap(), &other).is_err());
        assert!(check_pair(&key, &other).is_err());
        assert!(check_pair(&key, &public).is_ok());
    }

    #[test]
    fn pem_roundtrip() {
        let key = keygen(1024).unwrap();
        let k2 = read_private_key(private_pem(&key).as_bytes()).unwrap();
        assert_eq!(k2, key);
        let p = read_public_key(public_pem(&key.to_public_key()).as_bytes()).unwrap();
        assert_eq!(p, key.to_public_key());
        assert!(read_private_key(public_pem(&p).as_bytes())
            .unwrap_err()
            .to_string()
            .contains("public key"));
    }

    #[test]
    fn header_matches_signing_py_format() {
        assert_eq!(
            arduino_header(b"AB"),
            "#include <pgmspace.h>\n#define ARDUINO_SIGNING 1\nstatic const char signing_pubkey[] PROGMEM = {\n0x41, \n0x42\n};\n"
        );
    }
}
