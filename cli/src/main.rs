//! `xsplice`: the command line of the xsplice live-patching payload format.
//!
//! A thin layer over the libraries: `xsplice-loader` loads, checks and
//! applies payloads (and writes them, under its `write` feature),
//! `xsplice-abi` knows the layouts and `xsplice-spec` produces the C header
//! and the JSON Schemas. This crate parses arguments, reads and writes files,
//! and turns results into text, JSON and exit codes:
//!
//! * 0 — success;
//! * 1 — the input is refused or a file cannot be read or written: one line
//!   `error: ...` on stderr naming the place, maybe followed by `hint: ...`;
//! * 2 — usage error (reported by clap).
//!
//! The JSON printed by `inspect --json` and `check --json` is documented in
//! `cli/JSON.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod apply;
mod build;
mod check;
mod cpu;
mod error;
mod files;
mod info;
mod inspect;
mod keys;
mod limits;
mod list;
mod load;
mod pid;
mod report;
mod revert;
mod sign;
mod text;
mod upgrade;

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::error::CliError;
use crate::text::one_line;

/// The xsplice command line.
#[derive(Debug, Parser)]
#[command(
    name = "xsplice",
    version,
    about = "Inspect, check, apply, build and upgrade xsplice live-patching payloads",
    long_about = "Inspect, check, apply, build and upgrade xsplice live-patching payloads \
                  (ELF relocatable objects with an `.xsplice.funcs` section).\n\n\
                  Exit status: 0 on success, 1 when an input is refused or a file cannot be \
                  read or written (one `error: ...` line on stderr), 2 on a usage error."
)]
struct Cli {
    /// Print only errors (and the data a command was asked for: JSON, header, schema, layout, inspect).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail (e.g. sections in `inspect`, arena usage in `apply`).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Describe a payload: records, note, dependencies, hooks, vendor entries, sections.
    Inspect(InspectArgs),
    /// Load a payload fully (and with --image, check it would apply) without writing anything.
    Check(CheckArgs),
    /// Apply payloads to an executable image offline and write the patched image, or to a running process (--pid).
    Apply(ApplyArgs),
    /// Revert the top payload (or all) of a patched image and write the result, or of a running process (--pid).
    Revert(RevertArgs),
    /// List what is applied to a patched image or a running process (--pid): the stack, each payload's sites.
    List(ListArgs),
    /// Build a payload of any record version from an object file of replacement functions.
    Build(build::BuildArgs),
    /// Rewrite a payload's records into another record version.
    Upgrade(UpgradeArgs),
    /// Print the on-disk layouts (offset, size, type of every field).
    Layout(LayoutArgs),
    /// Print a JSON Schema of the format (record layouts, the ABI note, the canonical view).
    Schema(SchemaArgs),
    /// Print the C header `xsplice_abi.h` (structs with `_Static_assert` offset checks).
    Header,
    /// Make an Ed25519 key pair: KEY (PEM PKCS#8, as openssl writes it) and KEY.pub.
    Keygen(keys::KeygenArgs),
    /// Sign a payload with an Ed25519 key (re-signing replaces the signature).
    Sign(sign::SignArgs),
}

/// `xsplice inspect`.
#[derive(Debug, Args)]
struct InspectArgs {
    /// The payload (an ELF64 relocatable object).
    payload: PathBuf,
    /// Signature verification and limits on untrusted input.
    #[command(flatten)]
    load: limits::LoadArgs,
    /// Resolve symbols against this executable image (its .symtab) and lay the payload out in its arenas.
    #[arg(long, value_name = "IMAGE")]
    image: Option<PathBuf>,
    /// Print JSON (documented in cli/JSON.md) instead of text.
    #[arg(long)]
    json: bool,
    /// Which alternatives would apply.
    #[command(flatten)]
    cpu: cpu::CpuArgs,
}

/// `xsplice check`.
#[derive(Debug, Args)]
struct CheckArgs {
    /// The payload (an ELF64 relocatable object).
    payload: PathBuf,
    /// Signature verification and limits on untrusted input.
    #[command(flatten)]
    load: limits::LoadArgs,
    /// Also check against this image: symbols, branch ranges, EXPECT bytes, build-id dependency.
    #[arg(long, value_name = "IMAGE")]
    image: Option<PathBuf>,
    /// Check against the running process PID instead: the payload is loaded into it (load hooks run) and unloaded again; its code is not changed.
    #[arg(long, value_name = "PID", conflicts_with_all = ["image", "json"])]
    pid: Option<i32>,
    #[command(flatten)]
    stop: pid::StopArgs,
    /// Print the verdict as JSON (documented in cli/JSON.md).
    #[arg(long)]
    json: bool,
}

/// Where `apply` and `revert` work: an image written anew to OUT, or a
/// running process.
#[derive(Debug, Args)]
struct Place {
    /// The executable image (prepared for offline patching: `.xsplice.arena.*` sections, a .symtab).
    #[arg(long, value_name = "IMAGE", required_unless_present = "pid")]
    image: Option<PathBuf>,
    /// Where to write the resulting image (mode 0755).
    #[arg(short, long, value_name = "OUT", required_unless_present = "pid")]
    output: Option<PathBuf>,
    /// The running process PID instead of an image (through ptrace; Linux x86-64).
    #[arg(long, value_name = "PID", conflicts_with_all = ["image", "output", "force"])]
    pid: Option<i32>,
    /// With --pid: also wait while a thread runs anywhere in the code taken out of service (the old function on apply, the replacement on revert), not only in the bytes written.
    #[arg(long, requires = "pid")]
    strict: bool,
    #[command(flatten)]
    stop: pid::StopArgs,
}

/// `xsplice apply`.
#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    place: Place,
    /// Payloads, applied as a stack in this order.
    #[arg(required = true, value_name = "PAYLOAD")]
    payloads: Vec<PathBuf>,
    /// The last payload replaces all the ones before it (revert them all, then apply it).
    #[arg(long)]
    replace: bool,
    /// Allow OUT to be the input image (or a payload) itself.
    #[arg(long)]
    force: bool,
    /// Signature verification and limits on untrusted input.
    #[command(flatten)]
    load: limits::LoadArgs,
    /// The CPU the patched image will run on, for payload alternatives.
    #[command(flatten)]
    cpu: cpu::CpuArgs,
}

/// `xsplice revert`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").args(["name", "all"])))]
struct RevertArgs {
    #[command(flatten)]
    place: Place,
    /// The payload to revert, by the name `list` shows or its file name; it must be the top. Default: the top.
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// Revert every applied payload, top first (the result is the unpatched image, byte for byte).
    #[arg(long)]
    all: bool,
    /// Allow OUT to be IMAGE itself (replaced by an atomic rename).
    #[arg(long)]
    force: bool,
}

/// `xsplice list`.
#[derive(Debug, Args)]
struct ListArgs {
    /// The (patched) image.
    #[arg(long, value_name = "IMAGE", required_unless_present = "pid")]
    image: Option<PathBuf>,
    /// List what is applied to the running process PID instead (through ptrace).
    #[arg(long, value_name = "PID", conflicts_with = "image")]
    pid: Option<i32>,
    /// Print JSON (documented in cli/JSON.md) instead of text.
    #[arg(long)]
    json: bool,
}

/// `xsplice upgrade`.
#[derive(Debug, Args)]
struct UpgradeArgs {
    /// The payload to rewrite.
    payload: PathBuf,
    /// The record version to write (1, 2 or 3).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=3))]
    to: u16,
    /// Where to write the rewritten payload.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Allow OUT to be the input payload itself.
    #[arg(long)]
    force: bool,
    /// Sign the rewritten payload with this private key (a signature of the input is dropped: it signed other bytes).
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
}

/// `xsplice layout`.
#[derive(Debug, Args)]
struct LayoutArgs {
    /// Only the record layout of this version (1, 2 or 3); default: every layout.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=3))]
    version: Option<u16>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// `xsplice schema`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").args(["version", "note", "note_desc", "vendor", "view"])))]
struct SchemaArgs {
    /// The schema of the raw record layout of this version (1, 2 or 3); the default is 3.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=3))]
    version: Option<u16>,
    /// The schema of the decoded ABI note.
    #[arg(long)]
    note: bool,
    /// The schema of the raw ABI note descriptor (24 bytes).
    #[arg(long)]
    note_desc: bool,
    /// The schema of a raw vendor entry header.
    #[arg(long)]
    vendor: bool,
    /// The schema of the canonical decoded record view (`PatchFunc`).
    #[arg(long)]
    view: bool,
}

/// How much to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verbosity {
    /// `-q`.
    pub quiet: bool,
    /// `-v`.
    pub verbose: bool,
}

/// What a successful command prints.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Text for stdout.
    pub stdout: String,
    /// Whole lines for stderr (`warning: ...`), not printed with `-q`.
    pub stderr: Vec<String>,
}

impl Output {
    /// Appends a line to stdout.
    pub fn line(&mut self, s: impl AsRef<str>) {
        self.stdout.push_str(s.as_ref());
        self.stdout.push('\n');
    }

    /// Adds a `warning: ...` line for stderr.
    pub fn warn(&mut self, s: impl AsRef<str>) {
        self.stderr
            .push(format!("warning: {}", one_line(s.as_ref())));
    }
}

fn run(cli: &Cli) -> Result<Output, CliError> {
    let v = Verbosity {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    match &cli.command {
        Command::Inspect(a) => inspect::run(
            &a.payload,
            a.image.as_deref(),
            a.json,
            &a.cpu,
            &a.load.options()?,
            v,
        ),
        Command::Check(a) => match a.pid {
            Some(pid) => pid::check(
                &pid::Request {
                    pid,
                    strict: false,
                    stop: a.stop,
                    opts: a.load.options()?,
                },
                &a.payload,
                v,
            ),
            None => check::run(
                &a.payload,
                a.image.as_deref(),
                a.json,
                &a.load.options()?,
                v,
            ),
        },
        Command::Apply(a) => match (a.place.pid, &a.place.image, &a.place.output) {
            (Some(pid), _, _) => pid::apply(
                &pid::Request {
                    pid,
                    strict: a.place.strict,
                    stop: a.place.stop,
                    opts: a.load.options()?,
                },
                &a.payloads,
                a.replace,
                v,
            ),
            (None, Some(image), Some(output)) => apply::run(
                &apply::Request {
                    image,
                    output,
                    payloads: &a.payloads,
                    replace: a.replace,
                    force: a.force,
                    opts: a.load.options()?,
                    cpu: &a.cpu,
                },
                v,
            ),
            _ => Err(CliError::new(
                "apply needs --image IMAGE -o OUT, or --pid PID",
            )),
        },
        Command::Revert(a) => {
            let which = match (&a.name, a.all) {
                (_, true) => revert::Which::All,
                (Some(n), false) => revert::Which::Named(n),
                (None, false) => revert::Which::Top,
            };
            let done = match (a.place.pid, &a.place.image, &a.place.output) {
                (Some(pid), _, _) => pid::revert(
                    &pid::Request {
                        pid,
                        strict: a.place.strict,
                        stop: a.place.stop,
                        opts: xsplice_loader::LoadOptions::default(),
                    },
                    &which,
                ),
                (None, Some(image), Some(output)) => revert::run(image, output, &which, a.force),
                _ => Err(CliError::new(
                    "revert needs --image IMAGE -o OUT, or --pid PID",
                )),
            };
            done.map(|mut o| {
                if v.quiet {
                    o.stdout.clear();
                }
                o
            })
        }
        Command::List(a) => match (a.pid, &a.image) {
            (Some(pid), _) => pid::list(pid, a.json, v),
            (None, Some(image)) => list::image(image, a.json, v),
            (None, None) => Err(CliError::new("list needs --image IMAGE or --pid PID")),
        },
        Command::Build(a) => build::run(a, v),
        Command::Upgrade(a) => {
            upgrade::run(&a.payload, a.to, &a.output, a.force, a.sign.as_deref(), v)
        }
        Command::Layout(a) => info::layout(a.version, a.json),
        Command::Schema(a) => info::schema(&info::SchemaChoice {
            version: a.version,
            note: a.note,
            note_desc: a.note_desc,
            vendor: a.vendor,
            view: a.view,
        }),
        Command::Header => Ok(Output {
            stdout: xsplice_spec::header(),
            stderr: Vec::new(),
        }),
        Command::Keygen(a) => keys::keygen(a, v),
        Command::Sign(a) => sign::run(a, v),
    }
}

/// Writes `text` to stdout; a closed pipe (`xsplice ... | head`) is not an error.
fn print_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Turns a panic into one `error:` line and exit status 1. Nothing should
/// panic on any input; this is the last line of defence, and says it is a bug.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            io::stderr(),
            "error: internal error{place}: {} (this is a bug in xsplice; please report it)",
            one_line(&msg)
        );
        std::process::exit(1);
    }));
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            let printed = print_stdout(&out.stdout);
            if !cli.quiet {
                let mut err = io::stderr().lock();
                for l in &out.stderr {
                    let _ = writeln!(err, "{l}");
                }
            }
            match printed {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    let _ = writeln!(io::stderr(), "error: cannot write to stdout: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            if let Some(doc) = &e.stdout {
                let _ = print_stdout(doc);
            }
            let mut err = io::stderr().lock();
            let _ = writeln!(err, "error: {}", one_line(&e.message));
            for h in &e.hints {
                let _ = writeln!(err, "hint: {}", one_line(h));
            }
            ExitCode::from(1)
        }
    }
}
