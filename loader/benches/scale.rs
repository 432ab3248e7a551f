//! Scale: the library's load with a **real** symbol table, per record, as
//! the payload and the image grow together (issue 12).
//!
//! Inputs come from `bench/scale.py --generate N`: a gcc-built image of N
//! functions and N data symbols (2N symbols) with arenas, and a gcc-built v3
//! payload of N records replacing every function (each record's code reads
//! an image symbol). For each N the group measures, in one run:
//!
//! - `image`: `ImageTarget::new` on the image bytes (parsing it and hashing
//!   its symbol table), the fixed cost before any payload;
//! - `load`: `xsplice_loader::load` of the payload against that target (its
//!   symbol table and arenas), per record thanks to `Throughput::Elements`;
//! - `copy`: copying the payload bytes, the floor.
//!
//! Flat time per record across N shows linear work. Run with
//! `cargo bench -p xsplice-loader --bench scale` (needs gcc and python3;
//! `XSPLICE_SCALE_SIZES=100,1000` to choose the sizes).

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use xsplice_loader::image::ImageTarget;
use xsplice_loader::{load, LoadOptions};

/// Builds (once per size, cached in the target directory) the image and
/// payload of `n` records.
fn inputs(n: usize) -> (Vec<u8>, Vec<u8>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target").join("scale-bench").join(n.to_string());
    let (image, payload) = (dir.join("image"), dir.join("payload.o"));
    if !image.exists() || !payload.exists() {
        let ok = Command::new("python3")
            .arg(root.join("bench/scale.py"))
            .args(["--generate", &n.to_string(), "--out"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "bench/scale.py --generate {n} failed (needs gcc and python3)"
        );
    }
    (
        std::fs::read(image).expect("image"),
        std::fs::read(payload).expect("payload"),
    )
}

fn sizes() -> Vec<usize> {
    std::env::var("XSPLICE_SCALE_SIZES")
        .unwrap_or_else(|_| "100,1000,6000,20000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn scale(c: &mut Criterion) {
    let opts = LoadOptions {
        max_size: 1 << 30,
        max_alloc: 1 << 30,
        ..LoadOptions::default()
    };
    let mut g = c.benchmark_group("scale");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for n in sizes() {
        let (image, payload) = inputs(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("copy", n), &payload, |b, p| {
            b.iter(|| black_box(p.clone()))
        });
        g.bench_with_input(BenchmarkId::new("image", n), &image, |b, img| {
            b.iter_batched(
                || img.clone(),
                |bytes| black_box(ImageTarget::new(bytes).expect("image")),
                BatchSize::LargeInput,
            )
        });
        let target = ImageTarget::new(image).expect("image");
        g.bench_with_input(BenchmarkId::new("load", n), &payload, |b, p| {
            b.iter_batched(
                || target.clone(),
                // The target's symbols, its clone's arenas (fresh each time).
                |mut arenas| black_box(load(p, &opts, &target, &mut arenas).expect("load")),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    scale(&mut c);
}

criterion_main!(benches);
