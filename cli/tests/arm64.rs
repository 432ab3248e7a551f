//! AArch64 code patched by xsplice, executed (issue 16): the AArch64 twin of
//! the hypervisor example (`examples/hypervisor-arm64`) is built by
//! `aarch64-linux-gnu-gcc` as a static, a PIE and a static-pie image, its
//! fix as `-fno-pic`, `-fpic`, `-fPIC` and `-fpie` objects; `xsplice build`
//! makes each a payload against each image, `xsplice apply --image` patches
//! the image, and `qemu-aarch64-static` runs the result, which must print
//! the fixed line. Without the cross compiler or qemu the tests skip loudly,
//! or fail under `XSPLICE_REQUIRE_TOOLS=1` (CI).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const CC: &str = "aarch64-linux-gnu-gcc";
const QEMU: &str = "qemu-aarch64-static";
/// Where a dynamic PIE finds its loader and libc under qemu-user.
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const BUGGY: &str = "hv: version 1, sum = 6 (expected 10), fix none: BUG";
const FIXED: &str = "hv: version 2, sum = 10 (expected 10), fix hv-fix-arm64: OK";

/// Whether the cross compiler and qemu run; otherwise a loud skip, or a
/// failure under `XSPLICE_REQUIRE_TOOLS=1`.
/// (`apt-get install gcc-aarch64-linux-gnu qemu-user-static`)
fn tools(test: &str) -> bool {
    [CC, QEMU]
        .into_iter()
        .all(|tool| have_tool(tool, "--version", test))
}

/// Runs the cross compiler from the example's directory (so the relative
/// `#include`s resolve) and expects success.
fn cc(args: &[&str], out: &Path) {
    let dir = root().join("examples/hypervisor-arm64");
    let o = Command::new(CC)
        .args(["-O1", "-fno-stack-protector", "-Wl,--build-id=sha1"])
        .args(args)
        .arg("-o")
        .arg(out)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{CC} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs an AArch64 executable under qemu-user: its stdout and exit status.
fn qemu(exe: &Path) -> (String, i32) {
    let o = Command::new(QEMU)
        .args(["-L", SYSROOT])
        .arg(exe)
        .output()
        .unwrap();
    if !o.status.success() {
        eprintln!(
            "{} under qemu: {}",
            exe.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    (
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
        o.status.code().unwrap_or(-1),
    )
}

/// The image kinds: name and link flags.
const IMAGES: [(&str, &[&str]); 3] = [
    ("static", &["-static", "-fno-pie", "-no-pie"]),
    ("pie", &["-fpie", "-pie"]),
    ("static-pie", &["-fpie", "-static-pie"]),
];

/// The payload code models.
const FLAVOURS: [&str; 4] = ["-fno-pic", "-fpic", "-fPIC", "-fpie"];

/// Links `hv.c` into `d/hv-{tag}` with `flags` and checks it runs buggy.
fn image(d: &Path, tag: &str, flags: &[&str]) -> PathBuf {
    let out = d.join(format!("hv-{tag}"));
    let mut args = flags.to_vec();
    args.push("hv.c");
    cc(&args, &out);
    assert_eq!(qemu(&out), (BUGGY.to_string(), 1), "unpatched {tag}");
    out
}

/// Built files, each with its kind or flavour.
type Built = Vec<(&'static str, PathBuf)>;

/// Builds the images and the fix objects in `d`.
fn build(d: &Path) -> (Built, Built) {
    let images: Vec<_> = IMAGES
        .iter()
        .map(|(kind, flags)| (*kind, image(d, kind, flags)))
        .collect();
    let objects: Vec<_> = FLAVOURS
        .iter()
        .map(|f| {
            let out = d.join(format!("fix{f}.o"));
            cc(&[f, "-O2", "-c", "fix.c"], &out);
            (*f, out)
        })
        .collect();
    (images, objects)
}

/// `xsplice build` of `object` against `image`, then `xsplice apply`: the
/// patched image's path, or the CLI's stderr.
fn patch(d: &Path, image: &Path, object: &Path, tag: &str) -> Result<PathBuf, String> {
    patch_with(d, image, object, tag, "hv_sum=fix_hv_sum")
}

/// [`patch`] with the `--patch` argument of `hv_sum` given.
fn patch_with(
    d: &Path,
    image: &Path,
    object: &Path,
    tag: &str,
    sum: &str,
) -> Result<PathBuf, String> {
    let payload = d.join(format!("payload-{tag}.o"));
    let r = xsplice(&[
        "build",
        s(object),
        "-o",
        s(&payload),
        "--image",
        s(image),
        "--depends-image",
        "--patch",
        sum,
        "--patch",
        "hv_version=fix_hv_version",
    ]);
    if r.code != 0 {
        return Err(r.stderr);
    }
    let out = d.join(format!("patched-{tag}"));
    let r = xsplice(&["apply", "--image", s(image), "-o", s(&out), s(&payload)]);
    if r.code != 0 {
        return Err(r.stderr);
    }
    Ok(out)
}

/// Every payload flavour on every image kind runs fixed under qemu.
#[test]
fn every_flavour_on_every_image_kind_runs_fixed_under_qemu() {
    if !tools("every_flavour_on_every_image_kind_runs_fixed_under_qemu") {
        return;
    }
    let d = tmp("arm64-matrix");
    let (images, objects) = build(&d);
    let mut matrix = Vec::new();
    for (kind, image) in &images {
        for (flavour, object) in &objects {
            let tag = format!("{kind}{flavour}");
            let out = patch(&d, image, object, &tag)
                .unwrap_or_else(|e| panic!("{flavour} payload on {kind} image refused:\n{e}"));
            assert_eq!(
                qemu(&out),
                (FIXED.to_string(), 0),
                "{flavour} payload on {kind}"
            );
            let result = "runs fixed";
            matrix.push(format!("{flavour:9} x {kind:10} -> {result}"));
        }
    }
    eprintln!("{}", matrix.join("\n"));
    // -mcmodel=large loads addresses from literal pools (ABS64): refused on
    // a PIE image, with the AArch64 hint.
    let large = d.join("fix-large.o");
    cc(
        &["-fno-pic", "-mcmodel=large", "-O2", "-c", "fix.c"],
        &large,
    );
    let (kind, pie) = &images[1];
    let e = patch(&d, pie, &large, "large").expect_err("ABS64 on a PIE image");
    assert!(
        e.contains("position-independent") && e.contains("hint: on AArch64"),
        "{kind}: {e}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// The text arena 256 MiB above the image's code (static and static-pie),
/// beyond the ±128 MiB of `b`/`bl`: the patch sites get the long branch
/// (`adrp x16; add; br x16`), the fix's calls back into the image go through
/// veneers, every flavour runs fixed, and reverting gives back the image
/// byte for byte; an `old_size` too small for the long branch is refused
/// with the sizes named.
#[test]
fn an_arena_beyond_branch_reach_runs_fixed_through_veneers() {
    if !tools("an_arena_beyond_branch_reach_runs_fixed_through_veneers") {
        return;
    }
    let d = tmp("arm64-far");
    let far = "-Wl,--section-start=.xsplice.arena.text=0x10400000";
    for flavour in FLAVOURS {
        let object = d.join(format!("fix{flavour}.o"));
        cc(&[flavour, "-O2", "-c", "fix.c"], &object);
    }
    for (kind, flags) in [IMAGES[0], IMAGES[2]] {
        let image = image(&d, &format!("far-{kind}"), &[flags, &[far]].concat());
        for flavour in FLAVOURS {
            let object = d.join(format!("fix{flavour}.o"));
            let tag = format!("far-{kind}{flavour}");
            let out = patch(&d, &image, &object, &tag).unwrap_or_else(|e| {
                panic!("{flavour} payload on the far arena of {kind} refused:\n{e}")
            });
            assert_eq!(qemu(&out), (FIXED.to_string(), 0), "{flavour} on {kind}");
            // Reverting restores the 12-byte long branches byte for byte.
            let back = d.join(format!("reverted-{tag}"));
            ok(&["revert", "--all", "--image", s(&out), "-o", s(&back)]);
            assert_eq!(
                std::fs::read(&back).unwrap(),
                std::fs::read(&image).unwrap()
            );
            eprintln!("{flavour:9} x {kind}, arena +256 MiB -> runs fixed, reverts");
        }
    }
    let image = d.join("hv-far-static");
    let object = d.join("fix-fno-pic.o");
    let e = patch_with(&d, &image, &object, "small", "hv_sum=fix_hv_sum,old-size=8")
        .expect_err("an 8-byte old function has no room for the long branch");
    assert!(
        e.contains("needs 12 bytes at the function's entry: 8 available"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// `-fPIC -mcmodel=tiny` (`R_AARCH64_GOT_LD_PREL19`, refused before issue
/// 16) on the static and the static-pie image, through the library: `xsplice
/// build` checks a payload at dry-run addresses whose regions are 16 MiB
/// apart, beyond the tiny model's ±1 MiB, so the payload is built and
/// applied here against the image itself, where the arenas are close.
#[test]
fn tiny_code_model_payload_runs_fixed_under_qemu() {
    use xsplice_loader::engine::Engine;
    use xsplice_loader::image::ImageTarget;
    use xsplice_loader::write::{OldTarget, Patch, PayloadBuilder};
    use xsplice_loader::{LoadOptions, SymbolSource as _};

    if !tools("tiny_code_model_payload_runs_fixed_under_qemu") {
        return;
    }
    let d = tmp("arm64-tiny");
    let object = d.join("fix-tiny.o");
    cc(&["-fPIC", "-mcmodel=tiny", "-O2", "-c", "fix.c"], &object);
    for (kind, flags) in [IMAGES[0], IMAGES[2]] {
        let image = image(&d, kind, flags);
        let bytes = std::fs::read(&image).unwrap();
        let target = ImageTarget::new(bytes).unwrap();
        let mut builder = PayloadBuilder::from_object(&std::fs::read(&object).unwrap()).unwrap();
        for (old, new) in [("hv_sum", "fix_hv_sum"), ("hv_version", "fix_hv_version")] {
            let size = target.lookup(old).unwrap().size;
            builder.patch(Patch::replace(OldTarget::Name(old.into()), new, size));
        }
        let payload = builder.build().unwrap();
        let mut engine = Engine::new(target, LoadOptions::default());
        let id = engine.load("fix-tiny", &payload).unwrap();
        engine.apply(id).unwrap();
        let out = d.join(format!("patched-tiny-{kind}"));
        std::fs::write(&out, engine.target().bytes()).unwrap();
        std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        assert_eq!(qemu(&out), (FIXED.to_string(), 0), "tiny on {kind}");
        eprintln!("-fPIC -mcmodel=tiny x {kind} -> runs fixed");
    }
    std::fs::remove_dir_all(&d).ok();
}
