//! The one error type of the tools library: every failure carries a message meant for a
//! person, so `otatool` can print it as the single line of its error output.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A file could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An input is malformed: not an ELF, truncated, wrong magic, unparsable key, ...
    Invalid(String),
    /// An input is well formed but refused: key mismatch, bad signature, read-only output.
    Refused(String),
    /// An update or image does not fit the flash layout (its own exit code, see
    /// [`EXIT_DOES_NOT_FIT`]).
    DoesNotFit(String),
}

/// Exit code of a run whose image does not fit the layout asked about.
pub const EXIT_DOES_NOT_FIT: u8 = 3;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }
    pub fn refused(msg: impl Into<String>) -> Error {
        Error::Refused(msg.into())
    }
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Invalid(m) | Error::Refused(m) | Error::DoesNotFit(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
