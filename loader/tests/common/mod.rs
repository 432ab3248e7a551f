//! Shared helpers of the loader's integration tests.
#![allow(dead_code)]

#[cfg(feature = "write")]
pub mod bench_payload;
pub mod memory;

use std::collections::BTreeMap;
use std::path::PathBuf;

use xsplice_loader::{Addr, Allocator, RegionKind, Symbol, SymbolSource, TargetError};

/// Path of a file under `compat-tests/fixtures/`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../compat-tests/fixtures")
        .join(name)
}

/// Bytes of a fixture object.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `expected.json`'s entry for a fixture.
pub fn expected(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_path("expected.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all["objects"][name].clone()
}

/// A symbol table for tests: globals plus numbered locals.
#[derive(Default)]
pub struct Table {
    pub globals: BTreeMap<String, Symbol>,
    pub locals: BTreeMap<(String, u32), Symbol>,
}

impl Table {
    /// The symbols the fixtures name, at fixed addresses below 2 GiB.
    pub fn demo() -> Table {
        let mut t = Table::default();
        for (i, name) in [
            "xsplice_demo_answer",
            "xsplice_demo_scale",
            "xsplice_demo_base",
            "xsplice_demo_nop_site",
            "xsplice_demo_endbr_site",
            "xsplice_demo_counter",
        ]
        .iter()
        .enumerate()
        {
            t.globals.insert(
                name.to_string(),
                Symbol {
                    addr: Addr(0x40_1000 + 0x100 * i as u64),
                    size: 0x40,
                },
            );
        }
        for pos in 1..=3 {
            t.locals.insert(
                ("xsplice_demo_local_helper".into(), pos),
                Symbol {
                    addr: Addr(0x40_2000 + 0x100 * u64::from(pos)),
                    size: 0x40,
                },
            );
        }
        t
    }

    pub fn addr(&self, name: &str) -> u64 {
        self.globals[name].addr.0
    }
}

impl SymbolSource for Table {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.globals.get(name).copied()
    }
    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        self.locals.get(&(name.to_string(), pos)).copied()
    }
}

/// A bump allocator at a fixed base, per region kind.
pub struct Bump {
    pub next: u64,
}

impl Default for Bump {
    fn default() -> Self {
        Bump { next: 0x5000_0000 }
    }
}

impl Allocator for Bump {
    fn allocate(&mut self, _kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        let a = align.max(4096);
        let start = self.next.div_ceil(a) * a;
        self.next = start + size;
        Ok(Addr(start))
    }
}

/// Whether `tool` runs. When it does not: a skip message, or a failure
/// under `XSPLICE_REQUIRE_TOOLS=1` (CI, where every tool is installed).
pub fn have_tool(tool: &str, test: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("XSPLICE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{test}: `{tool}` is missing and XSPLICE_REQUIRE_TOOLS=1"
        );
        eprintln!("SKIPPED {test}: `{tool}` is not installed");
    }
    ok
}

/// `tests/arch/payload.c`: the format 3.1 payload with every arch table.
pub fn arch_source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/arch/payload.c")
}

/// The 1-based line of `tests/arch/payload.c` that holds `text`.
pub fn arch_line_of(text: &str) -> u32 {
    let src = std::fs::read_to_string(arch_source()).unwrap();
    let i = src.lines().position(|l| l.contains(text)).unwrap();
    u32::try_from(i + 1).unwrap()
}

/// Builds `tests/arch/payload.c` with `compiler` and `flags` (against the
/// generated header) into a file of its own; its path.
pub fn build_arch(compiler: &str, flags: &[&str]) -> PathBuf {
    // One file per build: tests run in parallel and must not read an
    // object another test is still writing.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!(
        "arch-{compiler}-{}-{}-{n}.o",
        flags.join("").replace(['-', '='], ""),
        std::process::id()
    );
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/generated");
    let mut args = vec!["-std=gnu11", "-O2", "-Wall", "-Werror", "-I"];
    args.push(include.to_str().unwrap());
    args.extend_from_slice(flags);
    compile(compiler, &args, &arch_source(), &out);
    out
}

/// `compiler -c ARGS source -o out`, which must succeed.
fn compile(compiler: &str, args: &[&str], source: &std::path::Path, out: &std::path::Path) {
    let res = std::process::Command::new(compiler)
        .arg("-c")
        .args(args)
        .arg(source)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{compiler} {args:?} {}: {}",
        source.display(),
        String::from_utf8_lossy(&res.stderr)
    );
}

/// The C compiler that builds AArch64 payloads at test time: the cross
/// compiler where it runs (CI runs the AArch64 tests under qemu-user on
/// x86-64, where the test binary starts the host's cross compiler), else
/// `gcc` (a native AArch64 machine); `None`, after [`have_tool`]'s skip or
/// failure, when neither runs.
pub fn aarch64_cc(test: &str) -> Option<&'static str> {
    let runs = |cc: &str| {
        std::process::Command::new(cc)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs("aarch64-linux-gnu-gcc") {
        return Some("aarch64-linux-gnu-gcc");
    }
    (cfg!(target_arch = "aarch64") && have_tool("gcc", test)).then_some("gcc")
}

/// A fixture for the machine the tests run on: on x86-64 the committed
/// object; on AArch64 the same source (`compat-tests/fixtures/*.c`) built
/// now with `regen.sh`'s flags, since few are committed for AArch64.
/// `live_vN-FLAVOUR.o` (`nopic` is `-fno-pic`, `pic` `-fpic`, `large`
/// `-mcmodel=large -fno-pic`) and `build_input.obj` (`-fno-pic`).
pub fn native_fixture(name: &str) -> Vec<u8> {
    if cfg!(not(target_arch = "aarch64")) {
        return fixture(name);
    }
    let (source, flavour) = match name.strip_suffix(".o") {
        Some(n) => n.split_once('-'),
        None => name.strip_suffix(".obj").map(|n| (n, "nopic")),
    }
    .unwrap_or_else(|| panic!("{name}: not live_vN-FLAVOUR.o nor NAME.obj"));
    // The large model exists only without PIC on AArch64 (and Debian's
    // compilers default to PIE).
    let flags: &[&str] = match flavour {
        "nopic" => &["-fno-pic"],
        "pic" => &["-fpic"],
        "large" => &["-mcmodel=large", "-fno-pic"],
        _ => panic!("{name}: unknown flavour"),
    };
    let cc = aarch64_cc(name).unwrap_or_else(|| panic!("{name}: no AArch64 C compiler"));
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("aarch64-{name}-{}-{n}.o", std::process::id()));
    let mut args = vec!["-O2", "-fno-stack-protector"];
    args.extend_from_slice(flags);
    compile(cc, &args, &fixture_path(&format!("{source}.c")), &out);
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    bytes
}
