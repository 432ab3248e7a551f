//! The rendezvous: every thread of the target seized and stopped, and
//! released exactly as it was.

use std::time::{Duration, Instant};
use std::vec::Vec;

use super::sys::{self, Regs, Stop};
use super::PtraceError;
use crate::exe;

/// One stopped thread.
#[derive(Debug, Clone)]
pub(crate) struct Thread {
    /// Thread id.
    pub tid: i32,
    /// Its registers when it stopped: restored exactly after an injection.
    pub regs: Regs,
    /// The signal it was about to receive when it stopped, handed back at
    /// detach (0: none).
    pub pending: i32,
}

/// Every thread of a process, stopped. Dropping it detaches them all.
#[derive(Debug)]
pub(crate) struct Stopped {
    pid: i32,
    /// The stopped threads, in tid order.
    pub threads: Vec<Thread>,
    /// When the first thread was asked to stop.
    pub since: Instant,
    /// Threads seized and asked to stop that had not stopped when the
    /// rendezvous failed: released at drop once they stop.
    late: Vec<i32>,
}

impl Stopped {
    /// Seizes and interrupts every thread of `pid`, rescanning
    /// `/proc/PID/task` until a scan finds no thread that is not stopped
    /// yet (a thread created meanwhile by a running thread shows up in the
    /// next scan; once all are stopped no new one can appear). A thread
    /// that exits meanwhile is dropped. A thread that does not stop within
    /// `timeout` fails the whole rendezvous, and every thread stopped so
    /// far is released.
    pub(crate) fn all(pid: i32, timeout: Duration) -> Result<Stopped, PtraceError> {
        let since = Instant::now();
        let deadline = exe::deadline(since, timeout);
        let mut stopped = Stopped {
            pid,
            threads: Vec::new(),
            since,
            late: Vec::new(),
        };
        let mut gone: Vec<i32> = Vec::new();
        loop {
            let tids = sys::tids(pid).map_err(|e| PtraceError::from_proc(pid, "task", &e))?;
            let new: Vec<i32> = tids
                .into_iter()
                .filter(|t| !gone.contains(t) && !stopped.threads.iter().any(|s| s.tid == *t))
                .collect();
            if new.is_empty() {
                break;
            }
            let mut seized = Vec::with_capacity(new.len());
            for tid in new {
                match sys::seize(tid).and_then(|()| sys::interrupt(tid)) {
                    Ok(()) => seized.push(tid),
                    Err(libc::ESRCH) => gone.push(tid),
                    // A thread exiting right now cannot be attached (EPERM):
                    // it will run no more code.
                    Err(libc::EPERM) if tid != pid && sys::exiting(pid, tid) => gone.push(tid),
                    Err(errno) => {
                        // Release what is seized and not yet waited for:
                        // wait for each one's stop, then detach it.
                        stopped.adopt(&seized, deadline, &mut gone)?;
                        return Err(PtraceError::Attach { pid, tid, errno });
                    }
                }
            }
            stopped.adopt(&seized, deadline, &mut gone)?;
        }
        if stopped.threads.is_empty() {
            return Err(PtraceError::NoSuchProcess { pid });
        }
        stopped.threads.sort_by_key(|t| t.tid);
        Ok(stopped)
    }

    /// Waits for each seized thread to stop and records it.
    fn adopt(
        &mut self,
        seized: &[i32],
        deadline: Instant,
        gone: &mut Vec<i32>,
    ) -> Result<(), PtraceError> {
        for (i, &tid) in seized.iter().enumerate() {
            match sys::wait(tid, deadline) {
                Ok(Some(Stop::Gone)) => gone.push(tid),
                Ok(Some(stop)) => {
                    let pending = match stop {
                        Stop::Signal(s) => s,
                        _ => 0,
                    };
                    let regs = match sys::get_regs(tid) {
                        Ok(r) => r,
                        Err(libc::ESRCH) => {
                            gone.push(tid);
                            continue;
                        }
                        Err(errno) => return Err(PtraceError::Regs { tid, errno }),
                    };
                    self.threads.push(Thread { tid, regs, pending });
                }
                Ok(None) => {
                    self.late.extend(seized.get(i..).unwrap_or(&[]));
                    return Err(PtraceError::Timeout {
                        pid: self.pid,
                        tid,
                        waited: self.since.elapsed(),
                    });
                }
                Err(errno) => return Err(PtraceError::Wait { tid, errno }),
            }
        }
        Ok(())
    }

    /// The first thread whose PC lies in `[addr, addr+len)` of one of
    /// `ranges`, with that PC and the range's start.
    pub(crate) fn pc_inside(&self, ranges: &[(u64, usize)]) -> Option<(i32, u64, u64)> {
        self.threads.iter().find_map(|t| {
            let pc = t.regs.rip;
            ranges
                .iter()
                .find(|&&(addr, len)| pc >= addr && pc < addr.saturating_add(len as u64))
                .map(|&(addr, _)| (t.tid, pc, addr))
        })
    }

    /// The process.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// How long the threads have been stopped.
    pub(crate) fn elapsed(&self) -> Duration {
        self.since.elapsed()
    }
}

impl Drop for Stopped {
    /// Detaches every thread, handing back the signal it was stopped for.
    /// Registers are not touched here: an injection restores them before it
    /// returns, so an interrupted system call (`-ERESTARTSYS` and its
    /// family in `rax`, the call number in `orig_rax`) is restarted by the
    /// kernel exactly as if the thread had never stopped.
    fn drop(&mut self) {
        for t in &self.threads {
            let _ = sys::detach(t.tid, t.pending);
        }
        // A thread that was too slow still has the interrupt pending: give
        // it a grace second to stop, then release it the same way. One that
        // never stops stays attached until this process exits (the kernel
        // then detaches it).
        let grace = exe::deadline(Instant::now(), Duration::from_secs(1));
        for &tid in &self.late {
            if let Ok(Some(stop)) = sys::wait(tid, grace) {
                let sig = match stop {
                    Stop::Signal(s) => s,
                    Stop::Event | Stop::Gone => 0,
                };
                let _ = sys::detach(tid, sig);
            }
        }
    }
}
