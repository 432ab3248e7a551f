//! Live patching of this very test process (Linux x86-64 and AArch64,
//! where CI runs it under qemu-user): the same
//! function call returns the old value, the new value after apply, and the
//! old value after revert, for gcc-built payloads of v1, v2 and v3 in every
//! code model; payloads stack, and replace swaps the whole stack.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod common;
#[path = "common/demo.rs"]
mod demo;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::native_fixture as fixture;
use demo::{answer, base, code_bytes, scale, xsplice_demo_answer};
use xsplice_loader::engine::{CodeWriter, Engine, EngineError, HookOutcome, Site, State, Target};
use xsplice_loader::process::ProcessTarget;
use xsplice_loader::{
    Addr, Allocator, Hook, LoadOptions, Region, RegionKind, Symbol, SymbolSource, TargetError,
};

// ---- an allocation counter, to show the critical section allocates nothing --

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    /// This thread is inside `quiesce` (rendezvous included). Per thread:
    /// the threads being stopped may allocate until they arrive.
    static IN_CRITICAL: Cell<bool> = const { Cell::new(false) };
}
static CRITICAL_ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        if IN_CRITICAL.with(Cell::get) {
            CRITICAL_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts the writes of a critical section.
struct Counted<'a> {
    inner: &'a mut dyn CodeWriter,
    writes: &'a mut usize,
}

impl CodeWriter for Counted<'_> {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        *self.writes += 1;
        self.inner.write_code(addr, bytes)
    }
    fn flush_icache(&mut self, addr: Addr, len: usize) {
        self.inner.flush_icache(addr, len)
    }
}

/// A ProcessTarget whose critical sections are watched.
struct Watched {
    inner: ProcessTarget,
    critical_sections: usize,
    writes: usize,
}

impl SymbolSource for Watched {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.inner.lookup(name)
    }
    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        self.inner.lookup_local(name, pos)
    }
}

impl Allocator for Watched {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        self.inner.allocate(kind, size, align)
    }
}

impl CodeWriter for Watched {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        self.inner.write_code(addr, bytes)
    }
    fn flush_icache(&mut self, addr: Addr, len: usize) {
        self.inner.flush_icache(addr, len)
    }
}

impl Target for Watched {
    fn arch(&self) -> xsplice_loader::Arch {
        self.inner.arch()
    }
    fn map(&mut self, region: &Region) -> Result<(), TargetError> {
        self.inner.map(region)
    }
    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        self.inner.unmap(region)
    }
    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        self.inner.read(addr, buf)
    }
    fn quiesce(
        &mut self,
        sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        self.critical_sections += 1;
        let mut writes = 0;
        // The whole of the process target's quiesce is watched: the
        // rendezvous, the writes, the serialisation and the release.
        IN_CRITICAL.with(|c| c.set(true));
        let r = self.inner.quiesce(sites, &mut |cw| {
            critical(&mut Counted {
                inner: cw,
                writes: &mut writes,
            })
        });
        IN_CRITICAL.with(|c| c.set(false));
        self.writes += writes;
        r
    }
    fn build_id(&self) -> Option<&[u8]> {
        self.inner.build_id()
    }
    fn run_hook(&mut self, hook: &Hook) -> Result<HookOutcome, TargetError> {
        self.inner.run_hook(hook)
    }
}

fn engine() -> Engine<Watched> {
    // SAFETY: the payloads are the gcc-built fixtures for these very
    // functions; nothing else patches code or uses the signal, and no
    // payload is unloaded while a thread could run it (the test calls the
    // functions from this thread only).
    let inner = unsafe { ProcessTarget::new() }.unwrap();
    Engine::new(
        Watched {
            inner,
            critical_sections: 0,
            writes: 0,
        },
        LoadOptions::default(),
    )
}

/// One test: the patched functions are process-global, so the steps run in
/// order rather than as parallel tests.
#[test]
fn live_patching_in_process() {
    assert_eq!((answer(), scale(10)), (41, 20));
    // Referenced here so the linker keeps it for the payloads to call.
    assert_eq!(base(), 1000);
    let pristine = code_bytes(xsplice_demo_answer as *const () as usize);
    let mut e = engine();

    // Another thread allocates all along: the rendezvous stops it, perhaps
    // holding the allocator's lock, so the patcher must not allocate until
    // it has released it (it would deadlock, or be counted below).
    let stop = AtomicBool::new(false);
    let churned = std::thread::scope(|s| {
        // Stops the churn on a panic too: the scope joins it before the
        // panic propagates, so the test fails instead of hanging.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let churn = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += std::hint::black_box(vec![n; 16]).len() as u64;
            }
            n
        });
        let stopper = Stop(&stop);
        versions_in_every_code_model(&mut e, pristine);
        drop(stopper);
        churn.join().unwrap()
    });
    assert!(churned > 0);
    assert!(e.target().inner.stats().last_threads >= 1);

    // The critical sections allocated nothing and only wrote bytes.
    assert!(e.target().critical_sections >= 18);
    assert!(e.target().writes >= 36, "two records per apply and revert");
    assert_eq!(CRITICAL_ALLOCS.load(Ordering::SeqCst), 0);
    assert!(ALLOCS.load(Ordering::SeqCst) > 0);

    stack_and_replace(&mut e, pristine);
}

/// Every version in every code model: apply, observe, revert, observe.
fn versions_in_every_code_model(e: &mut Engine<Watched>, pristine: [u8; 5]) {
    for (v, want) in [("v1", 42), ("v2", 43), ("v3", 44)] {
        let mult = want - 39; // 3, 4, 5
        for flavour in ["nopic", "pic", "large"] {
            let name = format!("live_{v}-{flavour}.o");
            let id = e
                .load(&name, &fixture(&name))
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            e.check(id).unwrap();
            assert_eq!(answer(), 41, "{name}: check writes nothing");
            e.apply(id).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!((answer(), scale(10)), (want, 10 * mult + 1000), "{name}");
            e.revert(id).unwrap();
            assert_eq!((answer(), scale(10)), (41, 20), "{name}");
            assert_eq!(
                code_bytes(xsplice_demo_answer as *const () as usize),
                pristine,
                "{name}: bytes restored"
            );
            e.unload(id).unwrap();
        }
    }
}

/// A stack: v1, then v2 and v3 on top; only the top reverts; then replace.
fn stack_and_replace(e: &mut Engine<Watched>, pristine: [u8; 5]) {
    let v1 = e.load("v1", &fixture("live_v1-nopic.o")).unwrap();
    let v2 = e.load("v2", &fixture("live_v2-pic.o")).unwrap();
    let v3 = e.load("v3", &fixture("live_v3-large.o")).unwrap();
    e.apply(v1).unwrap();
    e.apply(v2).unwrap();
    assert_eq!((answer(), scale(1)), (43, 1004));
    assert!(matches!(e.revert(v1), Err(EngineError::NotTop { .. })));
    assert_eq!(answer(), 43, "a refused revert changes nothing");
    e.apply(v3).unwrap();
    assert_eq!(answer(), 44);
    e.revert(v3).unwrap();
    assert_eq!(
        (answer(), scale(1)),
        (43, 1004),
        "back to v2, not to the original"
    );
    assert!(matches!(
        e.apply(v2),
        Err(EngineError::WrongState {
            state: State::Applied,
            ..
        })
    ));

    // Replace: revert v2 and v1, apply v3 alone.
    e.replace(v3).unwrap();
    assert_eq!(e.applied(), [v3]);
    assert_eq!(
        (e.state(v1).unwrap(), e.state(v2).unwrap()),
        (State::Reverted, State::Reverted)
    );
    assert_eq!((answer(), scale(1)), (44, 1005));
    e.revert(v3).unwrap();
    assert_eq!((answer(), scale(10)), (41, 20));
    assert_eq!(
        code_bytes(xsplice_demo_answer as *const () as usize),
        pristine
    );
    assert_eq!(CRITICAL_ALLOCS.load(Ordering::SeqCst), 0);
}
