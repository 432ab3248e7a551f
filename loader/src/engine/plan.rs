//! The patch plan: every byte an apply would write, computed and checked
//! before the stop-the-world step, which then only copies it.

use alloc::vec::Vec;
use core::ops::Range;

use xsplice_abi::{Incompat, RecordIndex};

use super::{Engine, EngineError, PayloadId, Target};
use crate::ledger;
use crate::patch;

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

/// One precomputed write: the site, as the ledger keeps it (record, name,
/// address, the bytes there now and the bytes written), and the extents of
/// the functions the write takes out of service or puts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    pub(super) site: ledger::Site,
    /// The old function and the replacement (see [`Site::retired`](super::Site::retired)).
    pub(super) old_fn: Range<u64>,
    pub(super) new_fn: Range<u64>,
}

impl PlannedWrite {
    /// The site: `record`, `name`, `addr`, `old` (the bytes there now,
    /// what revert puts back) and `new` (the bytes written: a branch, or
    /// NOPs).
    pub fn site(&self) -> &ledger::Site {
        &self.site
    }

    /// A write from a ledger site. The ledger keeps the bytes, not the
    /// functions' extents: the strict site policy of a live target sees
    /// only the site's own bytes for a payload restored from a ledger.
    pub(super) fn restored(s: &ledger::Site, old: Vec<u8>) -> Self {
        PlannedWrite {
            site: ledger::Site {
                record: s.record,
                name: s.name.clone(),
                addr: s.addr,
                old,
                new: s.new.clone(),
            },
            old_fn: s.addr.0..s.addr.0,
            new_fn: s.addr.0..s.addr.0,
        }
    }

    pub(super) fn end(&self) -> u64 {
        self.site.addr.0.saturating_add(self.site.new.len() as u64)
    }

    pub(super) fn overlaps(&self, other: &PlannedWrite) -> bool {
        self.site.addr.0 < other.end() && other.site.addr.0 < self.end()
    }
}

/// What the ledger encoder reads of a write.
impl AsRef<ledger::Site> for PlannedWrite {
    fn as_ref(&self) -> &ledger::Site {
        &self.site
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
                site: ledger::Site {
                    record: r.index,
                    name: r.name.clone(),
                    addr: r.site,
                    old,
                    new,
                },
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
                record: w.site.record,
                name: w.site.name.clone(),
                site: w.site.addr,
                other,
                other_record,
            }
        };
        // Within the payload: sorted by address, a write overlaps an
        // earlier one exactly when it starts before the furthest end so far.
        let mut order: Vec<&PlannedWrite> = writes.iter().collect();
        order.sort_by_key(|w| (w.site.addr.0, w.site.record));
        let mut furthest: Option<&PlannedWrite> = None;
        for w in order {
            if let Some(f) = furthest.filter(|f| w.site.addr.0 < f.end()) {
                let (first, second) = if f.site.record < w.site.record {
                    (f, w)
                } else {
                    (w, f)
                };
                return Err(conflict(second, id, first.site.record));
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
        below.sort_by_key(|(w, _)| w.site.addr.0);
        let longest = below
            .iter()
            .map(|(w, _)| w.site.new.len() as u64)
            .max()
            .unwrap_or(0);
        for w in writes {
            let upto = below.partition_point(|(o, _)| o.site.addr.0 < w.end());
            let window = below.get(..upto).unwrap_or(&[]);
            let clash = window
                .iter()
                .rev()
                .take_while(|(o, _)| o.site.addr.0.saturating_add(longest) > w.site.addr.0)
                .find(|(o, _)| {
                    o.overlaps(w)
                        && (o.site.addr != w.site.addr || o.site.new.len() != w.site.new.len())
                });
            if let Some((o, other)) = clash {
                return Err(conflict(w, *other, o.site.record));
            }
        }
        Ok(())
    }
}
