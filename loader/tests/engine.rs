//! The engine's rules on a mock target whose memory the test controls:
//! every refusal leaves the target's bytes unchanged (read back), hooks run
//! at their points and a failing one leaves the payload where it was.

mod common;

use common::memory::{Memory, PROLOGUE};
use common::{fixture, Table};
use xsplice_abi::sections::HookPoint;
use xsplice_loader::engine::{CodeWriter, Engine, EngineError, State};
use xsplice_loader::patch::PatchError;
use xsplice_loader::{Addr, LoadOptions, TargetError};

fn engine() -> Engine<Memory> {
    Engine::new(Memory::new(Table::demo()), LoadOptions::default())
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
    let mut e = Engine::new(Memory::new(table), LoadOptions::default());
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
    let mut e = Engine::new(Memory::new(table), LoadOptions::default());
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
    let mut mock = Memory::new(table);
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
    let fresh = Memory::new(Table::demo());
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
