//! Issue 12: allocations per record, counted by a global allocator, on the
//! three steps a hypervisor runs: decoding the records (`xsplice_abi`),
//! loading a payload (`xsplice_loader::load`) and applying it
//! (`Engine::apply`). Counts are exact and repeatable (no timing), so they
//! are asserted: decoding allocates nothing at all, and loading and
//! applying allocate a small constant number of blocks per record (what
//! each record keeps: its name, the bytes written at its site and the
//! bytes they replace, and the ledger's copy). `BENCHMARKS.md` quotes the
//! numbers printed here.
//!
//! The payloads are the benches' (`common::bench_payload`, built by the
//! writer from the gcc-built `build_input.obj`); the target is the shared
//! in-memory one. One test in this binary: the counter is global.
#![cfg(feature = "write")]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::bench_payload::{func_name, many};
use common::memory::Memory;
use common::{fixture, Bump, Table};
use xsplice_abi::{Addr, PatchFunc, RecordVersion};
use xsplice_loader::engine::Engine;
use xsplice_loader::{load, LoadOptions, Symbol};

struct Counting;
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) made by `f`.
fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = BLOCKS.load(Ordering::Relaxed);
    let r = f();
    (BLOCKS.load(Ordering::Relaxed) - before, r)
}

/// The demo symbols plus the `n` functions the bench payloads patch, 64
/// bytes apart from 0x60_0000.
fn table(n: usize) -> Table {
    let mut t = Table::demo();
    for i in 0..n {
        t.globals.insert(
            func_name(i),
            Symbol {
                addr: Addr(0x60_0000 + 0x40 * i as u64),
                size: 0x40,
            },
        );
    }
    t
}

/// Allocations of (decode, load, apply) for a v2 payload of `n` records
/// (replacements, and a NOP in ten).
fn steps(input: &[u8], n: usize) -> (usize, usize, usize) {
    let payload = many(input, RecordVersion::V2, n);
    let opts = LoadOptions {
        max_size: usize::MAX,
        ..LoadOptions::default()
    };
    // Decode: the records of `n` encoded v2 records, walked in full.
    let section: Vec<u8> = (0..n)
        .flat_map(|i| {
            let f = PatchFunc {
                new_size: 16 + i as u64,
                old_size: 32,
                ..PatchFunc::default()
            };
            xsplice_abi::encode(&f, RecordVersion::V2)
                .unwrap()
                .as_bytes()
                .to_vec()
        })
        .collect();
    let (decode, walked) = count(|| {
        let records = xsplice_abi::decode(&section, 64).unwrap();
        records.iter().filter(|r| r.is_ok()).count()
    });
    assert_eq!(walked, n);
    // Load against a table, as a hypervisor does.
    let t = table(n);
    let (load, loaded) =
        count(|| load(&payload, &opts, &t, &mut Bump::default()).map(|p| p.records.len()));
    assert_eq!(loaded.unwrap(), n);
    // Apply on the in-memory target (the load happens outside the count).
    let mut engine = Engine::new(Memory::new(table(n)), opts);
    let id = engine.load("bench", &payload).unwrap();
    let (apply, applied) = count(|| engine.apply(id).is_ok());
    assert!(applied);
    (decode, load, apply)
}

#[test]
fn allocations_per_record() {
    let input = fixture("build_input.obj");
    let (small, large) = (100, 1_000);
    let a = steps(&input, small);
    let b = steps(&input, large);
    let per = |x: usize, y: usize| (y as f64 - x as f64) / (large - small) as f64;
    let (decode, load, apply) = (per(a.0, b.0), per(a.1, b.1), per(a.2, b.2));
    println!(
        "allocations per record (N = {small} -> {large}): decode {decode:.2}, load {load:.2}, apply {apply:.2}"
    );
    println!("allocations at N = {small}: {a:?}; at N = {large}: {b:?} (decode, load, apply)");
    // Decoding never allocates, whatever the count.
    assert_eq!((a.0, b.0), (0, 0), "decode allocates");
    // Loading (6 a record today): the record's name and its copy in the
    // duplicate-name index, the symbols' names and exports. Applying (4):
    // the site's new and old bytes and its name (the plan, kept for
    // revert), and the ledger's share of the bytes it encodes from them.
    // The goal, zero a record on apply, is not met; these bounds
    // catch one more allocation a record added somewhere.
    assert!(load <= 7.0, "load: {load} allocations per record");
    assert!(apply <= 5.0, "apply: {apply} allocations per record");
}
