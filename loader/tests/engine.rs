//! The engine's rules on a mock target whose memory the test controls:
//! every refusal leaves the target's bytes unchanged (read back), hooks run
//! at their points and a failing one leaves the payload where it was.

mod common;

use std::collections::BTreeMap;

use common::{fixture, Table};
use xsplice_abi::sections::HookPoint;
use xsplice_loader::engine::{CodeWriter, Engine, EngineError, HookOutcome, Site, State, Target};
use xsplice_loader::patch::PatchError;
use xsplice_loader::{
    Addr, Allocator, Hook, LoadOptions, Region, RegionKind, Symbol, SymbolSource, TargetError,
};

const PROLOGUE: [u8; 5] = [0x55, 0x48, 0x89, 0xe5, 0x90];

/// Memory in segments; symbols from `Table::demo()` (or moved ones).
struct Mock {
    table: Table,
    segments: BTreeMap<u64, Vec<u8>>,
    next_region: u64,
    build_id: Option<Vec<u8>>,
    hook_results: BTreeMap<HookPoint, i32>,
    hook_calls: Vec<HookPoint>,
    fail_after_writes: Option<usize>,
    writes: usize,
    /// The ledger as a hypervisor would keep it across patcher runs.
    ledger: Option<Vec<u8>>,
    /// Make the next ledger write fail.
    fail_ledger: bool,
}

impl Mock {
    fn new(table: Table) -> Mock {
        let mut m = Mock {
            table,
            segments: BTreeMap::new(),
            next_region: 0x50_0000,
            build_id: Some((1..=0x14).collect()),
            hook_results: BTreeMap::new(),
            hook_calls: Vec::new(),
            fail_after_writes: None,
            writes: 0,
            ledger: None,
            fail_ledger: false,
        };
        let syms: Vec<Symbol> = m
            .table
            .globals
            .values()
            .chain(m.table.locals.values())
            .copied()
            .collect();
        for s in syms {
            let base = s.addr.0 & !0xffff;
            let seg = m
                .segments
                .entry(base)
                .or_insert_with(|| vec![0xcc; 0x1_0000]);
            let at = (s.addr.0 - base) as usize;
            seg[at..at + 5].copy_from_slice(&PROLOGUE);
        }
        m
    }

    fn find(&self, addr: u64, len: usize) -> Option<(u64, usize)> {
        let (base, seg) = self.segments.range(..=addr).next_back()?;
        let off = (addr - base) as usize;
        (off + len <= seg.len()).then_some((*base, off))
    }

    fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.read(Addr(addr), &mut b).unwrap();
        b
    }

    /// A copy of all memory, to compare before and after a refused action.
    fn snapshot(&self) -> BTreeMap<u64, Vec<u8>> {
        self.segments.clone()
    }
}

impl SymbolSource for Mock {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.table.lookup(name)
    }
    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        self.table.lookup_local(name, pos)
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
        if self.fail_after_writes == Some(self.writes) {
            // One-shot: the rollback that follows must succeed.
            self.fail_after_writes = None;
            return Err(TargetError::Unsupported("injected write failure"));
        }
        self.writes += 1;
        let (base, off) = self
            .find(addr.0, bytes.len())
            .ok_or(TargetError::BadAddress(addr))?;
        self.segments.get_mut(&base).unwrap()[off..off + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
    fn flush_icache(&mut self, _addr: Addr, _len: usize) {}
}

impl Target for Mock {
    fn arch(&self) -> xsplice_loader::Arch {
        xsplice_loader::Arch::X86_64
    }
    fn map(&mut self, region: &Region) -> Result<(), TargetError> {
        self.segments.insert(region.addr.0, region.bytes.clone());
        Ok(())
    }
    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        self.segments.remove(&region.addr.0);
        Ok(())
    }
    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        let (base, off) = self
            .find(addr.0, buf.len())
            .ok_or(TargetError::BadAddress(addr))?;
        buf.copy_from_slice(&self.segments[&base][off..off + buf.len()]);
        Ok(())
    }
    fn quiesce(
        &mut self,
        _sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        critical(self)
    }
    fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }
    fn ledger_read(&self) -> Result<Option<Vec<u8>>, TargetError> {
        Ok(self.ledger.clone())
    }
    fn ledger_write(&mut self, bytes: &[u8]) -> Result<(), TargetError> {
        if self.fail_ledger {
            return Err(TargetError::Unsupported("injected ledger failure"));
        }
        self.ledger = Some(bytes.to_vec());
        Ok(())
    }
    fn run_hook(&mut self, hook: &Hook) -> Result<HookOutcome, TargetError> {
        self.hook_calls.push(hook.point);
        Ok(HookOutcome::Returned(
            self.hook_results.get(&hook.point).copied().unwrap_or(0),
        ))
    }
}

fn engine() -> Engine<Mock> {
    Engine::new(Mock::new(Table::demo()), LoadOptions::default())
}

fn addr(name: &str) -> u64 {
    Table::demo().addr(name)
}

#[test]
fn every_v3_feature_writes_what_it_says() {
    let mut e = engine();
    let id = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
    e.apply(id).unwrap();
    let m = e.target();
    // NOP: 3 bytes of NOPs at the site.
    assert_eq!(
        m.bytes(addr("xsplice_demo_nop_site"), 4),
        [0x0f, 0x1f, 0x00, PROLOGUE[3]]
    );
    // PATCH_OFFSET: the jump is 4 bytes into the function.
    let endbr = addr("xsplice_demo_endbr_site");
    assert_eq!(
        m.bytes(endbr, 4),
        PROLOGUE[..4],
        "bytes before the offset untouched"
    );
    assert_eq!(m.bytes(endbr + 4, 1), [0xe9]);
    // SYMPOS 2: the second local called xsplice_demo_local_helper.
    let p = e.payload(id).unwrap();
    let local = p.records.iter().find(|r| r.func.sympos == 2).unwrap();
    assert_eq!(
        local.old_addr.0,
        Table::demo().locals[&("xsplice_demo_local_helper".into(), 2)]
            .addr
            .0
    );
    assert_eq!(m.bytes(local.old_addr.0, 1), [0xe9]);
    // EXPECT matched the prologue, and the jump lands on the new code.
    let scale = p
        .records
        .iter()
        .find(|r| r.name == "xsplice_demo_scale")
        .unwrap();
    let jmp = m.bytes(scale.site.0, 5);
    let rel = i32::from_le_bytes(jmp[1..5].try_into().unwrap()) as i64;
    assert_eq!(
        (scale.site.0 as i64 + 5 + rel) as u64,
        scale.func.new_addr.0
    );
    // Hooks ran at their points.
    assert_eq!(m.hook_calls, [HookPoint::PreApply, HookPoint::PostApply]);
}

#[test]
fn refusals_leave_the_bytes_unchanged() {
    // Missing dependency: the target's build-id differs.
    let mut e = engine();
    e.target_mut().build_id = Some(vec![0xee; 20]);
    let id = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
    let before = e.target().snapshot();
    let err = e.apply(id).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Dependency {
                what: "the running image",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(e.target().snapshot(), before);
    assert_eq!(e.state(id).unwrap(), State::Loaded);

    // EXPECT mismatch: the prologue of the function differs.
    let mut e = engine();
    let scale = addr("xsplice_demo_scale");
    e.target_mut().write_code(Addr(scale + 1), &[0x31]).unwrap();
    let id = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
    let before = e.target().snapshot();
    let err = e.apply(id).unwrap_err();
    match &err {
        EngineError::ExpectMismatch {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, "xsplice_demo_scale");
            assert_eq!(expected, &PROLOGUE);
            assert_eq!(found[1], 0x31);
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("record 3 `xsplice_demo_scale`"),
        "{err}"
    );
    assert_eq!(e.target().snapshot(), before);

    // A write failing midway is rolled back inside the critical section.
    let mut e = engine();
    let id = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
    let before = e.target().snapshot();
    e.target_mut().fail_after_writes = Some(2);
    assert!(matches!(
        e.apply(id),
        Err(EngineError::Target(TargetError::Unsupported(_)))
    ));
    assert_eq!(e.target().snapshot(), before);
    assert_eq!(e.state(id).unwrap(), State::Loaded);
}

#[test]
fn failing_hooks_leave_the_payload_in_its_previous_state() {
    for (point, calls_written) in [(HookPoint::PreApply, false), (HookPoint::PostApply, true)] {
        let mut e = engine();
        let id = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
        let before = e.target().snapshot();
        e.target_mut().hook_results.insert(point, -22);
        let err = e.apply(id).unwrap_err();
        assert!(
            matches!(err, EngineError::HookFailed { point: p, ret: -22, .. } if p == point),
            "{err}"
        );
        assert_eq!(e.target().snapshot(), before, "{point:?}");
        assert_eq!(e.state(id).unwrap(), State::Loaded);
        assert!(e.applied().is_empty());
        // Post-apply failed after the writes: they were made, then undone.
        assert_eq!(e.target().writes > 0, calls_written, "{point:?}");
    }
}

#[test]
fn overlapping_sites_conflict_but_the_same_site_stacks() {
    // Move endbr_site so that features' PATCH_OFFSET record (site +4)
    // overlaps the jump live_v3 writes at xsplice_demo_answer.
    let mut table = Table::demo();
    let answer = table.addr("xsplice_demo_answer");
    table
        .globals
        .get_mut("xsplice_demo_endbr_site")
        .unwrap()
        .addr = Addr(answer - 2);
    let mut e = Engine::new(Mock::new(table), LoadOptions::default());
    let features = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
    e.apply(features).unwrap();
    let live = e.load("live", &fixture("live_v3-nopic.o")).unwrap();
    let before = e.target().snapshot();
    let err = e.apply(live).unwrap_err();
    assert!(
        matches!(err, EngineError::SiteConflict { other, .. } if other == features),
        "{err}"
    );
    assert_eq!(e.target().snapshot(), before);
    e.revert(features).unwrap();
    e.apply(live).unwrap();

    // The very same site (v2 over v3 on answer and scale) stacks, and
    // reverting the top restores the lower payload's jump.
    let v2 = e.load("v2", &fixture("live_v2-nopic.o")).unwrap();
    let v3_jump = e.target().bytes(addr("xsplice_demo_answer"), 5);
    e.apply(v2).unwrap();
    assert_ne!(e.target().bytes(addr("xsplice_demo_answer"), 5), v3_jump);
    e.revert(v2).unwrap();
    assert_eq!(e.target().bytes(addr("xsplice_demo_answer"), 5), v3_jump);
    assert!(matches!(
        e.unload(live),
        Err(EngineError::WrongState {
            state: State::Applied,
            ..
        })
    ));
}

#[test]
fn records_of_one_payload_may_not_overlap() {
    // features' PATCH_OFFSET record (endbr_site + 4) lands inside the 3 NOP
    // bytes of its NOP record at nop_site.
    let mut table = Table::demo();
    let nop = table.addr("xsplice_demo_nop_site");
    table
        .globals
        .get_mut("xsplice_demo_endbr_site")
        .unwrap()
        .addr = Addr(nop - 2);
    let mut e = Engine::new(Mock::new(table), LoadOptions::default());
    let id = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
    let before = e.target().snapshot();
    let err = e.apply(id).unwrap_err();
    match &err {
        EngineError::SiteConflict {
            other,
            other_record,
            record,
            name,
            ..
        } => {
            assert_eq!((*other, other_record.0, record.0), (id, 0, 1));
            assert_eq!(name, "xsplice_demo_endbr_site");
        }
        other => panic!("{other}"),
    }
    assert_eq!(e.target().snapshot(), before);
}

#[test]
fn jump_out_of_range_is_refused() {
    // The payload lands more than 2 GiB above the functions it patches;
    // the function it calls is moved next to it so it still relocates.
    let mut table = Table::demo();
    table.globals.get_mut("xsplice_demo_base").unwrap().addr = Addr(0x1_0000_1000);
    let mut mock = Mock::new(table);
    mock.next_region = 0x1_0010_0000;
    let mut e = Engine::new(mock, LoadOptions::default());
    let id = e.load("live", &fixture("live_v1-nopic.o")).unwrap();
    let before = e.target().snapshot();
    let err = e.apply(id).unwrap_err();
    assert!(
        matches!(err, EngineError::Patch { problem: PatchError::OutOfRange { .. }, ref name, .. } if name == "xsplice_demo_answer"),
        "{err}"
    );
    assert_eq!(e.target().snapshot(), before);
}

/// A later run (a new engine over the same target) sees what an earlier run
/// applied: the one-copy rule, only-the-top revert, and revert itself, with
/// the revert hooks run from the ledger.
#[test]
fn a_new_engine_continues_from_the_ledger() {
    let mut e = engine();
    let feats = e.load("features", &fixture("features_v3-nopic.o")).unwrap();
    e.apply(feats).unwrap();
    let live = e.load("live", &fixture("live_v3-nopic.o")).unwrap();
    e.apply(live).unwrap();
    let written = e.ledger().unwrap();
    assert_eq!(written.entries.len(), 2);
    let mut target = e.into_target();
    let patched = target.snapshot();
    target.hook_calls.clear();

    let mut e = Engine::open(target, LoadOptions::default()).unwrap();
    assert_eq!(e.ledger().unwrap(), written, "restored as written");
    let restored: Vec<_> = e.applied().to_vec();
    assert_eq!(restored.len(), 2);
    assert!(matches!(
        e.payload(restored[0]),
        Err(EngineError::Restored(_))
    ));

    // The same payload again: refused by identity, nothing written.
    let again = e.load("live again", &fixture("live_v3-nopic.o")).unwrap();
    let err = e.apply(again).unwrap_err();
    assert!(
        matches!(&err, EngineError::AlreadyApplied { applied, .. } if applied == "live"),
        "{err}"
    );
    e.unload(again).unwrap();
    assert_eq!(e.target().snapshot(), patched);

    // Only the top reverts; reverting both gives back the original bytes.
    assert!(matches!(
        e.revert(restored[0]),
        Err(EngineError::NotTop { .. })
    ));
    e.revert(restored[1]).unwrap();
    e.revert(restored[0]).unwrap();
    let fresh = Mock::new(Table::demo());
    for name in [
        "xsplice_demo_answer",
        "xsplice_demo_nop_site",
        "xsplice_demo_endbr_site",
    ] {
        assert_eq!(
            e.target().bytes(addr(name), 8),
            fresh.bytes(addr(name), 8),
            "{name}"
        );
    }
    assert!(e.ledger().unwrap().is_empty());
    assert!(
        xsplice_loader::ledger::Ledger::decode(e.target().ledger.as_deref().unwrap())
            .unwrap()
            .is_empty()
    );
}

/// A ledger that cannot be stored undoes the action: applied code that is
/// not recorded would be invisible to the next run.
#[test]
fn a_failed_ledger_write_undoes_the_apply() {
    let mut e = engine();
    let id = e.load("live", &fixture("live_v3-nopic.o")).unwrap();
    let before = e.target().snapshot();
    e.target_mut().fail_ledger = true;
    let err = e.apply(id).unwrap_err();
    assert!(matches!(err, EngineError::Target(_)), "{err}");
    assert_eq!(e.target().snapshot(), before);
    assert_eq!(e.state(id).unwrap(), State::Loaded);
    assert!(e.applied().is_empty());
}
