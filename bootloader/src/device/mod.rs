//! The device layer: everything that exists only on the ESP8266. The core (`bootloader`
//! library) decides; this layer reads and writes the chip for it, loads the chosen app
//! and jumps into it.

mod flash;
mod platform;
mod rom;

use core::ptr::addr_of_mut;

use bootloader::{loader, report::Code, Mem};

/// Which build this is: tier 1 (sector 0) or, with the `ext` feature, the extension image.
const EXT: bool = cfg!(feature = "ext");

use flash::RomFlash;
use platform::Device;

extern "C" {
    /// The core's RAM (inflate window, buffers) at 0x3FFE8000, reserved by the linker
    /// script as NOBITS like eboot's globals: not zeroed, not in the image, overwritten
    /// later by the app's DRAM segments. Declared here, placed there; `cargo xtask build`
    /// sizes the reservation with `size_of::<Mem>()` (byte arrays: the same on any target).
    #[allow(improper_ctypes)]
    static mut BOOT_MEM: Mem;
}

/// The image entry: the ROM calls it directly (`ENTRY` in linker/bootloader.ld).
#[no_mangle]
pub extern "C" fn eboot_rs_main() -> ! {
    // RomFlash is zero-sized: any non-null aligned pointer is a valid reference to it. A
    // constant one costs one `movi` where a stack slot's address in this large frame
    // costs two instructions, at every call that takes the flash.
    const { assert!(core::mem::size_of::<RomFlash>() == 0) };
    // SAFETY: a reference to a zero-sized type reads and writes no memory (asserted
    // zero-sized just above).
    let flash: &mut RomFlash = unsafe { core::ptr::NonNull::dangling().as_mut() };
    let mut device = Device;
    // eboot turns the watchdog off around a copy (copies can outlast its ~13 s) and then
    // re-arms it with (4, 12, 12). Whether this boot copies is the core's decision, so
    // the whole core runs with the watchdog off and every exit path re-arms it.
    // SAFETY: ROM calls without pointer arguments.
    unsafe { rom::ets_wdt_disable() };
    // SAFETY: the only reference ever made to BOOT_MEM.
    let mem = unsafe { &mut *addr_of_mut!(BOOT_MEM) };
    let mut app = loader::App { offset: 0, head: [0; 4], len: 0 };
    let next = bootloader::boot::select::<_, _, EXT>(flash, &mut device, mem, &mut app);
    // SAFETY: as above.
    unsafe { rom::ets_wdt_enable(4, 12, 12) };
    let code = match next {
        // The app, or (tier 1) the extension image: loaded exactly as an app (the loader
        // gives the extension its own IRAM window, below tier 1's).
        Ok(()) => {
            // Straight from flash to the load address, like eboot. From the first
            // segment on, our own DRAM (BOOT_MEM, constants) may be overwritten: only
            // code, literals (IRAM) and the stack are used until the jump.
            let loaded = loader::for_each_load(flash, &app, |seg, flash_off| {
                // SAFETY: the loader only hands out segments inside loadable RAM
                // (image::Region), away from this code and the stack, with address and
                // length word multiples as the ROM needs (loader::walk refuses others).
                unsafe { rom::SPIRead(flash_off, seg.addr as *mut u8, seg.len) == 0 }
            });
            match loaded {
                // SAFETY: every segment is in place; the app never returns.
                Ok(()) => unsafe { rom::jump_to_app(app.entry()) },
                Err(code) => code,
            }
        }
        Err(code) => code,
    };
    halt(code)
}

/// Nothing to boot: say why ("e:" and the hex code, like eboot's "e:N"), then reset as
/// eboot does on every failure.
fn halt(code: Code) -> ! {
    // The format is built on the stack, not read from a constant: after a failed load our
    // DRAM constants may already be overwritten by app data. Volatile, so that LLVM cannot
    // turn the array back into such a constant.
    let mut fmt = [0u32; 2];
    // SAFETY: writes to a local array; the ROM reads the NUL-terminated string.
    unsafe {
        core::ptr::write_volatile(&mut fmt[0], u32::from_le_bytes(*b"\ne:%"));
        core::ptr::write_volatile(&mut fmt[1], u32::from_le_bytes(*b"x\n\0\0"));
        rom::ets_printf(fmt.as_ptr() as *const u8, code as u32);
    }
    rom::soft_reset()
}

/// LLVM lowers a trap (`core::intrinsics::abort`, unreachable code) on Xtensa to a call
/// to `abort`, which no ROM provides: it resets, like a panic.
#[no_mangle]
pub extern "C" fn abort() -> ! {
    rom::soft_reset()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // The core is written not to panic; if it still does, a reset retries from a clean
    // state (an interrupted update resumes from its journal).
    rom::soft_reset()
}
