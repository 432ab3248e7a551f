//! The patch plan: every byte an apply would write, computed and checked
//! before the stop-the-world step, which then only copies it.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use xsplice_abi::{Incompat, RecordIndex};

use super::{Engine, EngineError, PayloadId, Target};
use crate::ledger;
use crate::patch;
use crate::Addr;

/// What applying a payload would do now: each site with the bytes written
/// there and the bytes they replace, in record order. [`Engine::check`]
/// returns it; [`Engine::apply`] computes it again at the moment it applies
/// (the target may have changed in between) and writes exactly it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchPlan {
    payload: PayloadId,
    pub(super) writes: Vec<PlannedWrite>,
}

impl PatchPlan {
    /// The payload the plan applies.
    pub fn payload(&self) -> PayloadId {
        self.payload
    }

    /// The writes, in record order.
    pub fn writes(&self) -> &[PlannedWrite] {
        &self.writes
    }
}

/// One precomputed write: new bytes for the site, and the bytes they replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    pub(super) record: RecordIndex,
    pub(super) name: String,
    pub(super) addr: Addr,
    pub(super) new: Vec<u8>,
    pub(super) old: Vec<u8>,
    /// The old function and the replacement (see [`Site::retired`](super::Site::retired)).
    pub(super) old_fn: Range<u64>,
    pub(super) new_fn: Range<u64>,
}

impl PlannedWrite {
    /// A write from a ledger site. The ledger keeps the bytes, not the
    /// functions' extents: the strict site policy of a live target sees
    /// only the site's own bytes for a payload restored from a ledger.
    pub(super) fn restored(s: &ledger::Site, old: Vec<u8>) -> Self {
        PlannedWrite {
            record: s.record,
            name: s.name.clone(),
            addr: s.addr,
            new: s.new.clone(),
            old,
            old_fn: s.addr.0..s.addr.0,
            new_fn: s.addr.0..s.addr.0,
        }
    }

    pub(super) fn site(&self) -> ledger::Site {
        ledger::Site {
            record: self.record,
            name: self.name.clone(),
            addr: self.addr,
            old: self.old.clone(),
            new: self.new.clone(),
        }
    }

    pub(super) fn end(&self) -> u64 {
        self.addr.0.saturating_add(self.new.len() as u64)
    }

    pub(super) fn overlaps(&self, other: &PlannedWrite) -> bool {
        self.addr.0 < other.end() && other.addr.0 < self.end()
    }
}

impl ledger::SiteRef for PlannedWrite {
    fn record(&self) -> RecordIndex {
        self.record
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn addr(&self) -> Addr {
        self.addr
    }
    fn old_bytes(&self) -> &[u8] {
        &self.old
    }
    fn new_bytes(&self) -> &[u8] {
        &self.new
    }
}

impl PlannedWrite {
    /// The record this write comes from.
    pub fn record(&self) -> RecordIndex {
        self.record
    }

    /// The record's function name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The patch site.
    pub fn addr(&self) -> Addr {
        self.addr
    }

    /// The bytes written at the site (a branch, or NOPs).
    pub fn new_bytes(&self) -> &[u8] {
        &self.new
    }

    /// The bytes the write replaces (what revert puts back).
    pub fn old_bytes(&self) -> &[u8] {
        &self.old
    }
}

impl<T: Target> Engine<T> {
    /// Computes every write of payload `id` as it would apply now, checking
    /// ranges, EXPECT bytes, conflicts and the build-id dependency.
    pub(super) fn prepare(&self, id: PayloadId) -> Result<PatchPlan, EngineError> {
        let slot = self.slot(id)?;
        if let Some(other) = self
            .stack
            .iter()
            .filter_map(|b| self.slot(*b).ok())
            .find(|o| o.id != id && o.entry.identity == slot.entry.identity)
        {
            return Err(EngineError::AlreadyApplied {
                id,
                applied: other.entry.name.clone(),
                identity: other.entry.identity.clone(),
            });
        }
        let Some(p) = &slot.payload else {
            // Restored from the ledger and reverted by `replace`: apply the
            // same bytes again (what `restore` does when `replace` fails).
            let mut writes = Vec::with_capacity(slot.entry.sites.len());
            for s in &slot.entry.sites {
                let mut old = alloc::vec![0u8; s.new.len()];
                self.target.read(s.addr, &mut old)?;
                writes.push(PlannedWrite::restored(s, old));
            }
            self.check_overlaps(id, &writes)?;
            return Ok(PatchPlan {
                payload: id,
                writes,
            });
        };
        if let Some(wanted) = &p.depends {
            let (what, found) = match self.stack.last() {
                Some(below) => ("the payload below it", self.slot(*below)?.entry.build_id()),
                None => ("the running image", self.target.build_id()),
            };
            if found != Some(wanted.as_slice()) {
                return Err(EngineError::Dependency {
                    wanted: wanted.clone(),
                    what,
                    found: found.map(<[u8]>::to_vec),
                });
            }
        }
        let mut writes: Vec<PlannedWrite> = Vec::with_capacity(p.records.len());
        for r in &p.records {
            let patch_err = |problem| EngineError::Patch {
                record: r.index,
                name: r.name.clone(),
                problem,
            };
            let new = if r.func.incompat.contains(Incompat::NOP) {
                patch::nops(p.arch, r.func.new_size).map_err(patch_err)?
            } else {
                // The long AArch64 sequence only from the function's entry.
                let room = if r.site == r.old_addr {
                    r.func.old_size
                } else {
                    0
                };
                patch::jump_with_room(p.arch, r.site, r.func.new_addr, room).map_err(patch_err)?
            };
            let mut old = alloc::vec![0u8; new.len()];
            self.target.read(r.site, &mut old)?;
            let expect = r.func.expect.as_slice();
            if !expect.is_empty() {
                let mut found = alloc::vec![0u8; expect.len()];
                self.target.read(r.site, &mut found)?;
                if found != expect {
                    return Err(EngineError::ExpectMismatch {
                        record: r.index,
                        name: r.name.clone(),
                        site: r.site,
                        expected: expect.to_vec(),
                        found,
                    });
                }
            }
            let w = PlannedWrite {
                record: r.index,
                name: r.name.clone(),
                addr: r.site,
                new,
                old,
                old_fn: r.old_addr.0..r.old_addr.0.saturating_add(r.func.old_size),
                new_fn: if r.func.incompat.contains(Incompat::NOP) {
                    0..0
                } else {
                    r.func.new_addr.0..r.func.new_addr.0.saturating_add(r.func.new_size)
                },
            };
            writes.push(w);
        }
        self.check_overlaps(id, &writes)?;
        Ok(PatchPlan {
            payload: id,
            writes,
        })
    }

    /// Refuses writes that overlap each other, or overlap a write of a
    /// payload below on the stack other than at the very same site (there
    /// the newer jump wins and revert restores the older one). Sorting keeps
    /// this O(n log n) in the number of records, whatever the input.
    fn check_overlaps(&self, id: PayloadId, writes: &[PlannedWrite]) -> Result<(), EngineError> {
        let conflict = |w: &PlannedWrite, other: PayloadId, other_record: RecordIndex| {
            EngineError::SiteConflict {
                record: w.record,
                name: w.name.clone(),
                site: w.addr,
                other,
                other_record,
            }
        };
        // Within the payload: sorted by address, a write overlaps an
        // earlier one exactly when it starts before the furthest end so far.
        let mut order: Vec<&PlannedWrite> = writes.iter().collect();
        order.sort_by_key(|w| (w.addr.0, w.record));
        let mut furthest: Option<&PlannedWrite> = None;
        for w in order {
            if let Some(f) = furthest.filter(|f| w.addr.0 < f.end()) {
                let (first, second) = if f.record < w.record { (f, w) } else { (w, f) };
                return Err(conflict(second, id, first.record));
            }
            if furthest.is_none_or(|f| w.end() > f.end()) {
                furthest = Some(w);
            }
        }
        // Against the payloads below: a sorted list and a bounded window.
        let mut below: Vec<(&PlannedWrite, PayloadId)> = Vec::new();
        for b in self.stack.iter().filter(|b| **b != id) {
            below.extend(self.slot(*b)?.applied.iter().map(|w| (w, *b)));
        }
        below.sort_by_key(|(w, _)| w.addr.0);
        let longest = below
            .iter()
            .map(|(w, _)| w.new.len() as u64)
            .max()
            .unwrap_or(0);
        for w in writes {
            let upto = below.partition_point(|(o, _)| o.addr.0 < w.end());
            let window = below.get(..upto).unwrap_or(&[]);
            let clash = window
                .iter()
                .rev()
                .take_while(|(o, _)| o.addr.0.saturating_add(longest) > w.addr.0)
                .find(|(o, _)| o.overlaps(w) && (o.addr != w.addr || o.new.len() != w.new.len()));
            if let Some((o, other)) = clash {
                return Err(conflict(w, *other, o.record));
            }
        }
        Ok(())
    }
}
