//! The ledger end to end (issue 11): an image patched in one run is
//! stacked, listed, refused and reverted by later runs, and reverting
//! everything gives back the original file byte for byte. The payloads are
//! the gcc-built `examples/hypervisor/fix_sum.o` (depends on `hv`, has a
//! build-id) and `fix_version.o` (depends on `fix_sum.o`'s build-id).

mod common;

use std::path::Path;

use common::*;

const SUM: &str = "examples/hypervisor/fix_sum.o";
const VERSION: &str = "examples/hypervisor/fix_version.o";
const BUGGY: &str = "hv: version 1, sum = 6 (expected 10), fix none: BUG";
const SUM_FIXED: &str = "hv: version 1, sum = 10 (expected 10), fix none: OK";
const BOTH: &str = "hv: version 3, sum = 10 (expected 10), fix hv-fix-2/stack: OK";

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// Expects a refusal that writes nothing: `out` stays absent and every
/// input keeps its bytes.
fn refused_untouched(args: &[&str], out: &Path, inputs: &[&Path]) -> Run {
    let before: Vec<Vec<u8>> = inputs.iter().map(|p| read(&root().join(p))).collect();
    let r = fails(args);
    assert!(!out.exists(), "{args:?} created {}", out.display());
    for (p, b) in inputs.iter().zip(before) {
        assert_eq!(read(&root().join(p)), b, "{args:?} changed {}", p.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    r
}

#[test]
fn apply_apply_list_revert_revert_gives_back_the_image() {
    let d = tmp("ledger-stack");
    let (hv1, hv2, hv3) = (d.join("hv1"), d.join("hv2"), d.join("hv3"));
    let (r1, r2) = (d.join("r1"), d.join("r2"));

    // B depends on A: refused on the bare image.
    let r = refused_untouched(
        &["apply", "--image", HV, "-o", s(&hv1), VERSION],
        &hv1,
        &[Path::new(HV)],
    );
    assert!(r.stderr.contains("depends on build-id"), "{}", r.stderr);

    ok(&["apply", "--image", HV, "-o", s(&hv1), SUM]);
    assert_eq!(run_exe(&hv1), (SUM_FIXED.into(), 0));
    ok(&["apply", "--image", s(&hv1), "-o", s(&hv2), VERSION]);
    assert_eq!(run_exe(&hv2), (BOTH.into(), 0));

    // The stack, as text and as JSON.
    let text = ok(&["list", "--image", s(&hv2)]).stdout;
    assert!(text.contains("2 payloads applied, bottom first"), "{text}");
    let sum_at = text.find("fix_sum.o").unwrap();
    let version_at = text.find("fix_version.o").unwrap();
    assert!(sum_at < version_at, "{text}");
    let v = json(&["list", "--image", s(&hv2), "--json"]);
    let applied = v["applied"].as_array().unwrap();
    assert_eq!(applied.len(), 2);
    assert_eq!(applied[0]["name"], SUM);
    assert_eq!(applied[0]["identity_kind"], "build-id");
    assert_eq!(applied[0]["depends"], HV_BUILD_ID);
    assert_eq!(applied[1]["depends"], applied[0]["identity"]);
    assert_eq!(applied[0]["sites"][0]["function"], "hv_sum");
    assert_eq!(applied[0]["sites"][0]["addr"], "0x401132");
    assert_eq!(applied[1]["sites"][0]["function"], "hv_version");
    let text_arena = v["arenas"][0]["used"].as_u64().unwrap();
    assert!(text_arena > 0);

    // inspect and check say the image is patched, and by what.
    let c = ok(&["check", VERSION, "--image", s(&hv1)]).stdout;
    assert!(c.contains(&format!("is patched by: {SUM}")), "{c}");
    let i = json(&["inspect", FIX, "--image", s(&hv2), "--json"]);
    assert_eq!(i["image"]["applied"], serde_json::json!([SUM, VERSION]));

    // The same payload twice: refused by name, nothing written.
    let r = refused_untouched(
        &["apply", "--image", s(&hv2), "-o", s(&hv3), SUM],
        &hv3,
        &[&hv2],
    );
    assert!(r.stderr.contains("already applied"), "{}", r.stderr);
    // Only the top reverts.
    let r = refused_untouched(
        &["revert", "--image", s(&hv2), "-o", s(&r1), "fix_sum.o"],
        &r1,
        &[&hv2],
    );
    assert!(r.stderr.contains("not the top"), "{}", r.stderr);

    // Revert B (by name), run; revert A; the original image comes back.
    ok(&["revert", "--image", s(&hv2), "-o", s(&r1), "fix_version.o"]);
    assert_eq!(run_exe(&r1), (SUM_FIXED.into(), 0));
    assert_eq!(read(&r1), read(&hv1), "reverting B gives back hv1 exactly");
    ok(&["revert", "--image", s(&r1), "-o", s(&r2)]);
    assert_eq!(read(&r2), read(&root().join(HV)));
    assert_eq!(run_exe(&r2), (BUGGY.into(), 1));
    let r = refused_untouched(&["revert", "--image", s(&r2), "-o", s(&hv3)], &hv3, &[&r2]);
    assert!(r.stderr.contains("nothing is applied"), "{}", r.stderr);

    // --all, in one run.
    ok(&["revert", "--all", "--image", s(&hv2), "-o", s(&hv3)]);
    assert_eq!(read(&hv3), read(&root().join(HV)));
}

#[test]
fn replace_on_a_patched_image_and_revert() {
    let d = tmp("ledger-replace");
    let (hv1, hv2, back) = (d.join("hv1"), d.join("hv2"), d.join("back"));
    ok(&["apply", "--image", HV, "-o", s(&hv1), FIX_V1]);
    // Without --replace, the v3 fix clashes with the v1 one at its sites.
    let r = refused_untouched(
        &["apply", "--image", s(&hv1), "-o", s(&hv2), FIX],
        &hv2,
        &[&hv1],
    );
    assert!(r.stderr.contains("depends on build-id"), "{}", r.stderr);
    ok(&["apply", "--image", s(&hv1), "-o", s(&hv2), "--replace", FIX]);
    assert_eq!(run_exe(&hv2), (FIXED_V3.into(), 0));
    let v = json(&["list", "--image", s(&hv2), "--json"]);
    assert_eq!(v["applied"].as_array().unwrap().len(), 1);
    assert_eq!(v["applied"][0]["name"], FIX);
    // The replaced payload's arena bytes went back: reverting the one left
    // gives the original image.
    ok(&["revert", "--image", s(&hv2), "-o", s(&back)]);
    assert_eq!(read(&back), read(&root().join(HV)));
}

#[test]
fn writing_over_the_input_needs_force_and_is_atomic() {
    let d = tmp("ledger-inplace");
    let img = d.join("hv");
    std::fs::copy(root().join(HV), &img).unwrap();
    let before = read(&img);
    let r = fails(&["apply", "--image", s(&img), "-o", s(&img), SUM]);
    assert!(r.stderr.contains("refusing to overwrite"), "{}", r.stderr);
    assert_eq!(read(&img), before);
    ok(&["apply", "--image", s(&img), "-o", s(&img), "--force", SUM]);
    assert_eq!(run_exe(&img), (SUM_FIXED.into(), 0));
    ok(&["revert", "--image", s(&img), "-o", s(&img), "--force"]);
    assert_eq!(read(&img), before);
}

#[test]
fn a_tampered_site_or_ledger_is_refused() {
    let d = tmp("ledger-tamper");
    let hv1 = d.join("hv1");
    ok(&["apply", "--image", HV, "-o", s(&hv1), SUM]);
    let patched = read(&hv1);

    // Someone wrote over the jump at hv_sum (file offset of 0x401132).
    let mut bytes = patched.clone();
    let at = 0x1132;
    assert_eq!(bytes[at], 0xe9);
    bytes[at] = 0x90;
    let bad = d.join("tampered");
    std::fs::write(&bad, &bytes).unwrap();
    let out = d.join("out");
    let r = refused_untouched(
        &["apply", "--image", s(&bad), "-o", s(&out), VERSION],
        &out,
        &[&bad],
    );
    assert!(r.stderr.contains("the ledger wrote"), "{}", r.stderr);
    let r = fails(&["list", "--image", s(&bad)]);
    assert!(r.stderr.contains("hv_sum"), "{}", r.stderr);

    // A ledger byte flipped (the entry count) is named with its offset.
    let mut bytes = patched.clone();
    let footer = bytes.len() - 16;
    let size = u32::from_le_bytes(bytes[footer..footer + 4].try_into().unwrap()) as usize;
    let ledger_at = footer - size;
    bytes[ledger_at + 12] = 9;
    std::fs::write(&bad, &bytes).unwrap();
    let r = refused_untouched(
        &["revert", "--image", s(&bad), "-o", s(&out)],
        &out,
        &[&bad],
    );
    assert!(r.stderr.contains("ledger, offset 12"), "{}", r.stderr);
}
