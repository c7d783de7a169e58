//! How otatool writes its outputs: one rule for every subcommand.
//!
//! * Only regular files are written. A path naming a directory, FIFO, socket or device is
//!   refused before anything is written, and left as it was.
//! * A symlink is written through: the file it points at gets the new contents and the
//!   link stays a link.
//! * A replaced file keeps its permission bits (and, where the process may, its owner); a
//!   new file gets `0666` minus the umask (`0644` under umask 022), like `cp` or Python's
//!   `open()`. Private keys are the exception: new ones are `0600`.
//! * A read-only file (no write bit, or not writable by this user) is refused, also for
//!   root, who could otherwise replace it silently.
//! * All outputs of a run are written together: each goes to a temporary file next to its
//!   target first, and only when every one of them is complete are they renamed into
//!   place. A failure before or during the renames leaves every target as it was (new
//!   ones removed, replaced ones restored), so no run leaves part of its outputs behind.
//! * `-` means standard output, for subcommands whose output is a single stream.
//!
//! Error messages name the target the user gave, never a temporary file.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Permissions of a new private key file.
pub const PRIVATE_MODE: u32 = 0o600;

/// The path that means standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

enum Target {
    Stdout,
    File {
        /// As the user gave it (for messages).
        shown: PathBuf,
        /// With symlinks followed: the file that is actually written.
        real: PathBuf,
        /// The file being replaced, if there is one.
        existing: Option<Box<fs::Metadata>>,
    },
}

struct Item {
    target: Target,
    data: Vec<u8>,
    /// Private key material: a new file gets 0600, a replaced one loses group/other bits.
    private: bool,
}

/// The outputs of one run, written together by [`Outputs::commit`].
#[derive(Default)]
pub struct Outputs {
    items: Vec<Item>,
}

/// Follows `path` through symlinks (relative ones against their own directory) to the
/// path that a write would create or replace.
fn follow_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    // The kernel's own limit on a chain of links (ELOOP).
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p).map_err(|e| Error::io(path, e))?;
                p = if to.is_absolute() {
                    to
                } else {
                    p.parent().unwrap_or(Path::new("")).join(to)
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::invalid(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

fn kind_of(ft: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// `true` when the file has no write permission for anyone, or this user may not write it.
fn read_only(path: &Path, meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o222 == 0 {
            return true;
        }
        let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return true;
        };
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) != 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        meta.permissions().readonly()
    }
}

/// Checks that `path` may be written under the rules above, without writing anything.
fn check(path: &Path) -> Result<Target> {
    if is_stdout(path) {
        return Ok(Target::Stdout);
    }
    if path.as_os_str().is_empty() {
        return Err(Error::invalid("output path is empty"));
    }
    let real = follow_links(path)?;
    let via = if real != path {
        format!(" (via the link {})", path.display())
    } else {
        String::new()
    };
    match fs::symlink_metadata(&real) {
        Ok(m) if m.file_type().is_file() => {
            if read_only(&real, &m) {
                return Err(Error::refused(format!(
                    "{}{via} is read-only; otatool does not replace read-only files (make it writable or remove it first)",
                    real.display()
                )));
            }
            Ok(Target::File {
                shown: path.to_path_buf(),
                real,
                existing: Some(Box::new(m)),
            })
        }
        Ok(m) => {
            let kind = kind_of(&m.file_type());
            let hint = if m.is_dir() {
                ""
            } else {
                " (-o - writes to standard output)"
            };
            Err(Error::refused(format!(
                "{}{via} is {kind}; otatool writes regular files only{hint}",
                real.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = parent_of(&real);
            match fs::metadata(dir) {
                Ok(d) if d.is_dir() => Ok(Target::File {
                    shown: path.to_path_buf(),
                    real,
                    existing: None,
                }),
                Ok(_) => Err(Error::invalid(format!(
                    "cannot write {}: {} is not a directory",
                    path.display(),
                    dir.display()
                ))),
                Err(_) => Err(Error::invalid(format!(
                    "cannot write {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                ))),
            }
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A written temporary file, and the backup of the file it replaces once renamed.
struct Staged {
    tmp: Option<tempfile::NamedTempFile>,
    backup: Option<tempfile::NamedTempFile<()>>,
    renamed: bool,
}

impl Outputs {
    pub fn new() -> Outputs {
        Outputs::default()
    }

    /// Checks `path` now (so a bad path is refused before any work) and queues `data` for it.
    pub fn add(&mut self, path: &Path, data: Vec<u8>) -> Result<()> {
        self.push(path, data, false)
    }

    /// As [`Outputs::add`] for private key material: a new file is created `0600`, and a
    /// replaced file keeps its mode minus any group/other access.
    pub fn add_private(&mut self, path: &Path, data: Vec<u8>) -> Result<()> {
        self.push(path, data, true)
    }

    /// `true` when one of the outputs is standard output (status text must then go to
    /// standard error).
    pub fn uses_stdout(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.target, Target::Stdout))
    }

    fn push(&mut self, path: &Path, data: Vec<u8>, private: bool) -> Result<()> {
        let target = check(path)?;
        let clash = self.items.iter().any(|i| match (&i.target, &target) {
            (Target::Stdout, Target::Stdout) => true,
            (Target::File { real: a, .. }, Target::File { real: b, .. }) => same_file(a, b),
            _ => false,
        });
        if clash {
            return Err(Error::invalid(format!(
                "{} is given for two outputs of the same run",
                path.display()
            )));
        }
        self.items.push(Item {
            target,
            data,
            private,
        });
        Ok(())
    }

    /// Writes every queued output, all or none (see the module documentation).
    pub fn commit(self) -> Result<()> {
        let mut staged: Vec<Staged> = Vec::with_capacity(self.items.len());
        // 1. Every file's contents into a temporary file beside its target.
        for item in &self.items {
            match &item.target {
                Target::Stdout => staged.push(Staged {
                    tmp: None,
                    backup: None,
                    renamed: false,
                }),
                Target::File {
                    shown,
                    real,
                    existing,
                } => {
                    // Re-checked: the target may have changed since `add`.
                    if let Target::File { existing: now, .. } = check(shown)? {
                        if now.is_some() != existing.is_some() {
                            return Err(Error::refused(format!(
                                "{} changed while otatool was running",
                                shown.display()
                            )));
                        }
                    }
                    let tmp = stage(real, &item.data, existing.as_deref(), item.private)
                        .map_err(|e| write_error(shown, e))?;
                    staged.push(Staged {
                        tmp: Some(tmp),
                        backup: None,
                        renamed: false,
                    });
                }
            }
        }
        // 2. Rename them into place, keeping a hard-link backup of each replaced file so
        //    a later failure can put it back.
        let mut failure = None;
        #[cfg(test)]
        let mut n = 0;
        for (item, st) in self.items.iter().zip(staged.iter_mut()) {
            let Target::File {
                shown,
                real,
                existing,
            } = &item.target
            else {
                continue;
            };
            if existing.is_some() {
                let dir = parent_of(real);
                st.backup = tempfile::Builder::new()
                    .prefix(".otatool-")
                    .make_in(dir, |p| fs::hard_link(real, p))
                    .ok();
            }
            let Some(tmp) = st.tmp.take() else { continue };
            #[cfg(test)]
            if tests::FAIL_RENAME.with(|f| f.get()) == Some(n) {
                failure = Some(write_error(
                    shown,
                    std::io::Error::other("injected rename failure"),
                ));
                break;
            }
            #[cfg(test)]
            {
                n += 1;
            }
            match tmp.persist(real) {
                Ok(_) => st.renamed = true,
                Err(e) => {
                    failure = Some(write_error(shown, e.error));
                    break;
                }
            }
        }
        if let Some(err) = failure {
            for (item, st) in self.items.iter().zip(staged.iter_mut()) {
                let Target::File { real, existing, .. } = &item.target else {
                    continue;
                };
                if !st.renamed {
                    continue;
                }
                match (st.backup.take(), existing) {
                    (Some(b), _) => {
                        let _ = b.persist(real);
                    }
                    (None, None) => {
                        let _ = fs::remove_file(real);
                    }
                    // Replaced, but no backup could be linked (a filesystem without hard
                    // links): the new contents stay rather than deleting the user's file.
                    (None, Some(_)) => {}
                }
            }
            return Err(err);
        }
        // 3. Standard output last, once every file is in place.
        for item in &self.items {
            if let Target::Stdout = item.target {
                let mut out = std::io::stdout().lock();
                out.write_all(&item.data)
                    .and_then(|_| out.flush())
                    .map_err(|e| Error::io(Path::new("standard output"), e))?;
            }
        }
        // Dropping `staged` removes the backups.
        Ok(())
    }
}

/// The error for the output as the user named it: tempfile adds the temporary file's path
/// to its errors (" at path ..."), which means nothing to the user, so it is cut off.
fn write_error(shown: &Path, e: std::io::Error) -> Error {
    let msg = e.to_string();
    let msg = msg.split(" at path ").next().unwrap_or_default();
    Error::invalid(format!("cannot write {}: {msg}", shown.display()))
}

fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    let canon = |p: &Path| {
        fs::canonicalize(parent_of(p))
            .ok()
            .map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    matches!((canon(a), canon(b)), (Some(x), Some(y)) if x == y)
}

/// Writes `data` to a new temporary file in `real`'s directory with the mode the target
/// will have, and syncs it.
fn stage(
    real: &Path,
    data: &[u8],
    existing: Option<&fs::Metadata>,
    private: bool,
) -> std::io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".otatool-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Created with 0666 so the kernel applies the umask, as for any new file; a
        // private key is created with its narrow mode from the start.
        b.permissions(fs::Permissions::from_mode(if private {
            PRIVATE_MODE
        } else {
            0o666
        }));
    }
    let mut tmp = b.tempfile_in(parent_of(real))?;
    tmp.as_file_mut().write_all(data)?;
    if let Some(m) = existing {
        // The replaced file's own mode, exactly (not filtered by the umask).
        let mut perm = m.permissions();
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::PermissionsExt;
            perm.set_mode(perm.mode() & !0o077);
        }
        tmp.as_file().set_permissions(perm.clone())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            use std::os::unix::io::AsRawFd;
            // Keep the owner too where allowed (root replacing another user's file);
            // an ordinary user cannot give files away, and that is fine.
            // SAFETY: the descriptor is open for the duration of the call.
            unsafe {
                let _ = libc::fchown(tmp.as_file().as_raw_fd(), m.uid(), m.gid());
            }
            // fchown may clear set-id bits; put the exact mode back.
            tmp.as_file().set_permissions(perm)?;
        }
    }
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Checks that `path` may be written under the rules above, without writing anything
/// (to refuse a bad output before slow work; [`Outputs::add`] checks again).
pub fn check_path(path: &Path) -> Result<()> {
    check(path).map(|_| ())
}

/// Writes one output under the rules above.
pub fn write_one(path: &Path, data: &[u8]) -> Result<()> {
    let mut o = Outputs::new();
    o.add(path, data.to_vec())?;
    o.commit()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    thread_local! {
        /// Test hook: fail the rename of the file output with this index.
        pub(super) static FAIL_RENAME: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    }

    #[test]
    fn a_failed_rename_restores_replaced_and_removes_new_outputs() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        fs::write(&a, b"old a").unwrap();
        let mut o = Outputs::new();
        o.add(&a, b"new a".to_vec()).unwrap();
        o.add(&b, b"new b".to_vec()).unwrap();
        o.add(&c, b"new c".to_vec()).unwrap();
        FAIL_RENAME.with(|f| f.set(Some(2)));
        let err = o.commit().unwrap_err().to_string();
        FAIL_RENAME.with(|f| f.set(None));
        // The fault fired at the third output, after two renames had happened.
        assert!(err.contains("injected") && err.contains("/c"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"old a");
        assert!(!b.exists() && !c.exists());
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a")]);
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn failure_in_a_later_output_leaves_the_earlier_ones_untouched() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::write(&a, b"old").unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o640)).unwrap();
        let mut o = Outputs::new();
        o.add(&a, b"new".to_vec()).unwrap();
        let err = o
            .add(&d.path().join("missing/b"), b"x".to_vec())
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        // The run stops at the bad path; the queued output was never written.
        drop(o);
        assert_eq!(fs::read(&a).unwrap(), b"old");
        assert_eq!(mode(&a), 0o640);
    }

    #[test]
    fn commit_replaces_with_the_old_mode_and_leaves_no_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        fs::write(&a, b"old").unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o604)).unwrap();
        let mut o = Outputs::new();
        o.add(&a, b"A".to_vec()).unwrap();
        o.add_private(&b, b"B".to_vec()).unwrap();
        o.commit().unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"A");
        assert_eq!(mode(&a), 0o604);
        assert_eq!(mode(&b), 0o600);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn write_errors_name_the_target_not_the_temporary_file() {
        let e = tempfile::Builder::new()
            .prefix(".otatool-")
            .tempfile_in("/nonexistent-otatool-dir")
            .unwrap_err();
        // The fault is real and carries the temporary name ...
        assert!(e.to_string().contains(".otatool-"), "{e}");
        // ... which the message does not pass on.
        let m = write_error(Path::new("out.bin"), e).to_string();
        assert!(m.starts_with("cannot write out.bin: "), "{m}");
        assert!(!m.contains(".otatool-") && !m.contains("at path"), "{m}");
    }

    #[test]
    fn same_target_twice_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let mut o = Outputs::new();
        o.add(&a, vec![1]).unwrap();
        let alias = d.path().join(".").join("a");
        assert!(o
            .add(&alias, vec![2])
            .unwrap_err()
            .to_string()
            .contains("two outputs"));
    }
}
