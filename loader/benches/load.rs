//! Criterion benchmarks of the loader and the patch engine.
//!
//! Run with `cargo bench -p xsplice-loader --features write`. Every input is
//! built here, with the payload writer, from the gcc-built
//! `compat-tests/fixtures/build_input.obj`: payloads of record versions v1,
//! v2 and v3 with 1, 64 and 1024 records (the mix of
//! `loader/tests/write.rs`: plain replacements, NOP records from v2 on,
//! PATCH_OFFSET + EXPECT records in v3). Each group carries its own
//! baseline, so the report reads as ratios measured in the same run:
//!
//! - `decode`: `xsplice_abi::decode` and every record of the raw
//!   `.xsplice.funcs` bytes, against a plain copy of those bytes;
//! - `load`: the whole of `xsplice_loader::load` (validate, lay out, resolve,
//!   relocate, decode), against the decode step alone;
//! - `engine`: `Engine::apply` + `revert` on an in-memory target, against
//!   `apply` alone and the stop-the-world section of `apply` alone.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use common::bench_payload::{many, ENDBR64};
use common::Bump;
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use goblin::elf::Elf;
use xsplice_abi::RecordVersion;
use xsplice_loader::engine::{CodeWriter, Engine, HookOutcome, Site, Target};
use xsplice_loader::{
    load, Addr, Allocator, Arch, Hook, LoadOptions, Region, RegionKind, Symbol, SymbolSource,
    TargetError,
};

/// Record counts of the `decode` and `load` groups.
const COUNTS: [usize; 3] = [1, 64, 1024];
/// Record counts of the `engine` group.
const ENGINE_COUNTS: [usize; 2] = [1, 64];

/// Where the patched functions live in the target, 0x40 bytes apart.
const CODE_BASE: u64 = 0x40_0000;
const FUNC_SPACING: u64 = 0x40;
/// `xsplice_demo_base`, which the replacement `xsplice_new_scale` calls.
const OTHER: u64 = 0x30_0000;
/// Where payload regions are allocated: within ±2 GiB of the code.
const REGION_BASE: u64 = 0x5000_0000;

fn version_name(v: RecordVersion) -> String {
    format!("v{}", v.number())
}

/// The raw (unrelocated) `.xsplice.funcs` bytes and `sh_entsize`.
fn funcs_section(payload: &[u8]) -> (Vec<u8>, u64) {
    let elf = Elf::parse(payload).expect("ELF");
    let sh = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".xsplice.funcs"))
        .expect(".xsplice.funcs");
    let start = usize::try_from(sh.sh_offset).expect("offset");
    let end = start + usize::try_from(sh.sh_size).expect("size");
    (payload[start..end].to_vec(), sh.sh_entsize)
}

/// Resolves every name to a fixed address below 2 GiB, computed from the
/// name (no table to search): `xsplice_bench_NNNN` at
/// `CODE_BASE + NNNN * FUNC_SPACING`, anything else at `OTHER`.
struct Fixed;

impl Fixed {
    fn addr(name: &str) -> u64 {
        match name
            .strip_prefix("xsplice_bench_")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(i) => CODE_BASE + i * FUNC_SPACING,
            None => OTHER,
        }
    }
}

impl SymbolSource for Fixed {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        Some(Symbol {
            addr: Addr(Fixed::addr(name)),
            size: FUNC_SPACING,
        })
    }
    fn lookup_local(&self, name: &str, _pos: u32) -> Option<Symbol> {
        self.lookup(name)
    }
}

/// Decodes and reads every record; returns something of each so nothing is
/// optimised away.
fn decode_all(section: &[u8], entsize: u64) -> u64 {
    let records = xsplice_abi::decode(section, entsize).expect("decode");
    records.iter().fold(0, |acc, r| {
        let r = r.expect("record");
        acc ^ r.func.old_size ^ u64::from(r.func.incompat.bits())
    })
}

struct Input {
    version: RecordVersion,
    n: usize,
    payload: Vec<u8>,
    funcs: Vec<u8>,
    entsize: u64,
}

impl Input {
    fn id(&self) -> String {
        format!("{}/{}", version_name(self.version), self.n)
    }
}

fn inputs() -> Vec<Input> {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../compat-tests/fixtures/build_input.obj"
    ))
    .expect("compat-tests/fixtures/build_input.obj");
    let mut all = Vec::new();
    for version in RecordVersion::ALL {
        for n in COUNTS {
            let payload = many(&input, version, n);
            let (funcs, entsize) = funcs_section(&payload);
            // The inputs are what they claim to be.
            let p = load(
                &payload,
                &LoadOptions::default(),
                &Fixed,
                &mut Bump::default(),
            )
            .expect("load");
            assert_eq!(p.records.len(), n);
            assert_eq!(p.record_version, version);
            assert_eq!(
                xsplice_abi::decode(&funcs, entsize).expect("decode").len(),
                n
            );
            all.push(Input {
                version,
                n,
                payload,
                funcs,
                entsize,
            });
        }
    }
    all
}

fn decode_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for input in inputs() {
        g.throughput(Throughput::Elements(input.n as u64));
        g.bench_with_input(BenchmarkId::new("to_vec", input.id()), &input, |b, i| {
            b.iter(|| black_box(&i.funcs).to_vec())
        });
        g.bench_with_input(BenchmarkId::new("decode", input.id()), &input, |b, i| {
            b.iter(|| decode_all(black_box(&i.funcs), i.entsize))
        });
    }
    g.finish();
}

fn load_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("load");
    let opts = LoadOptions::default();
    for input in inputs() {
        g.throughput(Throughput::Elements(input.n as u64));
        g.bench_with_input(BenchmarkId::new("decode", input.id()), &input, |b, i| {
            b.iter(|| decode_all(black_box(&i.funcs), i.entsize))
        });
        g.bench_with_input(BenchmarkId::new("load", input.id()), &input, |b, i| {
            b.iter(|| {
                load(black_box(&i.payload), &opts, &Fixed, &mut Bump::default()).expect("load")
            })
        });
    }
    g.finish();
}

/// An in-memory target: the patched functions in one code block (a
/// prologue, then ENDBR64 at +4 for the PATCH_OFFSET + EXPECT records), the
/// time spent inside `quiesce` summed up.
struct Mock {
    code: Vec<u8>,
    regions: BTreeMap<u64, usize>,
    next_region: u64,
    critical: Duration,
}

impl Mock {
    fn new(n: usize) -> Mock {
        let mut code = vec![0xcc; n * FUNC_SPACING as usize];
        for f in code.chunks_mut(FUNC_SPACING as usize) {
            f[..4].copy_from_slice(&[0x55, 0x48, 0x89, 0xe5]);
            f[4..8].copy_from_slice(&ENDBR64);
        }
        Mock {
            code,
            regions: BTreeMap::new(),
            next_region: REGION_BASE,
            critical: Duration::ZERO,
        }
    }

    fn range(&self, addr: Addr, len: usize) -> Result<std::ops::Range<usize>, TargetError> {
        let start = addr
            .0
            .checked_sub(CODE_BASE)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or(TargetError::BadAddress(addr))?;
        let end = start + len;
        if end > self.code.len() {
            return Err(TargetError::BadAddress(addr));
        }
        Ok(start..end)
    }
}

impl SymbolSource for Mock {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        Fixed.lookup(name)
    }
    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        Fixed.lookup_local(name, pos)
    }
}

impl Allocator for Mock {
    fn allocate(&mut self, _kind: RegionKind, size: u64, _align: u64) -> Result<Addr, TargetError> {
        let addr = self.next_region;
        self.next_region += (size + 0xffff) & !0xffff;
        Ok(Addr(addr))
    }
}

impl CodeWriter for Mock {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        let r = self.range(addr, bytes.len())?;
        self.code[r].copy_from_slice(bytes);
        Ok(())
    }
    fn flush_icache(&mut self, _addr: Addr, _len: usize) {}
}

impl Target for Mock {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }
    fn map(&mut self, region: &Region) -> Result<(), TargetError> {
        self.regions.insert(region.addr.0, region.bytes.len());
        Ok(())
    }
    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        self.regions.remove(&region.addr.0);
        Ok(())
    }
    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.code[r]);
        Ok(())
    }
    fn quiesce(
        &mut self,
        _sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        let start = Instant::now();
        let r = critical(self);
        self.critical += start.elapsed();
        r
    }
    fn build_id(&self) -> Option<&[u8]> {
        None
    }
    fn run_hook(&mut self, _hook: &Hook) -> Result<HookOutcome, TargetError> {
        Ok(HookOutcome::Skipped)
    }
}

fn engine_group(c: &mut Criterion) {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../compat-tests/fixtures/build_input.obj"
    ))
    .expect("compat-tests/fixtures/build_input.obj");
    let mut g = c.benchmark_group("engine");
    for n in ENGINE_COUNTS {
        let payload = many(&input, RecordVersion::V3, n);
        let mut engine = Engine::new(Mock::new(n), LoadOptions::default());
        let id = engine.load("bench", &payload).expect("load");
        let before = engine.target().code.clone();
        engine.apply(id).expect("apply");
        assert_ne!(engine.target().code, before, "apply wrote nothing");
        engine.revert(id).expect("revert");
        assert_eq!(engine.target().code, before, "revert left bytes behind");

        let name = format!("v3/{n}");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("apply_revert", &name), |b| {
            b.iter(|| {
                engine.apply(id).expect("apply");
                engine.revert(id).expect("revert");
            })
        });
        // Apply alone: revert runs between the timed calls.
        g.bench_function(BenchmarkId::new("apply", &name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    engine.apply(id).expect("apply");
                    total += start.elapsed();
                    engine.revert(id).expect("revert");
                }
                total
            })
        });
        // The stop-the-world section of apply alone, as the target's
        // `quiesce` timed it (the closure that writes the precomputed bytes).
        g.bench_function(BenchmarkId::new("apply_critical", &name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    engine.target_mut().critical = Duration::ZERO;
                    engine.apply(id).expect("apply");
                    total += engine.target().critical;
                    engine.revert(id).expect("revert");
                }
                total
            })
        });
    }
    g.finish();
}

/// The benchmark groups (in a private module: the function the macro
/// defines is public and undocumented).
mod groups {
    use super::{decode_group, engine_group, load_group};
    criterion::criterion_group!(benches, decode_group, load_group, engine_group);
}

criterion_main!(groups::benches);
