//! The outside acceptance scenario. `tests/outsider/` holds C written from
//! `DESIGN.md` alone, the way another team would: records and the ABI note
//! declared by hand (`xsplice_wire.h`, not the generated header), an image
//! reserving the three arenas, payloads of every record version (NOP,
//! PATCH_OFFSET past ENDBR64, EXPECT, SYMPOS, a record longer than v3), a
//! multi-threaded program, and a signing script that uses openssl only.
//! gcc builds them here with the flags people use (static, PIE and
//! `-fcf-protection` images; `-fpic`, `-fpie`, `-fno-pic`,
//! `-ffunction-sections` payloads) and the `xsplice` binary drives them:
//! check, inspect --json, apply, run the patched image, stack and revert
//! across runs, openssl signatures, refusals, mutated payloads, and
//! `--pid` on busy threads.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{fails, have_tool, json, ok, records, run_exe, s, xsplice};

const ORIGINAL: &str = "compute=37 counter=3 greet=hello";
const BY_V1: &str = "compute=301 counter=3 greet=hello";
const BY_V2: &str = "compute=3002 counter=0 greet=patched-v2";
const BY_V3: &str = "compute=30003 counter=0 greet=hello";

fn src(name: &str) -> String {
    format!("{}/tests/outsider/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("outsider");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// gcc and nm (binutils): what an outsider has; missing fails under
/// `XSPLICE_REQUIRE_TOOLS=1`.
fn tools(test: &str) -> bool {
    have_tool("gcc", "--version", test) && have_tool("nm", "--version", test)
}

fn gcc(args: &[&str]) {
    let o = Command::new("gcc").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An image built from C, with its function sizes as `nm -S` gives them.
struct Image {
    path: PathBuf,
    sizes: HashMap<String, u64>,
}

impl Image {
    fn build(tag: &str, flags: &[&str], sources: &[&str]) -> Image {
        let path = dir().join(tag);
        let srcs: Vec<String> = sources.iter().map(|f| src(f)).collect();
        let mut args = vec!["-O2", "-fno-ipa-ra"];
        args.extend(flags);
        args.extend(srcs.iter().map(String::as_str));
        args.extend(["-o", s(&path)]);
        gcc(&args);
        let nm = Command::new("nm").arg("-S").arg(&path).output().unwrap();
        let mut sizes = HashMap::new();
        for l in String::from_utf8(nm.stdout).unwrap().lines() {
            if let [_, size, _, name] = l.split_whitespace().collect::<Vec<_>>()[..] {
                sizes.insert(name.to_string(), u64::from_str_radix(size, 16).unwrap());
            }
        }
        Image { path, sizes }
    }

    fn size(&self, f: &str) -> String {
        self.sizes[f].to_string()
    }

    fn p(&self) -> &str {
        s(&self.path)
    }
}

/// The first 16 bytes of `func`, as the image itself prints them.
fn dump(image: &str, func: &str) -> Vec<u8> {
    let o = Command::new(image).args(["dump", func]).output().unwrap();
    let hex = String::from_utf8(o.stdout).unwrap();
    (0..32)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The images every test shares (built once): PIE, static, and CET
/// (`-fcf-protection=full`, non-PIE).
struct Images {
    pie: Image,
    stat: Image,
    cet: Image,
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| Images {
        pie: Image::build("pie", &["-fpie", "-pie"], &["image.c"]),
        stat: Image::build("static", &["-static"], &["image.c"]),
        cet: Image::build(
            "cet",
            &["-fcf-protection=full", "-no-pie", "-fno-pic"],
            &["image.c"],
        ),
    })
}

/// Compiles payload source `source` with `flags` and `-D` `defines`.
fn payload(out: &str, source: &str, flags: &[&str], defines: &[String]) -> String {
    let path = dir().join(out);
    let file = src(source);
    let mut args = vec!["-O2", "-c"];
    args.extend(flags);
    args.extend(defines.iter().map(String::as_str));
    args.extend([file.as_str(), "-o", s(&path)]);
    gcc(&args);
    path.to_str().unwrap().to_string()
}

fn v1(img: &Image, out: &str, flags: &[&str]) -> String {
    let d = [format!("-DCOMPUTE_SIZE={}", img.size("compute"))];
    payload(out, "payload_v1.c", flags, &d)
}

fn v2(img: &Image, out: &str, flags: &[&str]) -> String {
    let d = [
        format!("-DCOMPUTE_SIZE={}", img.size("compute")),
        format!("-DGREET_SIZE={}", img.size("greet")),
        format!("-DBUMP_SIZE={}", img.size("bump")),
    ];
    payload(out, "payload_v2.c", flags, &d)
}

/// The v3 payload for `img`: PATCH_OFFSET 4 past an ENDBR64, and (with
/// `expect`) the 5 bytes at the site as EXPECT.
fn v3(img: &Image, out: &str, flags: &[&str], expect: bool) -> (String, u32, Vec<u8>) {
    let code = dump(img.p(), "compute");
    let offset = if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        4
    } else {
        0
    };
    let at = code[offset..offset + 5].to_vec();
    let mut d = vec![
        format!("-DCOMPUTE_SIZE={}", img.size("compute")),
        format!("-DBUMP_SIZE={}", img.size("bump")),
        format!("-DPATCH_OFFSET={offset}"),
    ];
    if expect {
        let list: Vec<String> = at.iter().map(|b| format!("{b:#04x}")).collect();
        d.push("-DEXPECT_LEN=5".into());
        d.push(format!("-DEXPECT_BYTES={{{}}}", list.join(",")));
    }
    (payload(out, "payload_v3.c", flags, &d), offset as u32, at)
}

fn run(image: &Path) -> String {
    let (out, code) = run_exe(image);
    assert_eq!(code, 0, "{}: {out}", image.display());
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn c_payloads_of_every_version_patch_c_images() {
    if !tools("c_payloads_of_every_version_patch_c_images") {
        return;
    }
    let im = images();
    for (tag, img, code_model) in [
        ("pie", &im.pie, "-fpie"),
        ("static", &im.stat, "-fno-pic"),
        ("cet", &im.cet, "-fno-pic"),
    ] {
        assert_eq!(run(&img.path), ORIGINAL);
        let v1 = v1(img, &format!("{tag}-v1.o"), &["-fpic"]);
        let v2 = v2(
            img,
            &format!("{tag}-v2.o"),
            &[code_model, "-ffunction-sections", "-fdata-sections"],
        );
        let (v3, offset, at) = v3(
            img,
            &format!("{tag}-v3.o"),
            &["-fpic", "-fcf-protection=full", "-ffunction-sections"],
            true,
        );
        assert_eq!(offset == 4, tag == "cet", "{tag}: ENDBR64 only with CET");
        for (p, want) in [(&v1, BY_V1), (&v2, BY_V2), (&v3, BY_V3)] {
            ok(&["check", "--image", img.p(), p]);
            let out = dir().join(format!("{tag}-{}.img", want.len()));
            ok(&["apply", "--image", img.p(), "-o", s(&out), p]);
            assert_eq!(run(&out), want, "{tag} {p}");
        }

        // Ordinary C in the replacement: jump table, cold section, static
        // data, a double constant. 10 -> case 2 -> 70, + 15 + 1*3 - 3 = 85.
        let d = [format!("-DCOMPUTE_SIZE={}", img.size("compute"))];
        for flags in [
            &[code_model][..],
            &["-fpic", "-ffunction-sections", "-fdata-sections"],
        ] {
            let rich = payload(&format!("{tag}-rich.o"), "payload_rich.c", flags, &d);
            let out = dir().join(format!("{tag}-rich.img"));
            ok(&["apply", "--image", img.p(), "-o", s(&out), &rich]);
            assert_eq!(
                run(&out),
                "compute=85 counter=3 greet=hello",
                "{tag} {flags:?}"
            );
        }

        // inspect --json against the image: the values DESIGN.md defines.
        let j = json(&["inspect", "--json", "--image", img.p(), &v3]);
        assert_eq!(j["record_version"], 3);
        assert_eq!(j["record_size"], 128);
        assert_eq!(j["note"]["record_size"], 128);
        let r = records(&j);
        let compute = u64::from_str_radix(
            r[0]["resolved_old_addr"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        assert_eq!(r[0]["site"], format!("{:#x}", compute + u64::from(offset)));
        assert_eq!(r[0]["patch_offset"], offset);
        assert_eq!(r[0]["expect"], hex(&at));
        assert_eq!(r[0]["old_size"], img.sizes["compute"]);
        let bits: u32 = if offset == 4 { 0b1010 } else { 0b1000 };
        assert_eq!(r[0]["incompat_bits"], bits);
        assert_eq!(r[1]["name"], "bump");
        assert_eq!(r[1]["new_addr"], "0x0");
        assert_eq!(r[1]["new_size"], img.sizes["bump"] - 1 - u64::from(offset));
        assert_eq!(j["note"]["incompat_bits"], bits | 1);
        let v1j = json(&["inspect", "--json", &v1]);
        assert_eq!(v1j["record_version"], 1);
        assert!(v1j["note"].is_null());
        assert_eq!(v1j["format"]["major"], 1);

        // The NOP record leaves bump() as its ENDBR64 (if any), NOPs, ret.
        let patched = dir().join(format!("{tag}-v3-nop.img"));
        ok(&["apply", "--image", img.p(), "-o", s(&patched), &v3]);
        let bump = dump(s(&patched), "bump");
        let end = usize::try_from(img.sizes["bump"]).unwrap() - 1;
        assert_eq!(bump[end], 0xc3, "{tag}: {}", hex(&bump));
        assert!(bump[offset as usize..end].iter().all(|&b| b != 0xc3));
        assert_eq!(
            bump[..offset as usize],
            dump(img.p(), "bump")[..offset as usize]
        );
    }
}

#[test]
fn stack_list_and_revert_across_runs() {
    if !tools("stack_list_and_revert_across_runs") {
        return;
    }
    let img = &images().pie;
    let p1 = v1(img, "stack-v1.o", &["-fpic"]);
    let p2 = v2(img, "stack-v2.o", &["-fpie"]);
    let (p3, _, _) = v3(img, "stack-v3.o", &["-fpic"], false);
    let (p3x, _, at) = v3(img, "stack-v3-expect.o", &["-fpic"], true);
    let out: Vec<PathBuf> = (1..=3)
        .map(|i| dir().join(format!("stack{i}.img")))
        .collect();
    ok(&["apply", "--image", img.p(), "-o", s(&out[0]), &p1]);
    ok(&["apply", "--image", s(&out[0]), "-o", s(&out[1]), &p2]);
    // EXPECT holds the original bytes; compute() now starts with a jump.
    let e = fails(&["apply", "--image", s(&out[1]), "-o", s(&out[2]), &p3x]).stderr;
    assert!(e.contains(&format!("expected [{}]", hex_list(&at))), "{e}");
    ok(&["apply", "--image", s(&out[1]), "-o", s(&out[2]), &p3]);
    assert_eq!(run(&out[0]), BY_V1);
    assert_eq!(run(&out[1]), BY_V2);
    assert_eq!(run(&out[2]), "compute=30003 counter=0 greet=patched-v2");
    let l = json(&["list", "--json", "--image", s(&out[2])]);
    let names: Vec<&str> = l["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [p1.as_str(), p2.as_str(), p3.as_str()]);
    // The same payload twice is refused.
    fails(&[
        "apply",
        "--image",
        s(&out[2]),
        "-o",
        s(&dir().join("x")),
        &p2,
    ]);
    // Revert one at a time: each step gives back the earlier file exactly.
    let r2 = dir().join("stack-r2.img");
    let r1 = dir().join("stack-r1.img");
    let r0 = dir().join("stack-r0.img");
    ok(&["revert", "--image", s(&out[2]), "-o", s(&r2)]);
    ok(&["revert", "--image", s(&r2), "-o", s(&r1), "stack-v2.o"]);
    ok(&["revert", "--image", s(&r1), "-o", s(&r0)]);
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(read(&r2), read(&out[1]));
    assert_eq!(read(&r1), read(&out[0]));
    assert_eq!(read(&r0), read(&img.path));
    let all = dir().join("stack-all.img");
    ok(&["revert", "--all", "--image", s(&out[2]), "-o", s(&all)]);
    assert_eq!(read(&all), read(&img.path));
    fails(&["revert", "--image", img.p(), "-o", s(&dir().join("x"))]);
}

fn hex_list(b: &[u8]) -> String {
    let v: Vec<String> = b.iter().map(|b| format!("{b:02x}")).collect();
    v.join(", ")
}

#[test]
fn openssl_signatures_interoperate() {
    let test = "openssl_signatures_interoperate";
    if !tools(test) || !have_tool("openssl", "version", test) {
        return;
    }
    let img = &images().pie;
    let plain = v2(img, "sig-v2.o", &["-fpie"]);
    let d = dir();
    let (key, key_pub, other_pub) = (d.join("k.pem"), d.join("k.pub"), d.join("other.pub"));
    let openssl = |args: &[&str]| {
        let st = Command::new("openssl").args(args).status().unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&key)]);
    openssl(&["pkey", "-in", s(&key), "-pubout", "-out", s(&key_pub)]);
    let other = d.join("other.pem");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&other)]);
    openssl(&["pkey", "-in", s(&other), "-pubout", "-out", s(&other_pub)]);
    let signed = d.join("sig-v2-signed.o");
    let st = Command::new("sh")
        .args([&src("sign.sh"), s(&key), &plain, s(&signed)])
        .status()
        .unwrap();
    assert!(st.success());

    let trusted = ["--require-signature", "--trusted-key", s(&key_pub)];
    let mut args = vec!["check"];
    args.extend(trusted);
    args.push(s(&signed));
    assert!(ok(&args).stdout.contains("verified (Ed25519"));
    let out = d.join("sig.img");
    let mut args = vec!["apply", "--image", img.p(), "-o", s(&out)];
    args.extend(["--require-signature", "--trusted-key", s(&other_pub)]);
    args.extend(["--trusted-key", s(&key_pub), s(&signed)]);
    ok(&args);
    assert_eq!(run(&out), BY_V2);
    let j = json(&[
        "inspect",
        "--json",
        "--trusted-key",
        s(&key_pub),
        s(&signed),
    ]);
    assert_eq!(j["signature"]["status"], "verified");
    // `xsplice sign` and the openssl script write the same bytes (Ed25519
    // is deterministic), and openssl verifies what xsplice signed.
    let ours = d.join("sig-ours.o");
    ok(&["sign", "--key", s(&key), "-o", s(&ours), &plain]);
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&signed).unwrap()
    );
    // Refusals: another key, no signature, one flipped byte.
    let e = fails(&[
        "check",
        "--require-signature",
        "--trusted-key",
        s(&other_pub),
        s(&signed),
    ]);
    assert!(e.stderr.contains("not trusted"), "{}", e.stderr);
    let mut args = vec!["check"];
    args.extend(trusted);
    args.push(&plain);
    assert!(fails(&args).stderr.contains("unsigned"));
    let mut bytes = std::fs::read(&signed).unwrap();
    bytes[100] ^= 1;
    let tampered = d.join("sig-tampered.o");
    std::fs::write(&tampered, bytes).unwrap();
    let mut args = vec!["check"];
    args.extend(trusted);
    args.push(s(&tampered));
    assert!(fails(&args).stderr.contains("does not verify"));
}

#[test]
fn refusals_name_the_cause() {
    if !tools("refusals_name_the_cause") {
        return;
    }
    let im = images();
    let size = format!("-DCOMPUTE_SIZE={}", im.pie.size("compute"));
    let edge = |out: &str, extra: &[&str]| {
        let mut d = vec![size.clone()];
        d.extend(extra.iter().map(|s| s.to_string()));
        payload(out, "payload_edge.c", &["-fpic"], &d)
    };
    let check = |p: &str| xsplice(&["check", "--image", im.pie.p(), p]);
    // A record longer than v3 whose tail is zero is read; a non-zero tail,
    // a version tag other than 0/2/3, or an unknown incompat bit is refused
    // by name; an unknown compat bit is reported.
    assert_eq!(check(&edge("edge.o", &[])).code, 0);
    let e = fails(&["check", &edge("edge-tail.o", &["-DTAIL=1"])]).stderr;
    assert!(e.contains("non-zero byte at offset 133"), "{e}");
    for v in [1, 4] {
        let e = fails(&["check", &edge("edge-v.o", &[&format!("-DVERSION={v}")])]).stderr;
        assert!(
            e.contains(&format!("unsupported record version {v}")),
            "{e}"
        );
    }
    let e = fails(&[
        "check",
        &edge("edge-namesz.o", &["-DXSPLICE_NOTE_NAMESZ=7"]),
    ])
    .stderr;
    assert!(e.contains("namesz 8 (\"XSPLICE\" and its NUL)"), "{e}");
    let e = fails(&["check", &edge("edge-incompat.o", &["-DINCOMPAT=0x100"])]).stderr;
    assert!(e.contains("unknown incompat bit 8"), "{e}");
    let r = check(&edge("edge-compat.o", &["-DCOMPAT=4"]));
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("unknown compat bit 2"), "{}", r.stderr);

    // A static function defined twice: sympos 0 is ambiguous (the hint
    // says SYMPOS, not "built for another image"), 3 is out of range, and
    // 1 and 2 patch the right one.
    let twin = Image::build("twin", &[], &["image_twin.c", "image_twin2.c"]);
    assert_eq!(run(&twin.path), "a=29 b=27");
    let twin_size = format!("-DTWIN_SIZE={}", twin.size("twin"));
    let sympos = |n: u32| {
        let d = [twin_size.clone(), format!("-DSYMPOS={n}")];
        payload(&format!("sympos{n}.o"), "payload_sympos.c", &["-fpic"], &d)
    };
    let e = fails(&["check", "--image", twin.p(), &sympos(0)]).stderr;
    assert!(
        e.contains("2 local (static) definitions of `twin` and no global one")
            && e.contains("SYMPOS"),
        "{e}"
    );
    let e = fails(&["check", "--image", twin.p(), &sympos(3)]).stderr;
    assert!(e.contains("sympos counts them from 1 to 2"), "{e}");
    for (n, want) in [(1, "a=2000 b=27"), (2, "a=29 b=2000")] {
        let out = dir().join(format!("twin{n}.img"));
        ok(&["apply", "--image", twin.p(), "-o", s(&out), &sympos(n)]);
        assert_eq!(run(&out), want);
    }

    // A call into libc from a payload: a dynamically linked image calls
    // printf through a PLT entry, and the payload's call goes there too; the
    // static image links printf in. An image built with -fno-plt has no
    // entry: refused, and the hint says the image imports it.
    for (img, tag) in [(&im.pie, "pie"), (&im.stat, "static")] {
        let d = [format!("-DCOMPUTE_SIZE={}", img.size("compute"))];
        let import = payload(
            &format!("import-{tag}.o"),
            "payload_import.c",
            &["-fpic"],
            &d,
        );
        let out = dir().join(format!("import-{tag}.img"));
        ok(&["apply", "--image", img.p(), "-o", s(&out), &import]);
        assert_eq!(
            run(&out),
            "payload called with 10\ncompute=301 counter=3 greet=hello"
        );
    }
    let no_plt = Image::build("no-plt", &["-fno-plt"], &["image.c"]);
    let d = [format!("-DCOMPUTE_SIZE={}", no_plt.size("compute"))];
    let import = payload("import-no-plt.o", "payload_import.c", &["-fpic"], &d);
    let e = fails(&["check", "--image", no_plt.p(), &import]).stderr;
    assert!(
        e.contains("imports `printf` from a shared library and has no PLT entry")
            || e.contains("imports `fputs` from a shared library and has no PLT entry"),
        "{e}"
    );

    // A stack-protected payload for an image that never calls
    // __stack_chk_fail: the hint says how to build the payload.
    let sp = payload(
        "stack-protector.o",
        "payload_rich.c",
        &["-fpic", "-fstack-protector-all"],
        std::slice::from_ref(&size),
    );
    let e = fails(&["check", "--image", im.pie.p(), &sp]).stderr;
    assert!(
        e.contains("build the payload with -fno-stack-protector"),
        "{e}"
    );

    // A jump longer than the function the image's symbol table gives would
    // overwrite the next function: refused even when old_size claims more.
    assert_eq!(im.pie.sizes["idle"], 1);
    for (old_size, why) in [
        (1, "old_size 1 is too small"),
        (16, "the patch ends 5 bytes into a function of 1 bytes"),
    ] {
        let d = [
            format!("-DCOMPUTE_SIZE={old_size}"),
            "-DTARGET_NAME=\"idle\"".to_string(),
        ];
        let p = payload("idle.o", "payload_v1.c", &["-fpic"], &d);
        let e = fails(&["check", "--image", im.pie.p(), &p]).stderr;
        assert!(e.contains(why), "{e}");
    }

    // -flto objects hold gcc's intermediate code, not the records.
    let lto = payload(
        "lto.o",
        "payload_v1.c",
        &["-fpic", "-flto"],
        std::slice::from_ref(&size),
    );
    let e = fails(&["check", &lto]).stderr;
    assert!(e.contains("built with -flto"), "{e}");

    // Offline, hooks do not run: the warning names each hook section.
    let hooks = payload(
        "hooks.o",
        "payload_hooks.c",
        &["-fpic"],
        std::slice::from_ref(&size),
    );
    let out = dir().join("hooks.img");
    let r = ok(&["apply", "--image", im.pie.p(), "-o", s(&out), &hooks]);
    assert!(
        r.stderr.contains(
            "hooks not run (an offline image cannot run payload code, on apply or revert): \
             .xsplice.hooks.preapply, .xsplice.hooks.apply, .xsplice.hooks.revert"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(run(&out), BY_V1);

    // Format 2.1 from C: an alternative is applied offline for the CPU
    // features asked for; an exception table is refused, with a hint.
    let arch = payload(
        "arch.o",
        "payload_arch.c",
        &["-fpic"],
        std::slice::from_ref(&size),
    );
    ok(&["check", "--image", im.pie.p(), &arch]);
    for (features, want) in [("", 301), ("POPCNT", 302)] {
        let out = dir().join(format!("arch{want}.img"));
        let mut args = vec!["apply", "--image", im.pie.p(), "-o", s(&out), &arch];
        if !features.is_empty() {
            args.extend(["--cpu-features", features]);
        }
        ok(&args);
        assert_eq!(run(&out), format!("compute={want} counter=3 greet=hello"));
    }
    let d = [size.clone(), "-DEX_TABLE".to_string()];
    let ex = payload("arch-ex.o", "payload_arch.c", &["-fpic"], &d);
    let e = fails(&["check", "--image", im.pie.p(), &ex]).stderr;
    assert!(
        e.contains("`.xsplice.ex_table`: the target cannot honour this table")
            && e.contains("section 17.6"),
        "{e}"
    );

    // Thread-local storage in a payload: refused, and the hint says why.
    let d = [size.clone(), "-DTLS".to_string()];
    for flags in ["-fpic", "-fno-pic"] {
        let tls = payload("tls.o", "payload_rich.c", &[flags], &d);
        let e = fails(&["check", "--image", im.stat.p(), &tls]).stderr;
        assert!(e.contains("thread-local variables"), "{flags}: {e}");
    }

    // A text arena declared as a C array is data (`WA`) to gcc: refused,
    // and the hint says how to reserve it.
    let c_arena = Image::build("c-arena", &["-DTEXT_ARENA_IN_C"], &["image.c"]);
    let p = v1(&c_arena, "c-arena.o", &["-fpic"]);
    let e = fails(&["check", "--image", c_arena.p(), &p]).stderr;
    assert!(
        e.contains("`.xsplice.arena.text`: must be executable")
            && e.contains("reserve the text arena in assembly"),
        "{e}"
    );

    // -fno-pic code holding an absolute address cannot go into a PIE image.
    let e = fails(&[
        "check",
        "--image",
        im.pie.p(),
        &v2(&im.pie, "nopic.o", &["-fno-pic"]),
    ])
    .stderr;
    assert!(e.contains("position-independent"), "{e}");
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn mutated_c_payloads_are_refused_cleanly() {
    if !tools("mutated_c_payloads_are_refused_cleanly") {
        return;
    }
    let img = &images().pie;
    let sources = [
        std::fs::read(v2(img, "mut-v2.o", &["-fpie"])).unwrap(),
        std::fs::read(v3(img, "mut-v3.o", &["-fpic"], true).0).unwrap(),
    ];
    let mut state = 0x5eed_u64;
    let m = dir().join("mutant.o");
    let out = dir().join("mutant.img");
    for i in 0..60 {
        let mut b = sources[i % 2].clone();
        for _ in 0..=next(&mut state) % 3 {
            let at = usize::try_from(next(&mut state) % b.len() as u64).unwrap();
            b[at] = match next(&mut state) % 4 {
                0 => 0,
                1 => 0xff,
                2 => b[at] ^ (1 << (next(&mut state) % 8)),
                _ => next(&mut state) as u8,
            };
        }
        std::fs::write(&m, &b).unwrap();
        // `xsplice` (common) fails the test on a panic; the exit status is
        // 0 (a harmless byte) or 1 (one `error:` line).
        for args in [
            vec!["check", s(&m)],
            vec!["inspect", "--json", s(&m)],
            vec!["apply", "--image", img.p(), "-o", s(&out), s(&m)],
        ] {
            let r = xsplice(&args);
            assert!(
                r.code == 0 || r.code == 1,
                "mutant {i}: {args:?}: {}",
                r.stderr
            );
        }
    }
}

/// The busy program: four threads calling compute(), the main thread
/// printing `compute=N calls=M` every 10 ms.
struct Busy {
    child: Child,
    pid: String,
    lines: Receiver<String>,
}

impl Busy {
    fn start(exe: &Path) -> Busy {
        let mut child = Command::new(exe)
            .arg("30")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(10)).unwrap();
        let pid = first.strip_prefix("ready ").unwrap().to_string();
        Busy { child, pid, lines }
    }

    /// Waits until the program prints `compute=<value>`.
    fn wait_for(&self, value: i64) {
        self.wait_for_line(&format!("compute={value} "));
    }

    /// Waits until the program prints a line starting with `want`.
    fn wait_for_line(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                if l.starts_with(want) {
                    return;
                }
            }
        }
        panic!("busy never printed {want}");
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn busy_threads_patched_by_pid() {
    if !tools("busy_threads_patched_by_pid") {
        return;
    }
    let exe = Image::build("busy", &["-pthread"], &["busy.c"]);
    let fix = v1(&exe, "busy-v1.o", &["-fpic"]);
    // Needs greet() and bump(), which busy.c does not have: refused.
    let wrong = v2(&images().pie, "busy-wrong.o", &["-fpic"]);
    let busy = Busy::start(&exe.path);
    let pid = busy.pid.as_str();
    let t = ["--timeout", "10000"];
    let mut args = vec!["apply", "--pid", pid, &fix];
    args.extend(t);
    let first = xsplice(&args);
    if first.code != 0 && first.stderr.contains("not permitted") {
        assert!(
            std::env::var("XSPLICE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "ptrace refused under XSPLICE_REQUIRE_TOOLS=1: {}",
            first.stderr
        );
        eprintln!("SKIPPED busy_threads_patched_by_pid: {}", first.stderr);
        return;
    }
    assert_eq!(first.code, 0, "{}", first.stderr);
    busy.wait_for(301);
    let l = json(&["list", "--json", "--pid", pid]);
    assert_eq!(l["applied"].as_array().unwrap().len(), 1);
    // Reverts the top payload and waits for the original result.
    let revert = || {
        ok(&["revert", "--pid", pid, "--timeout", "10000"]);
        busy.wait_for(37);
    };
    // Applies `payloads` and waits for `compute=<value>`.
    let apply = |payloads: &[&str], value: i64| {
        let mut args = vec!["apply", "--pid", pid, "--timeout", "10000"];
        args.extend(payloads);
        ok(&args);
        busy.wait_for(value);
    };
    revert();

    // Several payloads by PID are all-or-nothing: the refused second one
    // takes the first back out, and the hint says so.
    let e = fails(&["apply", "--pid", pid, "--timeout", "10000", &fix, &wrong]).stderr;
    assert!(
        e.contains("busy-v1.o` (applied before it in this run) was reverted again"),
        "{e}"
    );
    let l = json(&["list", "--json", "--pid", pid]);
    assert_eq!(l["applied"].as_array().unwrap().len(), 0, "{l}");
    busy.wait_for(37);

    // An alternative is applied for this CPU (`cpuid`) in a live process.
    let d = [format!("-DCOMPUTE_SIZE={}", exe.size("compute"))];
    let arch = payload("busy-arch.o", "payload_arch.c", &["-fpic"], &d);
    let popcnt = std::arch::is_x86_feature_detected!("popcnt");
    apply(&[&arch], if popcnt { 302 } else { 301 });
    revert();

    // The replacement calls printf through the process's PLT entry.
    let import = payload("busy-import.o", "payload_import.c", &["-fpic"], &d);
    ok(&["apply", "--pid", pid, "--timeout", "10000", &import]);
    busy.wait_for_line("payload called with ");
    busy.wait_for(301);
    revert();

    // Hooks run in the process: apply sets scale to 4, revert back to 3.
    let hooks = payload("busy-hooks.o", "payload_hooks.c", &["-fpic"], &d);
    apply(&[&hooks], 401);
    revert();

    // Apply and revert a few times while the threads call compute().
    for _ in 0..5 {
        apply(&[&fix], 301);
        revert();
    }
}
