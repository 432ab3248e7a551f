//! The functions the live fixtures (`compat-tests/fixtures/live_v*.o`)
//! replace, for test binaries that patch themselves. Included with
//! `#[path]` by those binaries only: the names are global symbols.
#![allow(dead_code)]

use std::hint::black_box;

/// Returns 41; the payloads make it 42, 43, 44.
#[no_mangle]
#[inline(never)]
pub extern "C" fn xsplice_demo_answer() -> i64 {
    black_box(41)
}

/// Returns `2x`; the payloads make it `kx + base()`.
#[no_mangle]
#[inline(never)]
pub extern "C" fn xsplice_demo_scale(x: i64) -> i64 {
    black_box(x) * 2
}

/// Never patched: the replacements call back into it through a relocation.
#[no_mangle]
#[inline(never)]
pub extern "C" fn xsplice_demo_base() -> i64 {
    black_box(1000)
}

/// Calls `xsplice_demo_answer` through a pointer the optimiser cannot see
/// through, so every call runs the (possibly patched) code.
pub fn answer() -> i64 {
    let f: extern "C" fn() -> i64 = black_box(xsplice_demo_answer);
    f()
}

/// Calls `xsplice_demo_scale` the same way.
pub fn scale(x: i64) -> i64 {
    let f: extern "C" fn(i64) -> i64 = black_box(xsplice_demo_scale);
    f(x)
}

/// Calls `xsplice_demo_base` (so the linker keeps it for the payloads).
pub fn base() -> i64 {
    black_box(xsplice_demo_base as extern "C" fn() -> i64)()
}

/// The first 5 bytes of the function at `f`.
pub fn code_bytes(f: usize) -> [u8; 5] {
    // SAFETY: reads the first bytes of a function of this binary (text is
    // readable).
    unsafe { *(f as *const [u8; 5]) }
}
