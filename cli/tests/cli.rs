//! End-to-end tests of the `xsplice` binary on the committed fixtures: the
//! JSON of `inspect`, every exit status, offline apply (running the patched
//! image), `--replace`, `build`, `upgrade` round trips, and malformed inputs.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_json_live_v1_nopic() {
    let f = fixture("live_v1-nopic.o");
    let v = json(&["inspect", &f, "--json"]);
    assert_eq!(v["file"], f.as_str());
    assert_eq!(v["arch"], "x86_64");
    assert_eq!(v["format"], serde_json::json!({"major": 1, "minor": 0}));
    assert_eq!(v["note"], Value::Null);
    assert_eq!(v["record_version"], 1);
    assert_eq!(v["record_size"], 64);
    assert_eq!(v["image"], Value::Null);
    let r = records(&v);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["index"], 0);
    assert_eq!(r[0]["name"], "xsplice_demo_answer");
    assert_eq!(r[1]["name"], "xsplice_demo_scale");
    for rec in r {
        assert_eq!(rec["old_addr"], "0x0");
        assert_eq!(rec["resolved_old_addr"], Value::Null);
        assert_eq!(rec["old_size"], 16);
        assert_eq!(rec["incompat"], serde_json::json!([]));
        assert_eq!(rec["incompat_bits"], 0);
        assert_eq!(rec["compat_bits"], 0);
        assert_eq!(rec["expect"], "");
        assert!(rec["new_addr"].as_str().unwrap().starts_with("0x"));
        assert!(rec["new_size"].as_u64().unwrap() > 0);
    }
    assert_eq!(v["build_id"], Value::Null);
    assert_eq!(v["depends"], Value::Null);
    assert_eq!(
        v["unresolved"],
        serde_json::json!([
            "xsplice_demo_answer",
            "xsplice_demo_base",
            "xsplice_demo_scale"
        ])
    );
}

#[test]
fn inspect_json_live_v3_pic() {
    let v = json(&["inspect", &fixture("live_v3-pic.o"), "--json"]);
    assert_eq!(v["format"], serde_json::json!({"major": 3, "minor": 0}));
    assert_eq!(v["note"]["record_version"], 3);
    assert_eq!(v["note"]["record_size"], 128);
    assert_eq!(v["note"]["incompat_bits"], 0);
    assert_eq!(
        (v["record_version"].clone(), v["record_size"].clone()),
        (3.into(), 128.into())
    );
    let names: Vec<&str> = records(&v)
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["xsplice_demo_answer", "xsplice_demo_scale"]);
    assert!(v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == ".xsplice.funcs" && s["region"] == "rodata" && s["size"] == 256));
}

#[test]
fn inspect_json_features_v3_nopic() {
    let v = json(&["inspect", &fixture("features_v3-nopic.o"), "--json"]);
    assert_eq!(
        v["note"]["incompat"],
        serde_json::json!(["NOP", "PATCH_OFFSET", "SYMPOS", "EXPECT"])
    );
    assert_eq!(v["note"]["incompat_bits"], 15);
    let r = records(&v);
    assert_eq!(r.len(), 4);
    assert_eq!(r[0]["incompat"], serde_json::json!(["NOP"]));
    assert_eq!(r[0]["new_addr"], "0x0");
    assert_eq!(r[0]["new_size"], 3);
    assert_eq!(r[1]["incompat"], serde_json::json!(["PATCH_OFFSET"]));
    assert_eq!(r[1]["patch_offset"], 4);
    assert_eq!(r[2]["incompat"], serde_json::json!(["SYMPOS"]));
    assert_eq!(r[2]["sympos"], 2);
    assert_eq!(r[3]["incompat"], serde_json::json!(["EXPECT"]));
    assert_eq!(r[3]["incompat_bits"], 8);
    assert_eq!(r[3]["expect"], "554889e590");
    // old_addr relocated against an undefined symbol: the dry-run
    // placeholder, which is not a resolution.
    assert_ne!(r[3]["old_addr"], "0x0");
    assert_eq!(r[3]["resolved_old_addr"], Value::Null);
    assert_eq!(v["build_id"], "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3");
    assert_eq!(v["depends"], "0102030405060708090a0b0c0d0e0f1011121314");
    let points: Vec<&str> = v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["point"].as_str().unwrap())
        .collect();
    assert_eq!(points, ["preapply", "postapply"]);
    let vendor = v["vendor"].as_array().unwrap();
    assert_eq!(vendor.len(), 2);
    assert_eq!(vendor[0]["vendor"], 0x8000_0001u32);
    assert_eq!(vendor[0]["record"], 0);
    assert_eq!(vendor[0]["data"], "616263");
    assert_eq!(vendor[1]["record"], Value::Null);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
}

#[test]
fn inspect_json_fix_with_and_without_image() {
    let dry = json(&["inspect", FIX, "--json"]);
    assert_eq!(dry["depends"], HV_BUILD_ID);
    assert_eq!(dry["image"], Value::Null);
    let r = records(&dry);
    assert_eq!(r[0]["name"], "hv_sum");
    assert_eq!(r[0]["new_size"], 88);
    assert_eq!(r[0]["old_size"], 76);
    assert_eq!(r[1]["name"], "hv_version");
    assert_eq!(r[1]["new_size"], 35);
    assert_eq!(r[1]["old_size"], 24);
    assert!(dry["unresolved"]
        .as_array()
        .unwrap()
        .contains(&Value::from("hv_scale")));

    let v = json(&["inspect", FIX, "--image", HV, "--json"]);
    assert_eq!(v["image"]["path"], HV);
    assert_eq!(v["image"]["build_id"], HV_BUILD_ID);
    assert_eq!(v["unresolved"], serde_json::json!([]));
    let r = records(&v);
    assert_eq!(r[0]["old_addr"], "0x0");
    assert_eq!(r[0]["resolved_old_addr"], "0x401132");
    assert_eq!(r[0]["site"], "0x401132");
    assert_eq!(r[1]["resolved_old_addr"], "0x40117e");
    // New code is placed in the image's text arena (0x402000, 64 KiB).
    for rec in r {
        let a = u64::from_str_radix(
            rec["new_addr"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        assert!((0x402000..0x412000).contains(&a), "{a:#x}");
    }
    // The records are the same with and without the image, but for addresses.
    for (a, b) in records(&dry).iter().zip(r) {
        for k in [
            "index",
            "name",
            "new_size",
            "old_size",
            "incompat_bits",
            "expect",
        ] {
            assert_eq!(a[k], b[k], "{k}");
        }
    }
}

#[test]
fn inspect_text_mentions_everything() {
    let r = ok(&["inspect", &fixture("features_v3-nopic.o")]);
    for needle in [
        "arch        x86_64",
        "format      3.0",
        "record 3  xsplice_demo_scale",
        "expect        554889e590",
        "preapply[0]",
        "vendor 0x80000001 kind 1",
        "unresolved (no image given): xsplice_demo_base",
        "warnings",
    ] {
        assert!(r.stdout.contains(needle), "{needle:?} in\n{}", r.stdout);
    }
    assert!(!r.stdout.contains("\nsections\n"));
    let v = ok(&["-v", "inspect", &fixture("features_v3-nopic.o")]);
    assert!(v.stdout.contains("\nsections\n"));
    assert!(v.stdout.contains(".xsplice.funcs"));
    let legacy = ok(&["inspect", FIX_V1]);
    assert!(
        legacy.stdout.contains("none (v1 legacy)"),
        "{}",
        legacy.stdout
    );
}

/// The whole `inspect --json` of one fixture, compared with a committed
/// file. `XSPLICE_BLESS=1 cargo test -p xsplice-cli` rewrites it.
#[test]
fn inspect_json_snapshot() {
    let out = ok(&["inspect", &fixture("features_v3-nopic.o"), "--json"]).stdout;
    let snap = root().join("cli/tests/snapshots/inspect-features_v3-nopic.json");
    if std::env::var_os("XSPLICE_BLESS").is_some() {
        std::fs::write(&snap, &out).unwrap();
    }
    let expected = std::fs::read_to_string(&snap)
        .unwrap_or_else(|e| panic!("{}: {e} (run with XSPLICE_BLESS=1)", snap.display()));
    assert_eq!(
        out, expected,
        "inspect --json changed; if on purpose, rerun with XSPLICE_BLESS=1 and update cli/JSON.md"
    );
}

// ------------------------------------------------------------------ check

#[test]
fn check_every_fixture_without_image() {
    let dir = root().join("compat-tests/fixtures");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".o") {
            continue;
        }
        let r = ok(&["check", &fixture(&name)]);
        assert!(r.stdout.starts_with("ok: "), "{name}: {}", r.stdout);
        n += 1;
    }
    assert!(n >= 16, "{n} fixtures");
    let r = ok(&["check", FIX]);
    assert!(
        r.stdout
            .starts_with("ok: 2 records, record version v3, format 3.0\n"),
        "{}",
        r.stdout
    );
    let r = ok(&["check", FIX_V1]);
    assert!(r
        .stdout
        .starts_with("ok: 2 records, record version v1, format 1.0\n"));
}

#[test]
fn check_against_the_image() {
    let r = ok(&["check", FIX, "--image", HV]);
    assert!(r
        .stdout
        .starts_with("ok: 2 records, record version v3, format 3.0"));
    ok(&["check", FIX_V1, "--image", HV]);
    // The fixtures patch functions hv does not have.
    let r = fails(&["check", &fixture("live_v3-nopic.o"), "--image", HV]);
    assert!(r.stderr.contains("xsplice_demo"), "{}", r.stderr);
    assert!(r.stderr.contains("hint: "), "{}", r.stderr);
    // An image without arenas: the payload itself is not an image.
    let r = fails(&["check", FIX, "--image", FIX_V1]);
    assert!(r.stderr.contains(FIX_V1), "{}", r.stderr);
}

#[test]
fn check_json_verdicts() {
    let v = json(&["check", FIX, "--image", HV, "--json"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["records"], 2);
    assert_eq!(v["record_version"], 3);
    assert_eq!(v["error"], Value::Null);
    let r = fails(&[
        "check",
        &fixture("live_v1-nopic.o"),
        "--image",
        HV,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("xsplice_demo"));
    assert_eq!(v["records"], Value::Null);
}

/// `check --json`'s plan is what `apply` writes: each site holds the
/// plan's `old` bytes before and its `new` bytes after.
#[test]
fn check_plan_is_what_apply_writes() {
    use xsplice_loader::engine::Target as _;
    use xsplice_loader::image::ImageTarget;
    let v = json(&["check", FIX, "--image", HV, "--json"]);
    let plan = v["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 2);
    let out = tmp("check-plan").join("hv-patched");
    ok(&["apply", "--image", HV, "-o", s(&out), FIX]);
    let image = |p: &Path| ImageTarget::new(std::fs::read(p).unwrap()).unwrap();
    let (before, after) = (image(&root().join(HV)), image(&out));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for w in plan {
        let site = u64::from_str_radix(w["site"].as_str().unwrap().trim_start_matches("0x"), 16);
        let site = xsplice_loader::Addr(site.unwrap());
        let mut bytes = vec![0; w["new"].as_str().unwrap().len() / 2];
        before.read(site, &mut bytes).unwrap();
        assert_eq!(hex(&bytes), w["old"], "{w}");
        after.read(site, &mut bytes).unwrap();
        assert_eq!(hex(&bytes), w["new"], "{w}");
        assert_eq!(bytes[0], 0xe9, "a jmp rel32: {w}");
    }
    // Without an image there is no plan.
    assert_eq!(json(&["check", FIX, "--json"])["plan"], Value::Null);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let r = ok(&["-q", "check", FIX]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = ok(&["check", "-q", &fixture("features_v3-nopic.o")]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    // Without -q the unknown vendor entries are warnings on stderr.
    let r = ok(&["check", &fixture("features_v3-nopic.o")]);
    assert!(r.stderr.lines().all(|l| l.starts_with("warning: ")));
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
}

// ------------------------------------------------------------------ apply

#[test]
fn apply_fix_and_run_the_patched_image() {
    let d = tmp("apply");
    let out = d.join("hv-patched");
    let r = ok(&["apply", "--image", HV, "-o", s(&out), FIX]);
    assert!(r
        .stdout
        .contains("applied examples/hypervisor/fix.o: 2 records (v3, format 3.0)"));
    assert!(r
        .stdout
        .contains("record 0 hv_sum: site 0x401132 -> jump to 0x"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(run_exe(&out), (FIXED_V3.to_string(), 0));
    // The input image is untouched.
    assert_eq!(
        run_exe(&root().join(HV)),
        (
            "hv: version 1, sum = 6 (expected 10), fix none: BUG".to_string(),
            1
        )
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn apply_v1_and_replace_with_v3() {
    let d = tmp("replace");
    let v1 = d.join("hv-v1");
    ok(&["apply", "--image", HV, "-o", s(&v1), FIX_V1]);
    assert_eq!(
        run_exe(&v1).0,
        "hv: version 2, sum = 10 (expected 10), fix hv-fix-1/v1: OK"
    );
    // Stacked, fix.o depends on the image, not on the v1 payload below it.
    let stacked = d.join("hv-stacked");
    let r = fails(&["apply", "--image", HV, "-o", s(&stacked), FIX_V1, FIX]);
    assert!(r.stderr.contains("depends on build-id"), "{}", r.stderr);
    assert!(r.stderr.contains("--replace"), "{}", r.stderr);
    assert!(!stacked.exists(), "nothing is written on error");
    let replaced = d.join("hv-replaced");
    let r = ok(&[
        "apply",
        "--image",
        HV,
        "-o",
        s(&replaced),
        "--replace",
        FIX_V1,
        FIX,
    ]);
    assert!(
        r.stdout.contains("replaced with examples/hypervisor/fix.o"),
        "{}",
        r.stdout
    );
    assert_eq!(run_exe(&replaced), (FIXED_V3.to_string(), 0));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn apply_refuses_to_overwrite_its_input() {
    let d = tmp("force");
    let img = d.join("hv");
    std::fs::copy(root().join(HV), &img).unwrap();
    let before = std::fs::read(&img).unwrap();
    let r = fails(&["apply", "--image", s(&img), "-o", s(&img), FIX]);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(std::fs::read(&img).unwrap(), before);
    ok(&["apply", "--image", s(&img), "-o", s(&img), "--force", FIX]);
    assert_eq!(run_exe(&img), (FIXED_V3.to_string(), 0));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn apply_errors() {
    let d = tmp("apply-errors");
    let out = d.join("out");
    // Not an image.
    fails(&["apply", "--image", FIX, "-o", s(&out), FIX]);
    // The fixtures patch functions hv does not have.
    fails(&[
        "apply",
        "--image",
        HV,
        "-o",
        s(&out),
        &fixture("live_v2-nopic.o"),
    ]);
    // Missing files name their path.
    let r = fails(&["apply", "--image", "no/such/hv", "-o", s(&out), FIX]);
    assert!(r.stderr.contains("no/such/hv"), "{}", r.stderr);
    let r = fails(&["apply", "--image", HV, "-o", s(&out), "no/such.o"]);
    assert!(r.stderr.contains("no/such.o"), "{}", r.stderr);
    // Output into a directory that does not exist.
    let r = fails(&["apply", "--image", HV, "-o", "no/such/dir/out", FIX]);
    assert!(r.stderr.contains("no/such/dir/out"), "{}", r.stderr);
    assert!(!out.exists());
    std::fs::remove_dir_all(&d).ok();
}

// ------------------------------------------------------- build and upgrade

/// `inspect --json` records with what legitimately changes across record
/// versions removed (addresses depend on the layout of the rewritten file).
fn canonical_records(v: &Value) -> Vec<Value> {
    records(v)
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let o = r.as_object_mut().unwrap();
            o.remove("new_addr");
            r
        })
        .collect()
}

#[test]
fn upgrade_round_trip_keeps_the_records() {
    let d = tmp("upgrade");
    let v3 = d.join("fix_v1-to-v3.o");
    let v2 = d.join("fix_v1-to-v3-to-v2.o");
    let r = ok(&["upgrade", FIX_V1, "--to", "3", "-o", s(&v3)]);
    assert!(r.stdout.contains("(2 x v1, format 1.0)"), "{}", r.stdout);
    assert!(r.stdout.contains("(2 x v3, format 3.0)"), "{}", r.stdout);
    ok(&["upgrade", s(&v3), "--to", "2", "-o", s(&v2)]);
    let a = json(&["inspect", FIX_V1, "--image", HV, "--json"]);
    let b = json(&["inspect", s(&v3), "--image", HV, "--json"]);
    let c = json(&["inspect", s(&v2), "--image", HV, "--json"]);
    assert_eq!(
        (b["record_version"].as_u64(), b["record_size"].as_u64()),
        (Some(3), Some(128))
    );
    assert_eq!(
        (c["record_version"].as_u64(), c["record_size"].as_u64()),
        (Some(2), Some(64))
    );
    assert_eq!(
        b["note"]["format"],
        serde_json::json!({"major": 3, "minor": 0})
    );
    assert_eq!(canonical_records(&a), canonical_records(&b));
    assert_eq!(canonical_records(&a), canonical_records(&c));
    // Each rewritten payload still applies and fixes the image.
    let out = d.join("hv-v2");
    ok(&["apply", "--image", HV, "-o", s(&out), s(&v2)]);
    assert_eq!(
        run_exe(&out).0,
        "hv: version 2, sum = 10 (expected 10), fix hv-fix-1/v1: OK"
    );
    // Downgrading a payload that uses v3 features to v1 is refused, by name.
    let r = fails(&[
        "upgrade",
        &fixture("features_v3-nopic.o"),
        "--to",
        "1",
        "-o",
        s(&d.join("x.o")),
    ]);
    assert!(r.stderr.contains("record 0"), "{}", r.stderr);
    // The input is not overwritten without --force.
    fails(&["upgrade", s(&v3), "--to", "3", "-o", s(&v3)]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn build_from_the_writer_input_object() {
    let d = tmp("build");
    let obj = fixture("build_input.obj");
    for version in ["1", "2", "3"] {
        let out = d.join(format!("built-v{version}.o"));
        let r = ok(&[
            "build",
            &obj,
            "-o",
            s(&out),
            "--record-version",
            version,
            "--patch",
            "xsplice_demo_answer=xsplice_new_answer,old-size=16",
            "--patch",
            "xsplice_demo_scale=xsplice_new_scale,old-size=16",
            "--build-id",
            "abababababababababababababababababababab",
        ]);
        assert!(
            r.stdout
                .starts_with(&format!("built {}: 2 records (v{version}", s(&out))),
            "{}",
            r.stdout
        );
        let v = json(&["inspect", s(&out), "--json"]);
        assert_eq!(v["record_version"], version.parse::<u64>().unwrap());
        assert_eq!(v["build_id"], "abababababababababababababababababababab");
        let names: Vec<&str> = records(&v)
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["xsplice_demo_answer", "xsplice_demo_scale"]);
        assert_eq!(records(&v)[0]["old_size"], 16);
    }
    // v3 features, and what v1 cannot express.
    let out = d.join("features.o");
    ok(&[
        "build",
        &obj,
        "-o",
        s(&out),
        "--patch",
        "xsplice_demo_answer=xsplice_new_answer,old-size=32,offset=4,expect=f30f1efa",
        "--patch",
        "xsplice_demo_nop_site,nop=3,old-size=16",
        "--depends",
        "0102030405060708090a0b0c0d0e0f1011121314",
    ]);
    let v = json(&["inspect", s(&out), "--json"]);
    let r = records(&v);
    assert_eq!(
        r[0]["incompat"],
        serde_json::json!(["PATCH_OFFSET", "EXPECT"])
    );
    assert_eq!(r[0]["expect"], "f30f1efa");
    assert_eq!(r[0]["patch_offset"], 4);
    assert_eq!(r[1]["incompat"], serde_json::json!(["NOP"]));
    assert_eq!(v["depends"], "0102030405060708090a0b0c0d0e0f1011121314");
    let r = fails(&[
        "build",
        &obj,
        "-o",
        s(&d.join("v1.o")),
        "--record-version",
        "1",
        "--patch",
        "xsplice_demo_nop_site,nop=3,old-size=16",
    ]);
    assert!(r.stderr.contains("hint: "), "{}", r.stderr);
    // Without --image the old size must be given.
    let r = fails(&[
        "build",
        &obj,
        "-o",
        s(&d.join("x.o")),
        "--patch",
        "a=xsplice_new_answer",
    ]);
    assert!(r.stderr.contains("old-size"), "{}", r.stderr);
    // A payload is not a build input.
    let r = fails(&[
        "build",
        FIX,
        "-o",
        s(&d.join("x.o")),
        "--patch",
        "a=b,old-size=16",
    ]);
    assert!(r.stderr.contains("upgrade"), "{}", r.stderr);
    // The new function must be in the object.
    fails(&[
        "build",
        &obj,
        "-o",
        s(&d.join("x.o")),
        "--patch",
        "a=nope,old-size=16",
    ]);
    std::fs::remove_dir_all(&d).ok();
}

/// Builds the hypervisor fix from its C code with gcc (skipped without
/// gcc), taking sizes, EXPECT bytes and the dependency from the image, then
/// applies it and runs the patched image.
#[test]
fn build_the_hypervisor_fix_against_the_image_and_run_it() {
    if !have_tool(
        "gcc",
        "--version",
        "build_the_hypervisor_fix_against_the_image_and_run_it",
    ) {
        return;
    }
    let d = tmp("build-hv");
    let src = d.join("code.c");
    let header = root().join("examples/hypervisor/fix_code.h");
    std::fs::write(
        &src,
        format!(
            "#define FIX_TAG \"hv-fix-1/built\"\n#include \"{}\"\n",
            header.display()
        ),
    )
    .unwrap();
    let obj = d.join("code.o");
    let cc = Command::new("gcc")
        .args(["-O2", "-fno-pic", "-fno-stack-protector", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(cc.success());
    let payload = d.join("fix-built.o");
    let r = ok(&[
        "build",
        s(&obj),
        "-o",
        s(&payload),
        "--image",
        HV,
        "--depends-image",
        "--patch",
        "hv_sum=fix_hv_sum,expect=image:5",
        "--patch",
        "hv_version=fix_hv_version",
    ]);
    assert!(
        r.stdout
            .contains("checked: would apply to examples/hypervisor/hv"),
        "{}",
        r.stdout
    );
    let v = json(&["inspect", s(&payload), "--json"]);
    assert_eq!(v["depends"], HV_BUILD_ID);
    assert_eq!(records(&v)[0]["old_size"], 76);
    assert_eq!(records(&v)[1]["old_size"], 24);
    assert_eq!(records(&v)[0]["incompat"], serde_json::json!(["EXPECT"]));
    assert_eq!(records(&v)[0]["expect"].as_str().unwrap().len(), 10);
    let out = d.join("hv-built");
    ok(&["apply", "--image", HV, "-o", s(&out), s(&payload)]);
    assert_eq!(
        run_exe(&out),
        (
            "hv: version 2, sum = 10 (expected 10), fix hv-fix-1/built: OK".to_string(),
            0
        )
    );
    // EXPECT bytes that are not at the site are refused by check.
    let wrong = d.join("fix-wrong.o");
    ok(&[
        "build",
        s(&obj),
        "-o",
        s(&wrong),
        "--patch",
        "hv_sum=fix_hv_sum,old-size=76,expect=0000000000",
        "--patch",
        "hv_version=fix_hv_version,old-size=24",
    ]);
    let r = fails(&["check", s(&wrong), "--image", HV]);
    assert!(r.stderr.contains("expected"), "{}", r.stderr);
    std::fs::remove_dir_all(&d).ok();
}

// ------------------------------------------------ layout, schema, header

#[test]
fn layout_schema_header() {
    let r = ok(&["layout"]);
    assert!(r.stdout.contains("xsplice_patch_func_v3 (128 bytes)"));
    assert!(r.stdout.contains("xsplice_note_desc (24 bytes)"));
    let v = json(&["layout", "--version", "3", "--json"]);
    assert_eq!(v["size"], 128);
    let expect = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "expect")
        .unwrap();
    assert_eq!(
        (expect["offset"].as_u64(), expect["size"].as_u64()),
        (Some(64), Some(32))
    );
    assert_eq!(expect["feature"], "EXPECT");
    // Five payload layouts (records, note, vendor entry), the signature
    // block and footer, the three architecture-table entries, then the
    // ledger's seven.
    let all = json(&["layout", "--json"]);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["c_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 17, "{names:?}");
    assert_eq!(names[0], "xsplice_patch_func_v1");
    assert_eq!(names[5], "xsplice_sig_block");
    assert_eq!(names[7], "xsplice_ex_table_entry");
    assert_eq!(names[10], "xsplice_ledger_header");

    for (args, file) in [
        (vec!["schema"], "record-v3"),
        (vec!["schema", "--version", "1"], "record-v1"),
        (vec!["schema", "--version", "2"], "record-v2"),
        (vec!["schema", "--note"], "note"),
        (vec!["schema", "--note-desc"], "note-desc"),
        (vec!["schema", "--vendor"], "vendor-entry"),
        (vec!["schema", "--view"], "patch-func"),
    ] {
        let out = ok(&args).stdout;
        let v: Value = serde_json::from_str(&out).unwrap();
        let committed: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("spec/generated/{file}.schema.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v, committed, "{args:?}");
    }
    let h = ok(&["header"]).stdout;
    assert!(h.contains("struct xsplice_patch_func_v3 {"));
    assert!(h.contains("_Static_assert"));
}

// ----------------------------------------------------- exit codes, inputs

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![],
        vec!["bogus"],
        vec!["inspect"],
        vec!["check", FIX, "--bogus"],
        vec!["apply", "-o", "x", FIX],
        vec!["apply", "--image", HV, FIX],
        vec!["upgrade", FIX, "--to", "4", "-o", "x"],
        vec!["layout", "--version", "0"],
        vec!["schema", "--note", "--view"],
        vec!["build", FIX, "-o", "x", "--patch", "a=b,bogus=1"],
        vec!["-q", "-v", "check", FIX],
    ] {
        let r = xsplice(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("error:") || r.stderr.contains("Usage"),
            "{args:?}"
        );
    }
    assert_eq!(xsplice(&["--help"]).code, 0);
    assert_eq!(xsplice(&["--version"]).code, 0);
}

/// Writes `bytes` and checks that `check` and `inspect --json`, with and
/// without the image, and `apply`, refuse it with exit 1 and one error line.
fn refused(d: &Path, name: &str, bytes: &[u8]) -> String {
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    let out = d.join(format!("{name}.out"));
    let mut first = String::new();
    for args in [
        vec!["check", s(&p)],
        vec!["check", s(&p), "--image", HV],
        vec!["check", s(&p), "--json"],
        vec!["inspect", s(&p), "--json"],
        vec!["inspect", s(&p), "--image", HV],
        vec!["apply", "--image", HV, "-o", s(&out), s(&p)],
        vec!["upgrade", s(&p), "--to", "3", "-o", s(&out)],
    ] {
        let r = fails(&args);
        if first.is_empty() {
            first = r.stderr.clone();
        }
        assert!(!out.exists(), "{args:?} wrote an output");
    }
    first
}

fn section_offset(bytes: &[u8], wanted: &str) -> usize {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let shoff = u64_at(0x28);
    let (shnum, shstrndx) = (u16_at(0x3c), u16_at(0x3e));
    let strtab = u64_at(shoff + 64 * shstrndx + 24);
    (0..shnum)
        .find_map(|i| {
            let sh = shoff + 64 * i;
            let name_at = strtab + u32_at(sh);
            let end = bytes[name_at..].iter().position(|&b| b == 0).unwrap();
            (&bytes[name_at..name_at + end] == wanted.as_bytes()).then(|| u64_at(sh + 24))
        })
        .unwrap()
}

#[test]
fn malformed_payloads_give_one_error_line() {
    let d = tmp("malformed");
    let fix = std::fs::read(root().join(FIX)).unwrap();
    for n in [
        0,
        1,
        4,
        16,
        63,
        64,
        65,
        200,
        1000,
        fix.len() / 2,
        fix.len() - 1,
    ] {
        refused(&d, &format!("trunc-{n}.o"), &fix[..n]);
    }
    // The version tag of record 0 (.xsplice.funcs + 40): 3 -> 7.
    let funcs = section_offset(&fix, ".xsplice.funcs");
    let mut flipped = fix.clone();
    assert_eq!(flipped[funcs + 40], 3);
    flipped[funcs + 40] ^= 0x04;
    let err = refused(&d, "tag.o", &flipped);
    assert!(err.contains("unsupported record version 7"), "{err}");
    assert!(err.contains("record 0"), "{err}");
    // Garbage.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    refused(&d, "garbage.o", &garbage);
    // An ELF header with nothing behind it.
    refused(&d, "header-only.o", &fix[..64]);
    // A directory, and a file that does not exist.
    let r = fails(&["check", s(&d)]);
    assert!(r.stderr.contains("directory"), "{}", r.stderr);
    let r = fails(&["inspect", "--json", "no/such/file.o"]);
    assert!(r.stderr.contains("no/such/file.o"), "{}", r.stderr);
    // A directory as the image.
    fails(&["check", FIX, "--image", s(&d)]);
    std::fs::remove_dir_all(&d).ok();
}

/// Every single-byte flip over the ELF header, the section headers and the
/// records: exit 0 or exit 1 with one error line, never a crash.
#[test]
fn flipped_bytes_never_crash() {
    let d = tmp("flips");
    let fix = std::fs::read(root().join(FIX)).unwrap();
    let funcs = section_offset(&fix, ".xsplice.funcs");
    let shoff = u64::from_le_bytes(fix[0x28..0x30].try_into().unwrap()) as usize;
    let mut offsets: Vec<usize> = (0..64).step_by(3).collect();
    offsets.extend((funcs..funcs + 256).step_by(7));
    offsets.extend((shoff..fix.len()).step_by(29));
    let p = d.join("flip.o");
    for off in offsets {
        let mut b = fix.clone();
        b[off] ^= 0xa5;
        std::fs::write(&p, &b).unwrap();
        for args in [
            vec!["check", s(&p), "--image", HV],
            vec!["inspect", "--json", s(&p)],
        ] {
            let r = xsplice(&args);
            match r.code {
                0 => {}
                1 => {
                    assert_eq!(
                        r.stderr
                            .lines()
                            .filter(|l| l.starts_with("error: "))
                            .count(),
                        1,
                        "offset {off:#x}: {}",
                        r.stderr
                    );
                }
                c => panic!("offset {off:#x}: exit {c}: {}", r.stderr),
            }
        }
    }
    std::fs::remove_dir_all(&d).ok();
}
