//! Offline patching of the example image: the patched executable runs with
//! the fix, and every refusal leaves the image's bytes unchanged.

use std::path::PathBuf;
use std::process::Command;

use xsplice_loader::engine::{Engine, EngineError, State};
use xsplice_loader::image::ImageTarget;
use xsplice_loader::LoadOptions;

fn example(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/hypervisor")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Writes `bytes` as an executable in a fresh temp dir and runs it.
fn run(bytes: &[u8], tag: &str) -> (String, i32) {
    let dir = std::env::temp_dir().join(format!("xsplice-image-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("hv");
    std::fs::write(&exe, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another test thread forking at the moment this file was written may
    // briefly hold it open (ETXTBSY): retry a few times.
    let mut tries = 0;
    let out = loop {
        match Command::new(&exe).output() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    std::fs::remove_dir_all(&dir).ok();
    (
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
        out.status.code().unwrap_or(-1),
    )
}

fn engine() -> Engine<ImageTarget> {
    Engine::new(
        ImageTarget::new(example("hv")).unwrap(),
        LoadOptions::default(),
    )
}

#[test]
fn unpatched_image_shows_the_bug() {
    assert_eq!(
        run(&example("hv"), "orig"),
        (
            "hv: version 1, sum = 6 (expected 10), fix none: BUG".into(),
            1
        )
    );
}

#[test]
fn v3_fix_applies_and_the_image_runs_fixed() {
    let mut e = engine();
    let id = e.load("fix", &example("fix.o")).unwrap();
    e.check(id).unwrap();
    e.apply(id).unwrap();
    assert_eq!(e.state(id).unwrap(), State::Applied);
    let out = run(e.target().bytes(), "v3");
    assert_eq!(
        out,
        (
            "hv: version 2, sum = 10 (expected 10), fix hv-fix-1/v3: OK".into(),
            0
        )
    );
}

#[test]
fn payload_for_another_machine_is_refused() {
    let arm = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../compat-tests/fixtures/live_v3-aarch64-nopic.o"),
    )
    .unwrap();
    let err = engine().load("arm", &arm).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ELF header: payload is for aarch64, the target is x86_64"
    );
}

#[test]
fn v1_fix_applies_too() {
    let mut e = engine();
    let id = e.load("fix_v1", &example("fix_v1.o")).unwrap();
    e.apply(id).unwrap();
    assert_eq!(
        run(e.target().bytes(), "v1").0,
        "hv: version 2, sum = 10 (expected 10), fix hv-fix-1/v1: OK"
    );
}

#[test]
fn revert_restores_the_original_bytes_exactly() {
    let orig = ImageTarget::new(example("hv")).unwrap();
    let mut e = engine();
    let id = e.load("fix", &example("fix.o")).unwrap();
    let loaded = e.target().bytes().to_vec(); // arenas written, code untouched
    e.apply(id).unwrap();
    assert_ne!(e.target().bytes(), &loaded[..]);
    e.revert(id).unwrap();
    assert_eq!(e.target().bytes(), &loaded[..]);
    assert_eq!(run(e.target().bytes(), "reverted").1, 1);
    // Only the arenas differ from the original image.
    let diff = orig
        .bytes()
        .iter()
        .zip(e.target().bytes())
        .filter(|(a, b)| a != b)
        .count();
    assert!(diff > 0);
}

#[test]
fn dependency_on_another_build_id_is_refused_and_nothing_changes() {
    // fix.o depends on hv's build-id; v1 has none. Stack fix.o on top of
    // fix_v1.o: it now depends on the payload below, which has no build-id.
    let mut e = engine();
    let base = e.load("fix_v1", &example("fix_v1.o")).unwrap();
    e.apply(base).unwrap();
    let before = e.target().bytes().to_vec();
    let id = e.load("fix", &example("fix.o")).unwrap();
    let after_load = e.target().bytes().to_vec();
    let err = e.apply(id).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Dependency {
                what: "the payload below it",
                found: None,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(e.target().bytes(), &after_load[..]);
    assert_ne!(before, after_load); // the load wrote only into the arenas
                                    // Replace reverts the v1 fix first, so the image is below again: it applies.
    e.replace(id).unwrap();
    assert_eq!(e.applied(), [id]);
    assert_eq!(
        run(e.target().bytes(), "replaced").0,
        "hv: version 2, sum = 10 (expected 10), fix hv-fix-1/v3: OK"
    );
    // Only the top can be reverted; base is no longer applied.
    assert!(matches!(
        e.revert(base),
        Err(EngineError::WrongState { .. })
    ));
}

#[test]
fn symbol_presence_explains_a_failed_lookup() {
    use xsplice_loader::image::SymbolPresence;
    let target = ImageTarget::new(example("hv")).unwrap();
    // A function the image defines, one it imports from libc (`U
    // printf@GLIBC_2.2.5` in its .symtab: the version is not part of the
    // name), a static one (`frame_dummy`), and one it does not know.
    let global = SymbolPresence {
        global: true,
        ..SymbolPresence::default()
    };
    assert_eq!(target.symbol_presence("hv_sum"), global);
    let imported = SymbolPresence {
        imported: true,
        ..SymbolPresence::default()
    };
    assert_eq!(target.symbol_presence("printf"), imported);
    assert_eq!(target.symbol_presence("frame_dummy").locals, 1);
    assert_eq!(
        target.symbol_presence("no_such_function"),
        SymbolPresence::default()
    );
}

#[test]
fn an_imported_function_resolves_to_its_plt_entry() {
    use xsplice_loader::SymbolSource;
    let bytes = example("hv");
    let target = ImageTarget::new(bytes.clone()).unwrap();
    // hv calls printf (libc.so) through its PLT: `ff 25 disp32` at the
    // entry, jumping through the GOT slot of printf's JUMP_SLOT relocation.
    assert_eq!(target.lookup("printf"), None);
    let entry = target.lookup_import("printf").expect("printf@plt").addr.0;
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let plt = elf
        .section_headers
        .iter()
        .find(|h| elf.shdr_strtab.get_at(h.sh_name) == Some(".plt"))
        .unwrap();
    assert!(entry > plt.sh_addr && entry < plt.sh_addr + plt.sh_size);
    let at = usize::try_from(plt.sh_offset + (entry - plt.sh_addr)).unwrap();
    assert_eq!(&bytes[at..at + 2], &[0xff, 0x25]);
    let disp = i32::from_le_bytes(bytes[at + 2..at + 6].try_into().unwrap());
    let slot = (entry + 6).wrapping_add_signed(i64::from(disp));
    let jump_slot = elf.pltrelocs.iter().find(|r| {
        elf.dynstrtab
            .get_at(elf.dynsyms.get(r.r_sym).unwrap().st_name)
            == Some("printf")
    });
    assert_eq!(jump_slot.unwrap().r_offset, slot);
    // A name the image does not import, and a function it defines, are
    // not imports; `__libc_start_main` is imported but never called
    // through a PLT entry.
    assert_eq!(target.lookup_import("puts"), None);
    assert_eq!(target.lookup_import("hv_sum"), None);
    assert_eq!(target.lookup_import("__libc_start_main"), None);
}
