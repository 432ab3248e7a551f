//! How long live patching stops the other threads of a process.
//!
//! Run with `cargo bench -p xsplice-loader --features write --bench pause`.
//! The bench process patches itself with `ProcessTarget` while 1 or 4
//! threads call a patched function in a tight loop. Each measurement is
//! the pause the target reports ([`RendezvousStats::last_pause`]: from the
//! first signal sent to the release), not the whole action:
//!
//! - `rendezvous/T`: `quiesce` with nothing to write, T busy threads;
//! - `apply/N/T` and `revert/N/T`: the stop-the-world step of
//!   `Engine::apply` / `Engine::revert` of a payload of N records (1 or 64
//!   functions `mov eax, 41; ret`, replaced by gcc-built
//!   `xsplice_new_answer`), T busy threads.
//!
//! Linux x86-64 only, as `ProcessTarget`.

#[path = "../tests/common/demo.rs"]
mod demo;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion};
use xsplice_loader::engine::{Engine, PayloadId, Target};
use xsplice_loader::process::ProcessTarget;
use xsplice_loader::write::{OldTarget, Patch, PayloadBuilder};
use xsplice_loader::LoadOptions;

// 64 functions `mov eax, 41; ret`, 16 bytes apart.
core::arch::global_asm!(
    ".pushsection .text.xsplice_bench,\"ax\",@progbits",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63",
    ".p2align 4",
    ".globl xsplice_bench_\\i",
    ".type xsplice_bench_\\i,@function",
    "xsplice_bench_\\i:",
    "mov eax, 41",
    "ret",
    ".p2align 4, 0xcc",
    ".size xsplice_bench_\\i, .-xsplice_bench_\\i",
    ".endr",
    ".popsection",
);

extern "C" {
    /// The first of the 64 (the busy threads call it).
    fn xsplice_bench_0() -> i64;
}

const RECORDS: [usize; 2] = [1, 64];
const THREADS: [usize; 2] = [1, 4];

/// A payload replacing `xsplice_bench_0` .. `xsplice_bench_{n-1}`.
fn payload(n: usize) -> Vec<u8> {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../compat-tests/fixtures/build_input.obj"
    ))
    .expect("compat-tests/fixtures/build_input.obj");
    let mut b = PayloadBuilder::from_object(&input).expect("build_input.obj");
    for i in 0..n {
        b.patch(Patch::replace(
            OldTarget::Name(format!("xsplice_bench_{i}")),
            "xsplice_new_answer",
            16,
        ));
    }
    b.build().expect("payload")
}

/// `n` threads calling `xsplice_bench_0` until dropped.
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<u64>>,
}

impl Busy {
    fn new(n: usize) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut calls = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // SAFETY: `long (void)`, patched or not.
                        let v = unsafe {
                            black_box(xsplice_bench_0 as unsafe extern "C" fn() -> i64)()
                        };
                        assert!(v == 41 || v == 45, "wrong value {v}");
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let calls = t.join().expect("a busy thread saw a wrong value");
            assert!(calls > 0);
        }
    }
}

fn engine() -> Engine<ProcessTarget> {
    // SAFETY: the payloads replace this binary's own `xsplice_bench_*`
    // with gcc-built code for them; nothing else patches code or uses the
    // rendezvous signal; payloads are unloaded only after the busy threads
    // are joined.
    let target = unsafe { ProcessTarget::new() }.expect("process target");
    Engine::new(target, LoadOptions::default())
}

/// Every pause measured, per benchmark, for the percentiles printed at
/// the end (a mean hides how the scheduler spreads them).
static SAMPLES: Mutex<BTreeMap<String, Vec<Duration>>> = Mutex::new(BTreeMap::new());

/// The pause of the last action, recorded under `name`.
fn pause(e: &Engine<ProcessTarget>, name: &str) -> Duration {
    let p = e.target().stats().last_pause;
    SAMPLES
        .lock()
        .expect("samples")
        .entry(name.to_string())
        .or_default()
        .push(p);
    p
}

/// Prints p50 / p90 / p99 / max of every benchmark's pauses.
fn print_percentiles() {
    let samples = SAMPLES.lock().expect("samples");
    eprintln!(
        "\n{:<22} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "pause", "n", "p50", "p90", "p99", "max"
    );
    for (name, v) in samples.iter() {
        let mut v = v.clone();
        v.sort();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        eprintln!(
            "{name:<22} {:>8} {:>10.1?} {:>10.1?} {:>10.1?} {:>10.1?}",
            v.len(),
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
}

/// Runs `action` until it succeeds: under load a thread may not get a CPU
/// within the rendezvous timeout, which refuses the action.
fn retry<E: std::fmt::Display>(mut action: impl FnMut() -> Result<(), E>) {
    while let Err(err) = action() {
        eprintln!("retrying: {err}");
    }
}

fn pause_group(c: &mut Criterion) {
    assert_eq!(demo::base(), 1000);
    let mut g = c.benchmark_group("pause");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    let mut e = engine();
    eprintln!(
        "membarrier SYNC_CORE: {}; code written through /proc/self/mem: {}",
        e.target().membarrier_sync_core(),
        e.target().writes_through_proc_mem()
    );
    let ids: Vec<(usize, PayloadId)> = RECORDS
        .iter()
        .map(|&n| (n, e.load(&format!("bench{n}"), &payload(n)).expect("load")))
        .collect();
    for threads in THREADS {
        let busy = Busy::new(threads);
        let name = format!("rendezvous/{threads}");
        g.bench_function(BenchmarkId::new("rendezvous", threads), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    retry(|| e.target_mut().quiesce(&[], &mut |_| Ok(())));
                    total += pause(&e, &name);
                }
                total
            })
        });
        for &(n, id) in &ids {
            let name = format!("{n}/{threads}");
            g.bench_function(BenchmarkId::new("apply", &name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        retry(|| e.apply(id).map_err(|err| err.to_string()));
                        total += pause(&e, &format!("apply/{name}"));
                        retry(|| e.revert(id).map_err(|err| err.to_string()));
                    }
                    total
                })
            });
            g.bench_function(BenchmarkId::new("revert", &name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        retry(|| e.apply(id).map_err(|err| err.to_string()));
                        retry(|| e.revert(id).map_err(|err| err.to_string()));
                        total += pause(&e, &format!("revert/{name}"));
                    }
                    total
                })
            });
        }
        drop(busy);
    }
    g.finish();
    for (_, id) in ids {
        e.unload(id).expect("unload");
    }
    print_percentiles();
}

/// The benchmark group (in a private module: the function the macro
/// defines is public and undocumented).
mod groups {
    use super::pause_group;
    criterion::criterion_group!(benches, pause_group);
}

criterion_main!(groups::benches);
