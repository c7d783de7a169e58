//! One variant per way an update can fail on the app's side. The bootloader's own result
//! codes ([`bootloader::report::Code`]) are what the boot report carries; these are
//! separate because they happen before the reboot (or in `confirm`).

/// Why an updater call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdaterError {
    /// `size` is 0.
    Empty,
    /// `fs_start`/`fs_end` not 4 KiB aligned, `fs_start > fs_end`, or beyond the chip.
    BadLayout,
    /// 0x1000 holds no valid app header: an update is in progress (a trial boot, confirmed
    /// or not, until the next boot). Its journal and backup live in the free space, so
    /// nothing may be staged there now.
    UpdateInProgress,
    /// A trial update has not ended yet (the app has not confirmed and rebooted, or the
    /// bootloader has not rolled back): its backup of the old sketch and its extension
    /// image lie in the free flash an update is staged in, so nothing may be staged now.
    TrialPending,
    /// A trial or expected-CRC command without the extension image that carries it out
    /// ([`stage_extension`](crate::stage_extension)); the sector-0 bootloader refuses it.
    NeedsExtension,
    /// The extension image does not fit below the staged update (above the running
    /// sketch), or did not read back as written.
    ExtensionSpace,
    /// The staged image does not fit between the running sketch and the filesystem
    /// (Arduino's `UPDATE_ERROR_SPACE`), counting the free sector eboot-rs needs for its
    /// journal (and, for a filesystem update, one for its backup of 0x1000).
    NoSpace,
    /// The filesystem image (or its inflated output) is larger than `fs_end − fs_start`.
    FilesystemTooBig,
    /// The new sketch, copied to 0x1000, would reach its own staged copy or the journal
    /// sector below it. eboot-rs refuses such an update (eboot would overwrite its source
    /// mid-copy); a gzip image is smaller.
    OutputTooBig,
    /// More bytes written than `size`.
    Overflow,
    /// `finish` before `size` bytes were written.
    Incomplete,
    /// An earlier flash error left this staging unusable: `begin` again.
    Aborted,
    /// A sketch that starts with neither the ESP8266 image magic (0xE9) nor gzip's 1F 8B
    /// (Arduino's `UPDATE_ERROR_MAGIC_BYTE`).
    BadMagic,
    /// A raw sketch with no valid app image header at offset 4096, or an image too short
    /// to hold an app.
    BadImage,
    /// The image header asks for a bigger flash chip than this one (Arduino's
    /// `UPDATE_ERROR_NEW_FLASH_CONFIG`).
    FlashSizeMismatch,
    /// A flash read failed.
    FlashRead,
    /// A flash erase failed.
    FlashErase,
    /// A flash program failed.
    FlashWrite,
    /// The staged bytes read back from flash differ from the bytes written.
    ReadBack,
    /// The staged image's MD5 is not the expected one.
    Md5Mismatch,
    /// The staged image's SHA-256 is not the expected one.
    Sha256Mismatch,
    /// The command asks for an action other than COPY_RAW.
    BadAction,
    /// The command has an extension flag this bootloader refuses.
    UnsupportedExtension,
    /// A filesystem update cannot be a trial (the bootloader refuses it).
    TrialOnFilesystem,
    /// RTC memory did not read back what was written.
    RtcMismatch,
    /// RTC memory holds no boot report (the bootloader is not eboot-rs, or the report was
    /// overwritten).
    NoReport,
    /// This boot is not a trial boot: nothing to confirm.
    NotInTrial,
    /// No valid journal where the report says the update's journal is.
    NoJournal,
    /// The journal's log is full.
    JournalFull,
}
