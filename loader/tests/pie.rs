//! A position-independent image (gcc's default, ET_DYN) patched offline,
//! built by gcc at test time from `tests/pie/*.c`: a PIE-compiled payload
//! applies and the image runs fixed; a `-fno-pic` payload, whose code holds
//! absolute addresses nothing would fix up at run time, is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use xsplice_loader::engine::{Engine, EngineError};
use xsplice_loader::image::ImageTarget;
use xsplice_loader::{LoadError, LoadOptions, RelocProblem};

fn gcc(args: &[&str], out: &Path) -> bool {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pie");
    let status = Command::new("gcc")
        .current_dir(&src)
        .args(args)
        .arg("-o")
        .arg(out)
        .status();
    status.is_ok_and(|s| s.success())
}

fn run(exe: &Path) -> String {
    for _ in 0..50 {
        match Command::new(exe).output() {
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => {
                return String::from_utf8(other.unwrap().stdout)
                    .unwrap()
                    .trim()
                    .to_string()
            }
        }
    }
    panic!("{} stayed busy", exe.display());
}

#[test]
fn pie_image_patched_offline() {
    let dir = std::env::temp_dir().join(format!("xsplice-pie-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (img, pie, nopic) = (dir.join("img"), dir.join("fix.o"), dir.join("fix-nopic.o"));
    if !common::have_tool("gcc", "pie_image_patched_offline") {
        return;
    }
    assert!(gcc(&["-O2", "img.c"], &img));
    assert!(gcc(&["-O2", "-c", "fix.c"], &pie));
    assert!(gcc(&["-O2", "-fno-pic", "-c", "fix.c"], &nopic));
    assert_eq!(run(&img), "compute=4 allowed=0 greet=hello old counter=5");

    let image = std::fs::read(&img).unwrap();
    let mut e = Engine::new(
        ImageTarget::new(image.clone()).unwrap(),
        LoadOptions::default(),
    );
    let id = e.load("fix", &std::fs::read(&pie).unwrap()).unwrap();
    e.apply(id).unwrap();
    let patched = dir.join("img-patched");
    std::fs::write(&patched, e.target().bytes()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&patched, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        run(&patched),
        "compute=10 allowed=1 greet=hello new counter=6"
    );

    let mut e = Engine::new(ImageTarget::new(image).unwrap(), LoadOptions::default());
    let err = e
        .load("fix-nopic", &std::fs::read(&nopic).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Load(LoadError::Relocation { problem: RelocProblem::AbsoluteInPositionIndependent, section, .. })
                if section == ".text"
        ),
        "{err}"
    );

    // A stack written by hand in C: fix, then stack_a (own build-id, a hook),
    // then stack_b, which depends on stack_a's build-id.
    let (a, b) = (dir.join("stack_a.o"), dir.join("stack_b.o"));
    assert!(gcc(&["-O2", "-c", "stack_a.c"], &a));
    assert!(gcc(&["-O2", "-c", "stack_b.c"], &b));
    let image = std::fs::read(&img).unwrap();
    let mut e = Engine::new(
        ImageTarget::new(image.clone()).unwrap(),
        LoadOptions::default(),
    );
    for (name, path) in [("fix", &pie), ("stack_a", &a), ("stack_b", &b)] {
        let id = e.load(name, &std::fs::read(path).unwrap()).unwrap();
        e.apply(id).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    assert_eq!(
        e.target().skipped_hooks(),
        1,
        "stack_a's pre-apply hook is not run offline"
    );
    std::fs::write(&patched, e.target().bytes()).unwrap();
    assert_eq!(
        run(&patched),
        "compute=2010 allowed=1 greet=hello new counter=5"
    );
    // stack_b alone: its dependency is not the image.
    let mut e = Engine::new(ImageTarget::new(image).unwrap(), LoadOptions::default());
    let id = e.load("stack_b", &std::fs::read(&b).unwrap()).unwrap();
    assert!(matches!(
        e.apply(id),
        Err(EngineError::Dependency {
            what: "the running image",
            ..
        })
    ));
    std::fs::remove_dir_all(&dir).ok();
}
