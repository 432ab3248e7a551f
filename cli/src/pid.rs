//! `--pid PID`: patching a running process through ptrace
//! (`xsplice_loader::ptrace::PtraceTarget`): `apply`, `revert`, `list` and
//! `check`. Linux x86-64 only; elsewhere each says so.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::CliError;
use crate::{Output, Verbosity};

/// `xsplice revert`.
#[derive(Debug, Args)]
pub(crate) struct RevertArgs {
    /// The running process to revert payloads in.
    #[arg(long, value_name = "PID")]
    pub pid: i32,
    /// The payload to revert (its name as `list` shows it); it must be the top of the stack.
    #[arg(value_name = "NAME", conflicts_with = "all")]
    pub name: Option<String>,
    /// Revert every applied payload, top first.
    #[arg(long)]
    pub all: bool,
}

/// `xsplice list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The running process whose applied payloads to list.
    #[arg(long, value_name = "PID")]
    pub pid: i32,
    /// Print JSON (documented in cli/JSON.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    use super::*;

    fn unsupported() -> CliError {
        CliError::new("--pid: patching a running process needs Linux on x86-64")
    }

    pub(crate) fn apply(_: i32, _: &[PathBuf], _: bool, _: Verbosity) -> Result<Output, CliError> {
        Err(unsupported())
    }

    pub(crate) fn revert(_: &RevertArgs, _: Verbosity) -> Result<Output, CliError> {
        Err(unsupported())
    }

    pub(crate) fn list(_: &ListArgs, _: Verbosity) -> Result<Output, CliError> {
        Err(unsupported())
    }

    pub(crate) fn check(_: i32, _: &Path, _: Verbosity) -> Result<Output, CliError> {
        Err(unsupported())
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use super::*;

    use serde::Serialize;
    use xsplice_loader::engine::{Engine, EngineError, Target as _};
    use xsplice_loader::ptrace::{PtraceError, PtraceOptions, PtraceTarget};
    use xsplice_loader::{LoadError, LoadOptions, TargetError};

    use crate::error::engine_error;
    use crate::files;
    use crate::report::{addr, hex};

    /// Why ptrace may be refused here, from `/proc`: the Yama scope and a
    /// tracer already attached.
    fn permission_hints(pid: i32, mut err: CliError) -> CliError {
        let tracer = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("TracerPid:"))
                    .and_then(|v| v.trim().parse::<i32>().ok())
            })
            .filter(|t| *t != 0);
        if let Some(t) = tracer {
            err = err.hint(format!(
                "process {pid} is already traced by process {t} (a debugger or strace?): \
                 detach it first"
            ));
        }
        let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok());
        match scope {
            Some(1) => err.hint(
                "Yama ptrace_scope is 1: only a parent may trace a process, unless it calls \
                 prctl(PR_SET_PTRACER); run xsplice as root, or `sysctl kernel.yama.ptrace_scope=0`",
            ),
            Some(2) => err.hint("Yama ptrace_scope is 2: only root (CAP_SYS_PTRACE) may trace"),
            Some(3) => err.hint("Yama ptrace_scope is 3: tracing is disabled until reboot"),
            _ => err.hint(
                "a process of another user needs root (CAP_SYS_PTRACE); containers may \
                 forbid ptrace (seccomp, --cap-add=SYS_PTRACE)",
            ),
        }
    }

    /// A ptrace failure as one `error:` line and its hints.
    fn ptrace_error(pid: i32, what: &str, e: &PtraceError) -> CliError {
        let err = CliError::new(format!("{what}: {e}"));
        match e {
            PtraceError::UnknownPid { .. } => {
                err.hint("no such process: check the PID (`pgrep NAME`, `ps`)")
            }
            PtraceError::NoSuchProcess { .. } => err.hint(
                "the process exited; whatever xsplice had written lived in its memory and is \
                 gone with it: nothing half-applied survives",
            ),
            PtraceError::Permission { .. } => permission_hints(pid, err),
            PtraceError::Attach { errno, .. }
                if std::io::Error::from_raw_os_error(*errno).kind()
                    == std::io::ErrorKind::PermissionDenied =>
            {
                permission_hints(pid, err)
            }
            PtraceError::Timeout { tid, .. } => err.hint(format!(
                "thread {tid} did not stop (uninterruptible sleep? see /proc/{pid}/task/{tid}/stat); \
                 nothing was written: try again"
            )),
            PtraceError::Busy { .. } => err.hint(
                "a thread kept executing the code to patch; nothing was written: try again \
                 (a function that never returns cannot be patched at its entry)",
            ),
            PtraceError::Locked { .. } => {
                err.hint("wait for the other xsplice to finish, then try again")
            }
            _ => err,
        }
    }

    /// The ptrace error inside an engine error, if it is one.
    fn inner(e: &EngineError) -> Option<&PtraceError> {
        match e {
            EngineError::Target(TargetError::Ptrace(p))
            | EngineError::Load(LoadError::Target(TargetError::Ptrace(p))) => Some(p),
            _ => None,
        }
    }

    /// An engine error on `payload` (or on the process when `None`).
    fn engine_err(
        pid: i32,
        payload: Option<&Path>,
        build_id: Option<&[u8]>,
        e: &EngineError,
    ) -> CliError {
        let what = payload.map_or_else(|| format!("process {pid}"), |p| p.display().to_string());
        if let Some(p) = inner(e) {
            return ptrace_error(pid, &what, p);
        }
        match (e, payload) {
            (
                EngineError::Dependency {
                    wanted,
                    what: below,
                    ..
                },
                Some(_),
            ) if *below == "the running image" => {
                CliError::new(format!("{what}: {e}")).hint(format!(
                    "the payload was built for another binary (build-id {}); process {pid} \
                     runs build-id {}: rebuild the payload against /proc/{pid}/exe",
                    hex(wanted),
                    build_id.map_or_else(|| "none".to_string(), hex)
                ))
            }
            (_, Some(path)) => engine_error(path, e, None),
            (_, None) => CliError::new(format!("{what}: {e}")),
        }
    }

    /// Opens the process and the engine over it, with the applied stack
    /// the process's ledger records.
    fn open(pid: i32) -> Result<Engine<PtraceTarget>, CliError> {
        let target = PtraceTarget::attach(pid, PtraceOptions::default())
            .map_err(|e| ptrace_error(pid, &format!("process {pid}"), &e))?;
        Ok(Engine::new(target, LoadOptions::default()))
    }

    /// One line per record: its site and where it jumps.
    fn describe(p: &xsplice_loader::LoadedPayload) -> Vec<String> {
        p.records
            .iter()
            .map(|r| {
                format!(
                    "  {} {}: site {} -> {}",
                    r.index,
                    r.name,
                    addr(r.site),
                    addr(r.func.new_addr)
                )
            })
            .collect()
    }

    /// The last rendezvous, for the output.
    fn pause_line(engine: &Engine<PtraceTarget>) -> Option<String> {
        let t = engine.target();
        t.pauses().last().map(|d| {
            format!(
                "  threads stopped for {} µs ({} retr{} in all)",
                d.as_micros(),
                t.retries(),
                if t.retries() == 1 { "y" } else { "ies" }
            )
        })
    }

    pub(crate) fn apply(
        pid: i32,
        payloads: &[PathBuf],
        replace: bool,
        v: Verbosity,
    ) -> Result<Output, CliError> {
        let mut engine = open(pid)?;
        let build_id = engine.target().build_id().map(<[u8]>::to_vec);
        let mut out = Output::default();
        let last = payloads.len().saturating_sub(1);
        for (i, path) in payloads.iter().enumerate() {
            let bytes = files::read(path, files::payload_limit(), "payload")?;
            let err = |e| engine_err(pid, Some(path), build_id.as_deref(), &e);
            let id = engine
                .load(&files::display_name(path), &bytes)
                .map_err(err)?;
            let replacing = replace && i == last && i > 0;
            let done = if replacing {
                engine.replace(id)
            } else {
                engine.apply(id)
            };
            if let Err(e) = done {
                // Leave no region of a refused payload behind in the process.
                let _ = engine.unload(id);
                return Err(err(e));
            }
            let p = engine.payload(id).map_err(err)?;
            let verb = if replacing {
                "replaced the stack with"
            } else {
                "applied"
            };
            out.line(format!(
                "{verb} {} in process {pid}: {} record{}",
                path.display(),
                p.records.len(),
                if p.records.len() == 1 { "" } else { "s" },
            ));
            for l in describe(p) {
                out.line(l);
            }
            if let Some(l) = pause_line(&engine) {
                out.line(l);
            }
            for w in &p.warnings {
                out.warn(format!("{}: {w}", path.display()));
            }
        }
        if v.quiet {
            out.stdout.clear();
        }
        Ok(out)
    }

    pub(crate) fn revert(a: &RevertArgs, v: Verbosity) -> Result<Output, CliError> {
        let pid = a.pid;
        let mut engine = open(pid)?;
        let stack = engine.applied().to_vec();
        if stack.is_empty() {
            return Err(CliError::new(format!(
                "process {pid}: no payload is applied (by xsplice)"
            )));
        }
        let name_of = |e: &Engine<PtraceTarget>, id| e.name(id).unwrap_or_default().to_string();
        let top = stack.last().copied().into_iter();
        let targets: Vec<_> = if a.all {
            stack.iter().rev().copied().collect()
        } else {
            top.collect()
        };
        if let (Some(name), Some(&id)) = (&a.name, stack.last()) {
            let top_name = name_of(&engine, id);
            if top_name != *name {
                let place = if stack.iter().any(|s| name_of(&engine, *s) == *name) {
                    format!("is not the top of the stack (`{top_name}` is)")
                } else {
                    "is not applied".to_string()
                };
                return Err(CliError::new(format!("process {pid}: `{name}` {place}"))
                    .hint("only the top payload can be reverted; see `xsplice list --pid`"));
            }
        }
        let mut out = Output::default();
        for id in targets {
            let name = name_of(&engine, id);
            engine
                .revert(id)
                .map_err(|e| engine_err(pid, None, None, &e))?;
            out.line(format!("reverted {name} in process {pid}"));
            if let Some(l) = pause_line(&engine) {
                out.line(l);
            }
        }
        if v.quiet {
            out.stdout.clear();
        }
        Ok(out)
    }

    /// `list --json` (see cli/JSON.md).
    #[derive(Debug, Serialize)]
    struct ListJson {
        pid: i32,
        build_id: Option<String>,
        applied: Vec<AppliedJson>,
    }

    #[derive(Debug, Serialize)]
    struct AppliedJson {
        name: String,
        build_id: Option<String>,
        records: Vec<RecordJson>,
    }

    #[derive(Debug, Serialize)]
    struct RecordJson {
        name: String,
        site: String,
        new_addr: String,
    }

    pub(crate) fn list(a: &ListArgs, _v: Verbosity) -> Result<Output, CliError> {
        let pid = a.pid;
        let engine = open(pid)?;
        let mut applied = Vec::new();
        for &id in engine.applied() {
            let err = |e| engine_err(pid, None, None, &e);
            let p = engine.payload(id).map_err(err)?;
            applied.push(AppliedJson {
                name: engine.name(id).map_err(err)?.to_string(),
                build_id: p.build_id.as_deref().map(hex),
                records: p
                    .records
                    .iter()
                    .map(|r| RecordJson {
                        name: r.name.clone(),
                        site: addr(r.site),
                        new_addr: addr(r.func.new_addr),
                    })
                    .collect(),
            });
        }
        let doc = ListJson {
            pid,
            build_id: engine.target().build_id().map(hex),
            applied,
        };
        let mut out = Output::default();
        if a.json {
            out.line(crate::inspect::to_json(&doc)?);
            return Ok(out);
        }
        out.line(format!(
            "process {pid} (build-id {}): {} payload{} applied{}",
            doc.build_id.as_deref().unwrap_or("none"),
            doc.applied.len(),
            if doc.applied.len() == 1 { "" } else { "s" },
            if doc.applied.is_empty() {
                ""
            } else {
                ", bottom first:"
            }
        ));
        for p in &doc.applied {
            out.line(format!("  {}", p.name));
            for r in &p.records {
                out.line(format!("    {}: {} -> {}", r.name, r.site, r.new_addr));
            }
        }
        Ok(out)
    }

    pub(crate) fn check(pid: i32, payload: &Path, v: Verbosity) -> Result<Output, CliError> {
        let mut engine = open(pid)?;
        let build_id = engine.target().build_id().map(<[u8]>::to_vec);
        let err = |e| engine_err(pid, Some(payload), build_id.as_deref(), &e);
        let bytes = files::read(payload, files::payload_limit(), "payload")?;
        let id = engine
            .load(&files::display_name(payload), &bytes)
            .map_err(err)?;
        let records = engine.payload(id).map_or_else(|_| Vec::new(), describe);
        let checked = engine.check(id);
        // The regions `load` mapped in the process go again either way.
        let unloaded = engine.unload(id);
        checked.map_err(err)?;
        unloaded.map_err(err)?;
        let mut out = Output::default();
        if !v.quiet {
            out.line(format!(
                "ok: {} would apply to process {pid}: symbols resolved, branch ranges, EXPECT \
                 bytes and dependencies checked (its code was not changed)",
                payload.display()
            ));
            for r in &records {
                out.line(r);
            }
        }
        Ok(out)
    }
}

pub(crate) use imp::{apply, check, list, revert};
