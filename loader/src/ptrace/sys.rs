//! The system calls the ptrace target makes, each wrapped in a small safe
//! function: `ptrace(2)` requests on one thread, `waitpid(2)` with a
//! deadline, and the `/proc/PID` files (`mem`, `maps`, `task`, `auxv`).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::string::String;
use std::time::{Duration, Instant};
use std::vec::Vec;

/// A thread's general-purpose registers (`struct user_regs_struct`).
pub(crate) type Regs = libc::user_regs_struct;

/// The errno of the last failed call.
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ptrace(req, tid, addr, data)` for the requests that return 0 or -1.
fn request(req: libc::c_uint, tid: i32, addr: usize, data: usize) -> Result<(), i32> {
    // SAFETY: every caller passes a request whose `addr`/`data` are plain
    // integers (options, signal numbers) or, for GETREGS/SETREGS, a pointer
    // to a live `Regs` of the right size (see `get_regs`/`set_regs`).
    let rc = unsafe {
        libc::ptrace(
            req,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    };
    if rc == -1 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Attaches to `tid` without stopping it (`PTRACE_SEIZE`, no options: new
/// threads are not auto-attached, the rendezvous rescans the task list).
pub(crate) fn seize(tid: i32) -> Result<(), i32> {
    request(libc::PTRACE_SEIZE, tid, 0, 0)
}

/// Asks a seized thread to stop (`PTRACE_INTERRUPT`).
pub(crate) fn interrupt(tid: i32) -> Result<(), i32> {
    request(libc::PTRACE_INTERRUPT, tid, 0, 0)
}

/// Detaches from a stopped thread, delivering `sig` if it is in a
/// signal-delivery-stop (0: none).
pub(crate) fn detach(tid: i32, sig: i32) -> Result<(), i32> {
    request(
        libc::PTRACE_DETACH,
        tid,
        0,
        usize::try_from(sig).unwrap_or(0),
    )
}

/// Resumes a stopped thread without a signal.
pub(crate) fn cont(tid: i32) -> Result<(), i32> {
    request(libc::PTRACE_CONT, tid, 0, 0)
}

/// Executes one instruction of a stopped thread.
pub(crate) fn single_step(tid: i32) -> Result<(), i32> {
    request(libc::PTRACE_SINGLESTEP, tid, 0, 0)
}

/// Queues `sig` for thread `tid` of `pid` again (`tgkill`); best effort:
/// the thread may have exited.
pub(crate) fn tgkill(pid: i32, tid: i32, sig: i32) {
    // SAFETY: tgkill takes three integers and touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::c_long::from(pid),
            libc::c_long::from(tid),
            libc::c_long::from(sig),
        );
    }
}

/// The registers of a stopped thread.
pub(crate) fn get_regs(tid: i32) -> Result<Regs, i32> {
    // SAFETY: `user_regs_struct` is plain integers; all-zero is valid.
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GETREGS writes exactly one `user_regs_struct` at
    // `data`, which points to `regs`, alive for the call.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::from_mut(&mut regs).cast::<libc::c_void>(),
        )
    };
    if rc == -1 {
        Err(errno())
    } else {
        Ok(regs)
    }
}

/// Sets the registers of a stopped thread.
pub(crate) fn set_regs(tid: i32, regs: &Regs) -> Result<(), i32> {
    // SAFETY: PTRACE_SETREGS reads one `user_regs_struct` from `data`,
    // which points to `regs`, alive for the call.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::from_ref(regs).cast_mut().cast::<libc::c_void>(),
        )
    };
    if rc == -1 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// How a traced thread changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Stopped by `PTRACE_INTERRUPT` or a group-stop (`PTRACE_EVENT_STOP`):
    /// nothing to deliver at detach.
    Event,
    /// Stopped on the way to delivering this signal: delivered at detach.
    Signal(i32),
    /// The thread exited (or was killed) and is gone.
    Gone,
}

/// Waits until `tid` stops or exits, polling so the wait has a deadline:
/// a few yields first (a thread usually stops within microseconds), then
/// sleeps growing to 1 ms.
pub(crate) fn wait(tid: i32, deadline: Instant) -> Result<Option<Stop>, i32> {
    let mut nap = Duration::from_micros(10);
    let mut spins = 0u32;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int at `&mut status`.
        let rc = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if rc == -1 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            if e == libc::ECHILD {
                return Ok(Some(Stop::Gone));
            }
            return Err(e);
        }
        if rc == tid {
            if libc::WIFSTOPPED(status) {
                let sig = libc::WSTOPSIG(status);
                let event = status >> 16;
                return Ok(Some(if event == libc::PTRACE_EVENT_STOP {
                    Stop::Event
                } else {
                    Stop::Signal(sig)
                }));
            }
            return Ok(Some(Stop::Gone));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        if spins < 50 {
            // Below 50: cannot saturate.
            spins = spins.saturating_add(1);
            std::thread::yield_now();
        } else {
            std::thread::sleep(nap);
            // At most 1 ms: cannot saturate.
            nap = nap.saturating_mul(2).min(Duration::from_millis(1));
        }
    }
}

/// The thread ids of `pid` (`/proc/PID/task`).
pub(crate) fn tids(pid: i32) -> std::io::Result<Vec<i32>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(tid);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Whether thread `tid` of `pid` is exiting or gone (its state in
/// `/proc/PID/task/TID/stat` is `Z` or `X`, or the file is gone): the
/// kernel refuses to attach to such a thread with `EPERM`.
pub(crate) fn exiting(pid: i32, tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
        return true;
    };
    // `tid (comm) S ...`: the comm may hold spaces and parentheses.
    let state = stat
        .rfind(')')
        .and_then(|i| stat.get(i.saturating_add(1)..))
        .and_then(|rest| rest.split_whitespace().next());
    matches!(state, Some("Z" | "X" | "x"))
}

/// `AT_PHDR` from `/proc/PID/auxv`.
pub(crate) fn at_phdr(pid: i32) -> std::io::Result<Option<u64>> {
    let auxv = std::fs::read(format!("/proc/{pid}/auxv"))?;
    let word = |c: &[u8]| {
        <[u8; 8]>::try_from(c)
            .ok()
            .map(u64::from_ne_bytes)
            .unwrap_or(0)
    };
    Ok(auxv
        .chunks_exact(16)
        .map(|pair| {
            (
                word(pair.get(..8).unwrap_or(&[])),
                word(pair.get(8..).unwrap_or(&[])),
            )
        })
        .find(|&(key, _)| key == libc::AT_PHDR)
        .map(|(_, value)| value))
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapLine {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// `rwxp` flags.
    pub perms: String,
    /// The path or pseudo-name (`[stack]`, `/memfd:...`), empty if anonymous.
    pub path: String,
}

/// Parses `/proc/PID/maps`.
pub(crate) fn maps(pid: i32) -> std::io::Result<Vec<MapLine>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(text.lines().filter_map(parse_map_line).collect())
}

fn parse_map_line(line: &str) -> Option<MapLine> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    let (lo, hi) = range.split_once('-')?;
    Some(MapLine {
        start: u64::from_str_radix(lo, 16).ok()?,
        end: u64::from_str_radix(hi, 16).ok()?,
        perms: perms.into(),
        path: path.into(),
    })
}

/// `/proc/PID/mem`, opened read-write: writes go through the kernel's
/// forced access, so read-only text is written without making it writable
/// in the target (a private file mapping gets a copy-on-write page, as a
/// debugger's breakpoint does).
#[derive(Debug)]
pub(crate) struct Mem(File);

impl Mem {
    /// Opens the memory of `pid`.
    pub(crate) fn open(pid: i32) -> std::io::Result<Mem> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/mem"))
            .map(Mem)
    }

    /// Reads exactly `buf.len()` bytes at `addr`.
    pub(crate) fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        self.0.read_exact_at(buf, addr).map_err(io_errno)
    }

    /// Writes all of `bytes` at `addr`.
    pub(crate) fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), i32> {
        self.0.write_all_at(bytes, addr).map_err(io_errno)
    }
}

/// The errno of an I/O error (`EIO` for a short read or write).
pub(crate) fn io_errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_map_lines() {
        let l = parse_map_line(
            "7f00aa000000-7f00aa100000 rw-s 00000000 00:01 1234     /memfd:xsplice-ledger (deleted)",
        );
        assert_eq!(
            l,
            Some(MapLine {
                start: 0x7f00_aa00_0000,
                end: 0x7f00_aa10_0000,
                perms: "rw-s".into(),
                path: "/memfd:xsplice-ledger (deleted)".into(),
            })
        );
        let anon = parse_map_line("1000-2000 r-xp 00000000 00:00 0 ");
        assert_eq!(anon.map(|l| l.path), Some(String::new()));
        assert_eq!(parse_map_line("garbage"), None);
    }
}
