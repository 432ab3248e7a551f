//! Signed payloads end to end: keygen, sign, check/apply/inspect with
//! `--require-signature --trusted-key`, upgrade and build with `--sign`,
//! every refusal (exit 1, one `error:` line, nothing written), and
//! interoperability both ways with the `openssl` command line.
//!
//! The openssl tests skip, loudly, when `openssl` is missing, unless
//! `XSPLICE_REQUIRE_TOOLS=1` (CI sets it), which makes them fail instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const FIXED: &str = "fix hv-fix-1/v3: OK";

/// `ok`, as the text it printed (stdout, then stderr).
fn ok_text(args: &[&str]) -> String {
    let r = ok(args);
    r.stdout + &r.stderr
}

/// `fails` (exit 1, exactly one `error:` line, hints allowed), as that line.
fn refused(args: &[&str]) -> String {
    let r = fails(args);
    r.stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
        .to_string()
}

/// A fresh directory for one test, removed when the test is done.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let name = format!("xsplice-sig-{}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A key pair made by `xsplice keygen` in `dir`: (private, public).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    ok_text(&["keygen", "-o", s(&key)]);
    (key.clone(), dir.join(format!("{name}.pub")))
}

/// Checks (dry run and against the image) and applies `payload` requiring
/// a signature by `public`, and runs the patched image.
fn accepted(dir: &Path, payload: &Path, public: &Path) {
    let trust = ["--require-signature", "--trusted-key", s(public)];
    let out = ok_text(&[&["check", s(payload)][..], &trust].concat());
    assert!(out.contains("signature: verified (Ed25519, key "), "{out}");
    ok_text(&[&["check", s(payload), "--image", HV][..], &trust].concat());
    let patched = dir.join("hv-patched");
    ok_text(
        &[
            &["apply", "--image", HV, "-o", s(&patched), s(payload)][..],
            &trust,
        ]
        .concat(),
    );
    let run = Command::new(&patched).output().unwrap();
    assert!(String::from_utf8_lossy(&run.stdout).contains(FIXED));
    std::fs::remove_file(&patched).unwrap();
}

/// Expects `check` and `apply` to refuse `payload` under `trust`, with
/// `want` in the error line, and `apply` to write nothing.
fn rejected(dir: &Path, payload: &Path, trust: &[&str], want: &str) {
    let e = refused(&[&["check", s(payload)][..], trust].concat());
    assert!(e.contains(want), "{e}");
    let out = dir.join("never-written");
    let e = refused(
        &[
            &["apply", "--image", HV, "-o", s(&out), s(payload)][..],
            trust,
        ]
        .concat(),
    );
    assert!(e.contains(want), "{e}");
    assert!(
        !out.exists(),
        "apply wrote {} after refusing",
        out.display()
    );
}

#[test]
fn keygen_sign_check_apply_inspect() {
    let d = Scratch::new("roundtrip");
    let (key, public) = keygen(&d, "k");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // keygen never overwrites by accident.
    refused(&["keygen", "-o", s(&key)]);

    let signed = d.join("fix.signed.o");
    ok_text(&["sign", "--key", s(&key), FIX, "-o", s(&signed)]);
    let fix = std::fs::read(root().join(FIX)).unwrap();
    let bytes = std::fs::read(&signed).unwrap();
    assert_eq!(
        &bytes[..fix.len()],
        &fix[..],
        "S is the unchanged ELF bytes"
    );
    assert_eq!(bytes.len(), fix.len() + 88);
    accepted(&d, &signed, &public);

    // inspect: the key id, verified or not.
    let v: serde_json::Value = serde_json::from_str(&ok_text(&[
        "inspect",
        s(&signed),
        "--json",
        "--trusted-key",
        s(&public),
    ]))
    .unwrap();
    assert_eq!(v["signature"]["status"], "verified");
    let id = v["signature"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    let text = ok_text(&["inspect", s(&signed)]);
    assert!(
        text.contains(&format!("unverified (Ed25519, key {id}")),
        "{text}"
    );
    assert!(ok_text(&["inspect", FIX]).contains("signature   unsigned"));

    // Re-signing replaces the block: the old key no longer verifies.
    let (key2, public2) = keygen(&d, "k2");
    let resigned = d.join("fix.resigned.o");
    let out = ok_text(&["sign", "--key", s(&key2), s(&signed), "-o", s(&resigned)]);
    assert!(
        out.contains(&format!(
            "replaced the previous signature (unverified (key {id}"
        )),
        "{out}"
    );
    assert_eq!(std::fs::read(&resigned).unwrap().len(), bytes.len());
    accepted(&d, &resigned, &public2);
    rejected(
        &d,
        &resigned,
        &["--require-signature", "--trusted-key", s(&public)],
        "not trusted",
    );
    // Two trusted keys: either signer is accepted.
    let both = [
        "--require-signature",
        "--trusted-key",
        s(&public),
        "--trusted-key",
        s(&public2),
    ];
    ok_text(&[&["check", s(&resigned)][..], &both].concat());
    ok_text(&[&["check", s(&signed)][..], &both].concat());
    // --require-signature without a key is a usage error.
    assert_eq!(
        xsplice(&["check", s(&signed), "--require-signature"]).code,
        2
    );
}

#[test]
fn refusals() {
    let d = Scratch::new("refusals");
    let (key, public) = keygen(&d, "k");
    let (_, other) = keygen(&d, "other");
    let signed = d.join("signed.o");
    ok_text(&["sign", "--key", s(&key), FIX, "-o", s(&signed)]);
    let good = std::fs::read(&signed).unwrap();
    let n = good.len();
    let require = ["--require-signature", "--trusted-key", s(&public)];
    let variant = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    rejected(&d, &root().join(FIX), &require, "unsigned");
    for at in [0, 17, n / 2, n - 89] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        rejected(&d, &variant("elf-flip.o", &b), &require, "does not verify");
    }
    for at in [n - 88, n - 50, n - 25] {
        let mut b = good.clone();
        b[at] ^= 0x80;
        rejected(&d, &variant("sig-flip.o", &b), &require, "does not verify");
    }
    rejected(
        &d,
        &signed,
        &["--require-signature", "--trusted-key", s(&other)],
        "not trusted",
    );
    // A key id that names no trusted key.
    let mut b = good.clone();
    b[n - 24] ^= 1;
    rejected(&d, &variant("key-id.o", &b), &require, "not trusted");
    // Truncated: the footer is gone, so the payload is unsigned.
    for cut in [1, 8, 16, 40] {
        rejected(
            &d,
            &variant("cut.o", &good[..n - cut]),
            &require,
            "unsigned",
        );
    }
    // A lying footer is malformed whatever the policy.
    let mut b = good.clone();
    b[n - 16..n - 12].copy_from_slice(&(n as u32).to_le_bytes());
    let lying = variant("lying.o", &b);
    rejected(&d, &lying, &require, "malformed signature footer");
    rejected(&d, &lying, &[], "malformed signature footer");
    let mut b = good.clone();
    b[n - 16..n - 12].copy_from_slice(&71u32.to_le_bytes());
    rejected(
        &d,
        &variant("short.o", &b),
        &[],
        "an Ed25519 block is 72 bytes",
    );
    // Unknown algorithm: refused when required, reported otherwise.
    let mut b = good.clone();
    b[n - 12] = 2;
    let unknown = variant("alg2.o", &b);
    rejected(
        &d,
        &unknown,
        &require,
        "unknown scheme: algorithm 2, version 1",
    );
    assert!(ok_text(&["inspect", s(&unknown)]).contains("unknown scheme (algorithm 2, version 1)"));
    let mut b = good.clone();
    b[n - 10] = 9;
    rejected(
        &d,
        &variant("ver9.o", &b),
        &require,
        "algorithm 1, version 9",
    );
    // sign writes nothing for a payload that does not load.
    let junk = variant("junk.o", b"not an ELF file");
    let out = d.join("junk.signed");
    refused(&["sign", "--key", s(&key), s(&junk), "-o", s(&out)]);
    assert!(!out.exists());
    refused(&["sign", "--key", s(&public), FIX, "-o", s(&out)]);
    assert!(!out.exists());
}

#[test]
fn upgrade_and_build_sign() {
    let d = Scratch::new("upgrade");
    let (key, public) = keygen(&d, "k");
    let signed = d.join("signed.o");
    ok_text(&["sign", "--key", s(&key), FIX, "-o", s(&signed)]);
    let up = d.join("up.o");
    let out = ok_text(&["upgrade", s(&signed), "--to", "2", "-o", s(&up)]);
    assert!(out.contains("dropped the input's signature"), "{out}");
    assert!(ok_text(&["inspect", s(&up)]).contains("signature   unsigned"));
    let out = ok_text(&[
        "upgrade",
        s(&signed),
        "--to",
        "2",
        "-o",
        s(&up),
        "--sign",
        s(&key),
    ]);
    assert!(out.contains("signed "), "{out}");
    accepted(&d, &up, &public);

    let built = d.join("built.o");
    let obj = "compat-tests/fixtures/build_input.obj";
    ok_text(&[
        "build",
        obj,
        "-o",
        s(&built),
        "--patch",
        "xsplice_demo_answer=xsplice_new_answer,old-size=16",
        "--sign",
        s(&key),
    ]);
    let trust = ["--require-signature", "--trusted-key", s(&public)];
    ok_text(&[&["check", s(&built)][..], &trust].concat());
}

/// Runs openssl with `args`, feeding `stdin`; returns stdout, asserting success.
fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The key id of a PEM public key, computed with openssl alone: SHA-256 of
/// the 32 raw key bytes (the tail of the SPKI DER), first 8 bytes.
fn openssl_key_id(public: &Path) -> Vec<u8> {
    let der = openssl(
        &["pkey", "-pubin", "-in", s(public), "-outform", "DER"],
        b"",
    );
    let raw = &der[der.len() - 32..];
    openssl(&["dgst", "-sha256", "-binary"], raw)[..8].to_vec()
}

#[test]
fn openssl_signs_xsplice_verifies() {
    if !have_tool("openssl", "version", "openssl_signs_xsplice_verifies") {
        return;
    }
    let d = Scratch::new("openssl-signs");
    let key = d.join("k.pem");
    let public = d.join("k.pub");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&key)], b"");
    openssl(
        &["pkey", "-in", s(&key), "-pubout", "-out", s(&public)],
        b"",
    );
    let elf = std::fs::read(root().join(FIX)).unwrap();
    let sig_path = d.join("sig");
    openssl(
        &[
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            s(&key),
            "-in",
            &format!("{}/{FIX}", s(&root())),
            "-out",
            s(&sig_path),
        ],
        b"",
    );
    let sig = std::fs::read(&sig_path).unwrap();
    assert_eq!(sig.len(), 64);
    // The block, assembled by hand from DESIGN.md's layout.
    let mut file = elf.clone();
    file.extend_from_slice(&sig);
    file.extend_from_slice(&openssl_key_id(&public));
    file.extend_from_slice(&72u32.to_le_bytes());
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(b"XSPLSIG\0");
    let payload = d.join("openssl-signed.o");
    std::fs::write(&payload, &file).unwrap();
    accepted(&d, &payload, &public);

    // An openssl key signs with xsplice too, and the key ids agree.
    let signed = d.join("xsplice-signed.o");
    ok_text(&["sign", "--key", s(&key), FIX, "-o", s(&signed)]);
    assert_eq!(
        std::fs::read(&signed).unwrap(),
        file,
        "Ed25519 is deterministic"
    );
}

#[test]
fn xsplice_signs_openssl_verifies() {
    if !have_tool("openssl", "version", "xsplice_signs_openssl_verifies") {
        return;
    }
    let d = Scratch::new("xsplice-signs");
    let (key, public) = keygen(&d, "k");
    // The key files are byte for byte what openssl writes for the same key.
    let again = openssl(&["pkey", "-in", s(&key)], b"");
    assert_eq!(again, std::fs::read(&key).unwrap());
    let derived = openssl(&["pkey", "-in", s(&key), "-pubout"], b"");
    assert_eq!(derived, std::fs::read(&public).unwrap());

    let signed = d.join("signed.o");
    ok_text(&["sign", "--key", s(&key), FIX, "-o", s(&signed)]);
    let bytes = std::fs::read(&signed).unwrap();
    let n = bytes.len();
    let (elf, sig, id) = (
        &bytes[..n - 88],
        &bytes[n - 88..n - 24],
        &bytes[n - 24..n - 16],
    );
    assert_eq!(id, &openssl_key_id(&public)[..]);
    let (s_path, sig_path) = (d.join("S"), d.join("sig"));
    std::fs::write(&s_path, elf).unwrap();
    std::fs::write(&sig_path, sig).unwrap();
    let verify = |data: &Path| {
        Command::new("openssl")
            .args([
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                s(&public),
                "-rawin",
            ])
            .args(["-in", s(data), "-sigfile", s(&sig_path)])
            .output()
            .unwrap()
    };
    let o = verify(&s_path);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Signature Verified Successfully"));
    // openssl refuses a flipped byte too: the check above can fail.
    let mut flipped = elf.to_vec();
    flipped[100] ^= 1;
    std::fs::write(&s_path, &flipped).unwrap();
    assert!(!verify(&s_path).status.success());
}
