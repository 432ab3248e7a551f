//! Writes every generated artefact of the specification.
//!
//! ```text
//! cargo run -p xsplice-spec --bin gen            # write spec/generated/*, re-splice SPEC.md, VENDORS.md
//! cargo run -p xsplice-spec --bin gen -- --check # exit 1 and list stale files, write nothing
//! cargo run -p xsplice-spec --bin gen -- --root DIR
//! ```
//!
//! The default root is the spec crate's own directory.

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: gen [--check] [--root SPEC_DIR]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut check = false;
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--root" => match args.next() {
                Some(dir) => root = PathBuf::from(dir),
                None => return usage(),
            },
            "-h" | "--help" => {
                println!("usage: gen [--check] [--root SPEC_DIR]");
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    if check {
        match xsplice_spec::check(&root) {
            Ok(stale) if stale.is_empty() => {
                println!("all generated files are fresh");
                ExitCode::SUCCESS
            }
            Ok(stale) => {
                for s in stale {
                    eprintln!("{s}");
                }
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("gen: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match xsplice_spec::write(&root) {
            Ok(changed) => {
                for p in &changed {
                    println!("updated spec/{}", p.display());
                }
                if changed.is_empty() {
                    println!("nothing to do: all generated files are fresh");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
