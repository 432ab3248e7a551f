//! The architecture-specific tables through the CLI (issue 15): `inspect`
//! lists them and which alternatives apply for `--cpu-features`, `check`
//! validates them, `apply --cpu-features` applies alternatives into an
//! offline image, which refuses exception tables and bug frames.
//!
//! The payload is `loader/tests/arch/payload.c`, built by gcc at test time
//! to patch `hv_version` of `examples/hypervisor/hv`; without gcc the tests
//! skip (fail under `XSPLICE_REQUIRE_TOOLS=1`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{fails, json, ok, root, run_exe, s, tmp, HV};

/// Builds the payload with extra `-D` flags into `dir`; `None` without gcc.
fn build(dir: &std::path::Path, tag: &str, defines: &[&str]) -> Option<PathBuf> {
    if !common::have_tool(
        "gcc",
        "--version",
        "inspect_check_and_apply_alternatives_offline",
    ) {
        return None;
    }
    let out = dir.join(format!("{tag}.o"));
    let r = Command::new("gcc")
        .args(["-std=gnu11", "-O2", "-Wall", "-Werror", "-fno-pic", "-c"])
        .args(["-I", "spec/generated", "-DOLD_NAME=hv_version"])
        .args(defines)
        .arg("loader/tests/arch/payload.c")
        .arg("-o")
        .arg(&out)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    Some(out)
}

#[test]
fn inspect_check_and_apply_alternatives_offline() {
    let dir = tmp("arch");
    let Some(alt) = build(&dir, "alt", &["-DALT_ONLY"]) else {
        return;
    };
    let full = build(&dir, "full", &[]).unwrap();

    let v = json(&["inspect", s(&full), "--json", "--cpu-features", "popcnt"]);
    let t = &v["arch_tables"];
    assert_eq!(t["cpu_features"], serde_json::json!(["POPCNT"]));
    assert_eq!(t["ex_table"].as_array().unwrap().len(), 1);
    assert_eq!(t["bug_frames"].as_array().unwrap().len(), 2);
    let applies: Vec<bool> = t["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["applies"].as_bool().unwrap())
        .collect();
    assert_eq!(applies, [true, false, false]);
    assert_eq!(t["alternatives"][0]["feature_name"], "POPCNT");
    assert_eq!(
        t["alternatives"][2]["feature_name"],
        serde_json::Value::Null
    );
    let text = ok(&["inspect", s(&full)]).stdout;
    assert!(text.contains("\narch tables\n"), "{text}");
    assert!(text.contains("when POPCNT: kept"), "{text}");
    assert!(text.contains("when no POPCNT: applies"), "{text}");

    let c = ok(&["check", s(&full)]);
    assert!(
        c.stdout
            .contains("arch tables (ARCH): ex_table 1, alternatives 3, bug_frames 2"),
        "{}",
        c.stdout
    );
    assert!(
        c.stderr.contains("unknown CPU feature number 99"),
        "{}",
        c.stderr
    );

    // Offline: alternatives for the CPU named, nothing else.
    let none = dir.join("hv-none");
    let popcnt = dir.join("hv-popcnt");
    ok(&["apply", "--image", HV, "-o", s(&none), s(&alt)]);
    ok(&[
        "apply",
        "--image",
        HV,
        "-o",
        s(&popcnt),
        "--cpu-features",
        "popcnt",
        s(&alt),
    ]);
    let (a, b) = (
        std::fs::read(&none).unwrap(),
        std::fs::read(&popcnt).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    // The POPCNT alternative and its negation: at most 7 + 7 bytes.
    assert!((1..=14).contains(&differ), "{differ} bytes differ");
    for exe in [&none, &popcnt] {
        let (out, _) = run_exe(exe);
        assert!(out.starts_with("hv: version 44"), "{out}");
    }

    let e = fails(&[
        "apply",
        "--image",
        HV,
        "-o",
        s(&dir.join("hv-full")),
        s(&full),
    ]);
    assert!(
        e.stderr
            .contains("`.xsplice.ex_table`: the target cannot honour this table"),
        "{}",
        e.stderr
    );
    let e = fails(&["inspect", s(&full), "--cpu-features", "bogus"]);
    assert!(
        e.stderr.contains("unknown x86_64 feature `bogus`"),
        "{}",
        e.stderr
    );
}
