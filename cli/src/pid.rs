//! `--pid PID`: patching a running process through ptrace
//! (`xsplice_loader::ptrace::PtraceTarget`): `apply`, `revert`, `list` and
//! `check`. Linux x86-64 only; elsewhere each says so.

use std::path::{Path, PathBuf};

use xsplice_loader::LoadOptions;

use crate::error::CliError;
use crate::revert::Which;
use crate::{Output, Verbosity};

/// `--timeout MS`, for the commands that stop a process's threads.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct StopArgs {
    /// With --pid: how long every thread has to stop, in milliseconds.
    #[arg(
        long = "timeout",
        value_name = "MS",
        default_value_t = 1000,
        requires = "pid"
    )]
    pub timeout_ms: u64,
}

/// Which process, and how.
pub(crate) struct Request {
    /// The process.
    pub pid: i32,
    /// `--strict`: no thread anywhere inside a function being patched.
    pub strict: bool,
    /// How long every thread has to stop.
    pub stop: StopArgs,
    /// How payloads are loaded (trust options).
    pub opts: LoadOptions,
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    use super::*;

    fn unsupported() -> CliError {
        CliError::new("--pid: patching a running process needs Linux on x86-64")
    }

    pub(crate) fn apply(
        _: &Request,
        _: &[PathBuf],
        _: bool,
        _: Verbosity,
    ) -> Result<Output, CliError> {
        Err(unsupported())
    }

    pub(crate) fn revert(_: &Request, _: &Which<'_>) -> Result<Output, CliError> {
        Err(unsupported())
    }

    pub(crate) fn list(_: i32, _: bool, _: Verbosity) -> Result<Output, CliError> {
        Err(unsupported())
    }

    pub(crate) fn check(_: &Request, _: &Path, _: Verbosity) -> Result<Output, CliError> {
        Err(unsupported())
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use super::*;

    use xsplice_loader::engine::{Engine, EngineError, PayloadId, State, Target as _};
    use xsplice_loader::ptrace::{PcPolicy, PtraceError, PtraceOptions, PtraceTarget};
    use xsplice_loader::{LoadError, TargetError};

    use crate::error::engine_error;
    use crate::files;
    use crate::list::ListReport;
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
                "thread {tid} did not stop (uninterruptible sleep? see /proc/{pid}/task/{tid}/stat; \
                 or a machine too busy to run it): nothing was written; try again, or give the \
                 threads longer with --timeout MS"
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
            (EngineError::Load(LoadError::Target(TargetError::OutOfMemory { .. })), Some(_)) => {
                CliError::new(format!("{what}: {e}")).hint(format!(
                    "process {pid} has no free address space within 1 GiB of its executable's \
                     text, where the payload's code must go to be reached by a jump"
                ))
            }
            // Symbols come from the executable, as from an image.
            (_, Some(path)) => engine_error(path, e, Some(Path::new(&format!("/proc/{pid}/exe")))),
            (_, None) => CliError::new(format!("{what}: {e}")),
        }
    }

    /// Opens the process and the engine over it (loading payloads with
    /// `opts`), with the applied stack the process's ledger records.
    fn open(req: &Request) -> Result<Engine<PtraceTarget>, CliError> {
        let (pid, opts) = (req.pid, req.opts.clone());
        let policy = if req.strict {
            PcPolicy::Function
        } else {
            PcPolicy::Site
        };
        let popts = PtraceOptions {
            policy,
            timeout: std::time::Duration::from_millis(req.stop.timeout_ms),
            ..PtraceOptions::default()
        };
        let target = PtraceTarget::attach(pid, popts)
            .map_err(|e| ptrace_error(pid, &format!("process {pid}"), &e))?;
        Engine::open(target, opts).map_err(|e| {
            let err = engine_err(pid, None, None, &e);
            match e {
                EngineError::Ledger(_) | EngineError::LedgerMismatch { .. } => err.hint(format!(
                    "the `xsplice-ledger` mapping of process {pid} does not match its code: \
                     something other than xsplice changed it; restart the process"
                )),
                _ => err,
            }
        })
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

    /// Unloads payload `id` (not applied) from the process: its unload
    /// hooks run and its regions are unmapped, except one a thread may still
    /// return into, which stays mapped with a warning.
    fn release(
        engine: &mut Engine<PtraceTarget>,
        id: PayloadId,
        out: &mut Output,
    ) -> Result<(), CliError> {
        let pid = engine.target().pid();
        let name = engine.name(id).unwrap_or_default().to_string();
        match engine.unload(id) {
            Ok(()) => Ok(()),
            Err(e) if matches!(inner(&e), Some(PtraceError::InUse { .. })) => {
                out.warn(format!("{name}: {e}"));
                Ok(())
            }
            Err(e) => Err(engine_err(pid, None, None, &e)),
        }
    }

    /// The last rendezvous that wrote code, and the totals of this run, for
    /// the output.
    fn pause_line(engine: &Engine<PtraceTarget>) -> Option<String> {
        let t = engine.target();
        let (total, count) = t.stopped_total();
        t.pauses().last().map(|d| {
            format!(
                "  threads stopped for {} µs to write the code ({} µs in {count} rendezvous \
                 so far, with mapping and hooks; {} retr{})",
                d.as_micros(),
                total.as_micros(),
                t.retries(),
                if t.retries() == 1 { "y" } else { "ies" }
            )
        })
    }

    pub(crate) fn apply(
        req: &Request,
        payloads: &[PathBuf],
        replace: bool,
        v: Verbosity,
    ) -> Result<Output, CliError> {
        let pid = req.pid;
        let mut engine = open(req)?;
        let build_id = engine.target().build_id().map(<[u8]>::to_vec);
        let mut out = Output::default();
        let last = payloads.len().saturating_sub(1);
        // What this run applied, so that a payload refused later takes the
        // earlier ones back out: several payloads are all-or-nothing, as
        // offline (where nothing is written unless every one applies).
        let mut applied_now = Vec::new();
        for (i, path) in payloads.iter().enumerate() {
            let err = |e| engine_err(pid, Some(path), build_id.as_deref(), &e);
            let loaded = files::read(path, files::payload_limit(), "payload")
                .and_then(|bytes| engine.load(&files::display_name(path), &bytes).map_err(err));
            let id = match loaded {
                Ok(id) => id,
                Err(e) => return Err(roll_back(&mut engine, &applied_now, e)),
            };
            let replacing = replace && i == last && !engine.applied().is_empty();
            let done = if replacing {
                engine.replace(id)
            } else {
                engine.apply(id)
            };
            if let Err(e) = done {
                // Leave no region of a refused payload behind in the process.
                let _ = engine.unload(id);
                return Err(roll_back(&mut engine, &applied_now, err(e)));
            }
            applied_now.push(id);
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
        // What `--replace` reverted leaves the process too.
        let idle: Vec<_> = engine
            .ids()
            .filter(|id| engine.state(*id) != Ok(State::Applied))
            .collect();
        for id in idle {
            release(&mut engine, id, &mut out)?;
        }
        if v.quiet {
            out.stdout.clear();
        }
        Ok(out)
    }

    /// Reverts and unloads, top first, the payloads `ids` this run applied
    /// before one was refused with `err`, and says on `err` what happened to
    /// them: reverted, or (when a revert fails) still applied.
    fn roll_back(engine: &mut Engine<PtraceTarget>, ids: &[PayloadId], err: CliError) -> CliError {
        let pid = engine.target().pid();
        let mut reverted = Vec::new();
        for (n, &id) in ids.iter().enumerate().rev() {
            let name = engine.name(id).unwrap_or_default().to_string();
            if let Err(e) = engine.revert(id) {
                let kept: Vec<String> = ids
                    .get(..=n)
                    .unwrap_or_default()
                    .iter()
                    .map(|&id| format!("`{}`", engine.name(id).unwrap_or_default()))
                    .collect();
                return err.hint(format!(
                    "{} stay{} applied in process {pid} (taking {name} back out failed: {e}); \
                     `xsplice revert --pid {pid}` reverts the top",
                    kept.join(", "),
                    if kept.len() == 1 { "s" } else { "" },
                ));
            }
            let _ = engine.unload(id);
            reverted.push(format!("`{name}`"));
        }
        if reverted.is_empty() {
            return err;
        }
        reverted.reverse();
        err.hint(format!(
            "nothing was changed: {} (applied before it in this run) {} reverted again",
            reverted.join(", "),
            if reverted.len() == 1 { "was" } else { "were" },
        ))
    }

    pub(crate) fn revert(req: &Request, which: &Which<'_>) -> Result<Output, CliError> {
        let pid = req.pid;
        let mut engine = open(req)?;
        let mut out = Output::default();
        for id in crate::revert::pick(&engine, which)? {
            let name = engine.name(id).unwrap_or_default().to_string();
            let err = |e| engine_err(pid, None, None, &e);
            engine.revert(id).map_err(err)?;
            out.line(format!("reverted {name} in process {pid}"));
            release(&mut engine, id, &mut out)?;
            if let Some(l) = pause_line(&engine) {
                out.line(l);
            }
        }
        Ok(out)
    }

    pub(crate) fn list(pid: i32, json: bool, v: Verbosity) -> Result<Output, CliError> {
        let engine = open(&Request {
            pid,
            strict: false,
            stop: StopArgs { timeout_ms: 1000 },
            opts: LoadOptions::default(),
        })?;
        let ledger = engine
            .ledger()
            .map_err(|e| engine_err(pid, None, None, &e))?;
        let report = ListReport::new(
            format!("process {pid}"),
            engine.target().build_id(),
            &ledger,
            std::iter::empty(),
        );
        let mut out = Output::default();
        if json {
            out.line(crate::inspect::to_json(&report)?);
        } else {
            out.stdout = report.text(v.verbose);
        }
        Ok(out)
    }

    pub(crate) fn check(req: &Request, payload: &Path, v: Verbosity) -> Result<Output, CliError> {
        let pid = req.pid;
        let mut engine = open(req)?;
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
