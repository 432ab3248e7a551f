//! Test harness for the server example, shared by `loader/tests/ptrace.rs`
//! and `cli/tests/pid.rs` (included with `#[path]`): builds `server.c` and
//! `fix.c` with gcc into a temporary directory, runs the server with its
//! output on a pipe, and parses its tick lines.
#![allow(dead_code)]

use std::io::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// This directory.
pub fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/server")
}

/// Whether a missing tool or a refused `ptrace` must fail the test (CI).
pub fn tools_required() -> bool {
    std::env::var("XSPLICE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Skips the calling test loudly, or fails it when tools are required.
pub fn skip(why: &str) {
    assert!(
        !tools_required(),
        "XSPLICE_REQUIRE_TOOLS=1 but the ptrace test cannot run: {why}"
    );
    eprintln!("\n*** SKIP: {why} ***\n");
}

/// The example, built.
pub struct Built {
    /// The server executable (PIE, with a build-id and its symbol table).
    pub server: PathBuf,
    /// The fix payload.
    pub fix: PathBuf,
    /// The directory holding both.
    pub dir: PathBuf,
}

fn gcc(args: &[&str], cwd: &Path) -> Result<(), String> {
    let out = Command::new("gcc")
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| format!("gcc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "gcc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Builds the server and the fix into a fresh directory named `name`
/// under `tmp`; `Err` when gcc is missing or fails.
pub fn build(tmp: &Path, name: &str) -> Result<Built, String> {
    let dir = tmp.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let src = example_dir();
    let server = dir.join("server");
    let fix = dir.join("fix.o");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    gcc(
        &[
            "-O2",
            "-pthread",
            "-Wl,--build-id",
            &s(&src.join("server.c")),
            "-o",
            &s(&server),
        ],
        &dir,
    )?;
    let built = Built { server, fix, dir };
    built.payload("fix.c", &[], "fix.o")?;
    Ok(built)
}

impl Built {
    /// Compiles the payload source `src` of this directory with `defines`
    /// (`-DNAME`) into `out` in the build directory.
    pub fn payload(&self, src: &str, defines: &[&str], out: &str) -> Result<PathBuf, String> {
        let obj = self.dir.join(out);
        let mut args = vec!["-O2", "-fpie", "-fno-stack-protector", "-c"];
        let defs: Vec<String> = defines.iter().map(|d| format!("-D{d}")).collect();
        args.extend(defs.iter().map(String::as_str));
        let src = example_dir().join(src).to_string_lossy().into_owned();
        let o = obj.to_string_lossy().into_owned();
        args.extend([src.as_str(), "-o", o.as_str()]);
        gcc(&args, &self.dir)?;
        Ok(obj)
    }
}

/// One line `tick N vat V old O new N bad B fixes F signals S eintr E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Tick number.
    pub n: u64,
    /// Last value returned for 1000 cents.
    pub vat: i64,
    /// Old (buggy) results in the tick.
    pub old: u64,
    /// New (fixed) results in the tick.
    pub new: u64,
    /// Other results.
    pub bad: u64,
    /// The server's fix counter (bumped by the hooks).
    pub fixes: i64,
    /// SIGUSR1 signals handled so far.
    pub signals: u64,
    /// System calls that failed with EINTR so far (must stay 0).
    pub eintr: u64,
}

fn parse_tick(line: &str) -> Option<Tick> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| w.get(i)?.parse::<i64>().ok();
    if w.first() != Some(&"tick") {
        return None;
    }
    Some(Tick {
        n: u64::try_from(num(1)?).ok()?,
        vat: num(3)?,
        old: u64::try_from(num(5)?).ok()?,
        new: u64::try_from(num(7)?).ok()?,
        bad: u64::try_from(num(9)?).ok()?,
        fixes: num(11)?,
        signals: u64::try_from(num(13)?).ok()?,
        eintr: u64::try_from(num(15)?).ok()?,
    })
}

/// The running server; killed on drop.
pub struct Server {
    child: Child,
    /// The server's stdin: a byte asks for a `mark` line.
    stdin: ChildStdin,
    /// Its PID.
    pub pid: i32,
    lines: Receiver<String>,
    /// Every tick seen so far.
    pub seen: Vec<Tick>,
}

impl Server {
    /// Starts `server THREADS TICK_MS` and waits for its first line.
    pub fn start(server: &Path, threads: u32, tick_ms: u32) -> Server {
        Server::start_with(server, threads, tick_ms, None)
    }

    /// The same, with one more thread: `SERVER_SPIN` (sits in `spin()`'s
    /// first bytes forever) or `SERVER_PARK` (loops in `park()` past its
    /// first 8 bytes forever).
    pub fn start_with(server: &Path, threads: u32, tick_ms: u32, extra: Option<&str>) -> Server {
        let mut cmd = Command::new(server);
        cmd.args([threads.to_string(), tick_ms.to_string()])
            .env("SERVER_MARKS", "1")
            .stdin(Stdio::piped());
        if let Some(var) = extra {
            cmd.env(var, "1");
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn server");
        let out = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = i32::try_from(child.id()).expect("pid");
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server starts");
        assert!(first.starts_with("server "), "{first}");
        Server {
            child,
            stdin,
            pid,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Parses and checks a tick line: no garbage result, no EINTR.
    fn record(&mut self, line: &str) -> Option<Tick> {
        let t = parse_tick(line)?;
        assert_eq!(t.bad, 0, "the server saw a garbage result: {line}");
        assert_eq!(t.eintr, 0, "a system call was not restarted: {line}");
        self.seen.push(t);
        Some(t)
    }

    /// The next tick line (panics if the server stops printing: it died).
    pub fn tick(&mut self) -> Tick {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(t) = self.record(&line) {
                        return t;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("the server printed nothing for 10 s"),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait();
                    panic!("the server died: {status:?}")
                }
            }
        }
    }

    /// A tick wholly after this call: asks the server for a `mark` (it
    /// resets its counts at the next tick boundary and says so), skips
    /// every line up to it, and returns the tick after it.
    pub fn settled(&mut self) -> Tick {
        self.stdin.write_all(b"m").expect("write to the server");
        self.stdin.flush().expect("write to the server");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == "mark" => return self.tick(),
                Ok(line) => {
                    self.record(&line);
                }
                Err(e) => panic!("no mark from the server: {e:?} (alive: {})", self.alive()),
            }
        }
    }

    /// Whether the server is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
