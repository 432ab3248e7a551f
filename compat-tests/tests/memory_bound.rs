//! Issue 12, memory bound: loading any input of `n` bytes allocates at
//! most `C·n + K` bytes at its peak (the bound documented on
//! `xsplice_loader::LoadOptions`), over every gcc fixture, every file of
//! the regression corpus, truncations and byte flips of them, and the
//! hostile shapes of issue 12. A counting global allocator measures the
//! peak of live heap bytes during each dry-run `load` (the dry run is the
//! heaviest symbol source: it also copies every unresolved name).
//!
//! One test in this binary: the counters are global.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use xsplice_loader::{DryRun, LoadOptions};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as a new block before the old one is freed, as the
            // worst case of a moving realloc.
            let now = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated per input byte, at most (`LoadOptions` docs).
const C: usize = 24;
/// Bytes allocated whatever the input, at most, besides the regions
/// (`max_alloc`): headers, tables, the dry run's state.
const K: usize = 16 << 10;

/// The peak of live heap bytes above what was live before, while `bytes`
/// is loaded (and the result dropped).
fn peak_of_load(bytes: &[u8], opts: &LoadOptions) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut dry = DryRun::default();
    let r = dry.load(bytes, opts);
    drop(r);
    drop(dry);
    PEAK.load(Ordering::Relaxed) - before
}

#[test]
fn load_allocates_at_most_c_n_plus_k() {
    let opts = LoadOptions::default();
    let mut inputs = payloads();
    inputs.extend(malformed());
    let mut derived = Vec::new();
    for (name, bytes) in &inputs {
        let n = bytes.len();
        for cut in (0..16).map(|i| n * i / 16).chain([64, 100, 200]) {
            derived.push((format!("{name} cut at {cut}"), bytes[..cut.min(n)].to_vec()));
        }
        for at in (0..n).step_by(13) {
            let mut b = bytes.clone();
            b[at] ^= 0xff;
            derived.push((format!("{name} flipped at {at}"), b));
        }
    }
    inputs.extend(derived);
    inputs.push((
        "4,000 sections, one long name".into(),
        sections_sharing_a_long_name(4_000, 1_780_000, 2),
    ));
    inputs.push((
        "40,000 tails of one long name".into(),
        tails_of_one_long_name(),
    ));
    for (len, defined) in [(1_023, false), (1_023, true), (64, false)] {
        let what = if defined { "exports" } else { "undefined" };
        let b = many_long_distinct_names(len, defined);
        inputs.push((format!("40,000 {what} names of {len} bytes"), b));
    }
    let report = std::env::var_os("XSPLICE_MEMORY_REPORT").is_some();
    let mut worst = (0.0f64, String::new());
    for (name, bytes) in &inputs {
        let n = bytes.len();
        let peak = peak_of_load(bytes, &opts);
        let bound = C * n + opts.max_alloc + K;
        if report {
            println!("{peak:>10} bytes for {n:>8} input bytes: {name}");
        }
        let per = peak as f64 / n.max(1) as f64;
        if per > worst.0 && n > 4096 {
            worst = (per, name.clone());
        }
        assert!(
            peak <= bound,
            "{name}: {peak} bytes for {n}, over C·n + max_alloc + K = {bound}"
        );
    }
    println!(
        "{} inputs; worst per input byte above 4 KiB: {:.1} ({})",
        inputs.len(),
        worst.0,
        worst.1
    );
}
