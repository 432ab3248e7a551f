//! The patch engine: apply / revert / replace loaded payloads on a
//! [`Target`], transactionally.
//!
//! States: `Loaded → Checked → Applied ⇄ Reverted`, and `unload` from any
//! state but `Applied`. Applied payloads form a stack: only the top can be
//! reverted, and `replace` reverts the whole stack then applies one payload.
//!
//! Everything is prepared *before* the stop-the-world step: for each record
//! the exact bytes to write (branch or NOPs, range-checked), the original
//! bytes (saved for revert), the EXPECT comparison, site conflicts with
//! other applied payloads, and the build-id dependency. Inside
//! [`Target::quiesce`] the engine only writes those precomputed bytes and
//! flushes the instruction cache: no allocation, no parsing. A write that
//! fails midway is undone before the critical section ends, so apply is
//! all-or-nothing, and revert restores the saved bytes exactly.
//!
//! What is applied is kept as a [`Ledger`]: [`Engine::ledger`] gives it,
//! and after every apply or revert the engine hands its bytes to
//! [`Target::ledger_write`]. [`Engine::open`] reads it back through
//! [`Target::ledger_read`] and restores the stack, so a patcher that runs
//! once per command (an offline image, another process) stacks, refuses a
//! payload already applied, checks dependencies and reverts exactly as a
//! long-lived one.

mod error;
mod plan;
mod target;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use xsplice_abi::arch::ArchTable;
use xsplice_abi::sections::HookPoint;

pub use error::EngineError;
pub use plan::{PatchPlan, PlannedWrite};
pub use target::{CodeWriter, HookOutcome, Site, Target};

use crate::arch_tables::{self, ArchTables};
use crate::ledger::{self, Entry, Identity, Ledger, Placed};
use crate::payload::{Hook, LoadedPayload, Region};
use crate::{
    load, Addr, Allocator, LoadError, LoadOptions, RegionKind, Symbol, SymbolSource, TargetError,
};

/// A handle on a payload held by an [`Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PayloadId(pub u32);

impl fmt::Display for PayloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload #{}", self.0)
    }
}

/// A payload's life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Loaded and mapped, nothing written to the target's code.
    Loaded,
    /// Checked: it would apply now.
    Checked,
    /// Its patches are live.
    Applied,
    /// Reverted: its patches were undone; it may be applied again.
    Reverted,
}

struct Slot {
    id: PayloadId,
    /// What the ledger keeps of the payload. Its `sites` are empty for a
    /// payload loaded in this run (they are `applied`) and those of the
    /// ledger for a restored one.
    entry: Entry,
    /// The loaded payload; `None` when restored from the ledger.
    payload: Option<LoadedPayload>,
    state: State,
    /// The writes made by the last apply (with the bytes they replaced).
    applied: Vec<PlannedWrite>,
}

impl Slot {
    fn payload(&self) -> Result<&LoadedPayload, EngineError> {
        self.payload.as_ref().ok_or(EngineError::Restored(self.id))
    }

    /// The regions as the target knows them (empty bytes when restored).
    fn regions(&self) -> Vec<Region> {
        self.entry
            .regions
            .iter()
            .map(|p| Region {
                kind: p.kind,
                addr: p.addr,
                align: 1,
                bytes: Vec::new(),
            })
            .collect()
    }
}

/// Applies, reverts and replaces payloads on a target.
pub struct Engine<T: Target> {
    target: T,
    opts: LoadOptions,
    slots: Vec<Slot>,
    stack: Vec<PayloadId>,
    next: u32,
}

/// The target plus the exports of loaded payloads, as one symbol source and
/// allocator for [`load`].
struct Env<'a, T> {
    target: RefCell<&'a mut T>,
    /// Exports of the payloads held, by name (a later payload's wins): one
    /// index per load, so resolving against many payloads is not quadratic.
    exports: BTreeMap<&'a str, Symbol>,
}

struct EnvSymbols<'e, 'a, T>(&'e Env<'a, T>);
struct EnvAlloc<'e, 'a, T>(&'e Env<'a, T>);

impl<T: Target> SymbolSource for EnvSymbols<'_, '_, T> {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.0
            .target
            .borrow()
            .lookup(name)
            .or_else(|| self.0.exports.get(name).copied())
    }

    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        self.0.target.borrow().lookup_local(name, pos)
    }

    fn lookup_import(&self, name: &str) -> Option<Symbol> {
        self.0.target.borrow().lookup_import(name)
    }
}

impl<T: Target> Allocator for EnvAlloc<'_, '_, T> {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        self.0.target.borrow_mut().allocate(kind, size, align)
    }
}

impl<T: Target> Engine<T> {
    /// An engine over `target`, loading payloads with `opts`; payloads for
    /// another machine than the target's are refused.
    pub fn new(target: T, opts: LoadOptions) -> Self {
        let opts = LoadOptions {
            arch: Some(target.arch()),
            position_independent: target.position_independent(),
            unhonoured_tables: ArchTable::ALL
                .into_iter()
                .filter(|t| !target.honours(*t))
                .collect(),
            ..opts
        };
        Engine {
            target,
            opts,
            slots: Vec::new(),
            stack: Vec::new(),
            next: 0,
        }
    }

    /// The target.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// The target, mutably (for target-specific actions between steps).
    pub fn target_mut(&mut self) -> &mut T {
        &mut self.target
    }

    /// Gives the target back.
    pub fn into_target(self) -> T {
        self.target
    }

    fn slot(&self, id: PayloadId) -> Result<&Slot, EngineError> {
        self.slots
            .iter()
            .find(|s| s.id == id)
            .ok_or(EngineError::NoSuchPayload(id))
    }

    fn slot_mut(&mut self, id: PayloadId) -> Result<&mut Slot, EngineError> {
        self.slots
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(EngineError::NoSuchPayload(id))
    }

    /// A loaded payload (not one restored from the ledger: see
    /// [`Engine::entry`]).
    pub fn payload(&self, id: PayloadId) -> Result<&LoadedPayload, EngineError> {
        self.slot(id)?.payload()
    }

    /// What the ledger keeps of a payload, loaded or restored; its `sites`
    /// are the writes of its current apply (empty when not applied).
    pub fn entry(&self, id: PayloadId) -> Result<Entry, EngineError> {
        let s = self.slot(id)?;
        Ok(Entry {
            sites: s.applied.iter().map(|w| w.site.clone()).collect(),
            ..s.entry.clone()
        })
    }

    /// The applied stack as a ledger, bottom first.
    pub fn ledger(&self) -> Result<Ledger, EngineError> {
        let entries = self
            .stack
            .iter()
            .map(|id| self.entry(*id))
            .collect::<Result<_, _>>()?;
        Ok(Ledger { entries })
    }

    /// The payloads loaded by this engine or restored from the ledger, in
    /// load order.
    pub fn ids(&self) -> impl Iterator<Item = PayloadId> + '_ {
        self.slots.iter().map(|s| s.id)
    }

    /// An engine over `target` that continues where earlier runs stopped:
    /// it reads the target's ledger ([`Target::ledger_read`]) and restores
    /// the applied stack from it — regions adopted, sites checked to still
    /// hold the bytes the ledger wrote. Restored payloads can be reverted
    /// (their hooks run from the ledger) and are below any new one, so
    /// dependencies, the one-copy rule and `replace` see them.
    pub fn open(target: T, opts: LoadOptions) -> Result<Self, EngineError> {
        let mut engine = Engine::new(target, opts);
        let Some(bytes) = engine.target.ledger_read()? else {
            return Ok(engine);
        };
        let ledger = Ledger::decode(&bytes)?;
        engine.restore_ledger(ledger)?;
        Ok(engine)
    }

    fn restore_ledger(&mut self, ledger: Ledger) -> Result<(), EngineError> {
        // The bytes at a site must be what the topmost entry wrote there.
        let mut seen = alloc::collections::BTreeSet::new();
        for e in ledger.entries.iter().rev() {
            for s in &e.sites {
                if !seen.insert(s.addr.0) {
                    continue;
                }
                let mut found = alloc::vec![0u8; s.new.len()];
                self.target.read(s.addr, &mut found)?;
                if found != s.new {
                    return Err(EngineError::LedgerMismatch {
                        name: e.name.clone(),
                        function: s.name.clone(),
                        site: s.addr,
                        written: s.new.clone(),
                        found,
                    });
                }
            }
        }
        for entry in ledger.entries {
            for p in &entry.regions {
                self.target.adopt(p)?;
            }
            // The sites stay in the entry too: `replace` may revert a
            // restored payload and, if it fails, apply them again.
            let applied = entry
                .sites
                .iter()
                .map(|s| PlannedWrite::restored(s, s.old.clone()))
                .collect();
            let id = PayloadId(self.next);
            self.next = self.next.saturating_add(1);
            self.slots.push(Slot {
                id,
                entry,
                payload: None,
                state: State::Applied,
                applied,
            });
            self.stack.push(id);
        }
        Ok(())
    }

    /// Hands the ledger of the current stack to the target.
    fn persist(&mut self) -> Result<(), EngineError> {
        // Encoded from the slots as they are: no copy of every site.
        let slots = self
            .stack
            .iter()
            .map(|id| self.slot(*id))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = Ledger::encode_entries(slots.iter().map(|s| (&s.entry, s.applied.as_slice())))?;
        self.target.ledger_write(&bytes)?;
        Ok(())
    }

    /// A payload's state.
    pub fn state(&self, id: PayloadId) -> Result<State, EngineError> {
        Ok(self.slot(id)?.state)
    }

    /// A payload's name, as given to [`Engine::load`].
    pub fn name(&self, id: PayloadId) -> Result<&str, EngineError> {
        Ok(&self.slot(id)?.entry.name)
    }

    /// The applied payloads, bottom first.
    pub fn applied(&self) -> &[PayloadId] {
        &self.stack
    }

    /// Loads a payload: validates, lays out through the target, resolves
    /// against the target then against loaded payloads, relocates, refuses
    /// architecture-specific tables the target does not honour, applies the
    /// alternatives for the target's CPU features, maps the regions and runs
    /// its load hooks.
    pub fn load(&mut self, name: &str, bytes: &[u8]) -> Result<PayloadId, EngineError> {
        let mut payload = {
            let env = Env {
                target: RefCell::new(&mut self.target),
                exports: self
                    .slots
                    .iter()
                    .flat_map(|s| s.entry.exports.iter())
                    .map(|e| (e.name.as_str(), e.symbol))
                    .collect(),
            };
            let mut alloc = EnvAlloc(&env);
            load(bytes, &self.opts, &EnvSymbols(&env), &mut alloc)?
        };
        arch_tables::apply_alternatives(&mut payload, self.target.cpu_features()).map_err(
            |problem| LoadError::Arch {
                section: xsplice_abi::sections::ALTINSTRUCTIONS,
                problem,
            },
        )?;
        let identity = match &payload.build_id {
            Some(b) => Identity::build_id(b),
            None => Identity::sha256(ledger::sha256(bytes)),
        };
        let mut mapped: Vec<&Region> = Vec::new();
        for region in &payload.regions {
            if let Err(e) = self.target.map(region) {
                for r in mapped {
                    let _ = self.target.unmap(r);
                }
                return Err(e.into());
            }
            mapped.push(region);
        }
        if let Err(e) = self.run_hooks(&payload.hooks, &[HookPoint::Load]) {
            for r in &payload.regions {
                let _ = self.target.unmap(r);
            }
            return Err(e);
        }
        // What each region held before, as the target kept it when it
        // mapped the region (an offline image, so revert restores it).
        let placed = payload
            .regions
            .iter()
            .map(|r| Placed {
                kind: r.kind,
                addr: r.addr,
                size: r.bytes.len() as u64,
                original: self.target.original(r.addr),
            })
            .collect();
        let id = PayloadId(self.next);
        self.next = self.next.saturating_add(1);
        let entry = Entry {
            name: name.into(),
            identity,
            depends: payload.depends.clone(),
            record_version: payload.record_version,
            format: payload.format,
            regions: placed,
            sites: Vec::new(),
            exports: payload.exports.clone(),
            hooks: payload.hooks.clone(),
        };
        self.slots.push(Slot {
            id,
            entry,
            payload: Some(payload),
            state: State::Loaded,
            applied: Vec::new(),
        });
        Ok(id)
    }

    fn run_hooks(&mut self, hooks: &[Hook], points: &[HookPoint]) -> Result<(), EngineError> {
        for &point in points {
            for hook in hooks.iter().filter(|h| h.point == point) {
                if let HookOutcome::Returned(ret) = self.target.run_hook(hook)? {
                    if ret != 0 {
                        return Err(EngineError::HookFailed {
                            point,
                            index: hook.index,
                            addr: hook.addr,
                            ret,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that payload `id` would apply now, without writing anything,
    /// and returns what it would write.
    ///
    /// # Example
    ///
    /// ```
    /// # use xsplice_loader::engine::Engine;
    /// # use xsplice_loader::image::ImageTarget;
    /// # use xsplice_loader::LoadOptions;
    /// let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hypervisor");
    /// let image = ImageTarget::new(std::fs::read(format!("{root}/hv"))?)?;
    /// let mut engine = Engine::new(image, LoadOptions::default());
    /// let id = engine.load("fix", &std::fs::read(format!("{root}/fix.o"))?)?;
    /// let plan = engine.check(id)?;
    /// for w in plan.writes() {
    ///     // x86-64: a 5-byte `jmp rel32` over the function's first bytes.
    ///     assert_eq!(w.site().new[0], 0xe9);
    ///     assert_eq!(w.site().new.len(), w.site().old.len());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&mut self, id: PayloadId) -> Result<PatchPlan, EngineError> {
        let state = self.state(id)?;
        if state == State::Applied {
            return Err(EngineError::WrongState {
                id,
                state,
                action: "check",
            });
        }
        let plan = self.prepare(id)?;
        self.slot_mut(id)?.state = State::Checked;
        Ok(plan)
    }

    /// Writes `writes` (their `new` bytes, or with `undo` their `old` bytes
    /// in reverse order) inside one stop-the-world section. A failed write
    /// rolls back the earlier ones before the section ends.
    fn commit(&mut self, writes: &[PlannedWrite], undo: bool) -> Result<(), EngineError> {
        fn bytes(w: &PlannedWrite, undo: bool) -> &[u8] {
            if undo {
                &w.site.old
            } else {
                &w.site.new
            }
        }
        let mut critical = |cw: &mut dyn CodeWriter| -> Result<(), TargetError> {
            // The index of the `i`th write done, for `i < writes.len()`.
            let order = |i: usize| {
                if undo {
                    writes.len().checked_sub(i)?.checked_sub(1)
                } else {
                    Some(i)
                }
            };
            for i in 0..writes.len() {
                let Some(w) = order(i).and_then(|k| writes.get(k)) else {
                    continue;
                };
                if let Err(e) = cw.write_code(w.site.addr, bytes(w, undo)) {
                    for j in (0..i).rev() {
                        if let Some(done) = order(j).and_then(|k| writes.get(k)) {
                            let _ = cw.write_code(done.site.addr, bytes(done, !undo));
                            cw.flush_icache(done.site.addr, done.site.new.len());
                        }
                    }
                    return Err(e);
                }
                cw.flush_icache(w.site.addr, w.site.new.len());
            }
            Ok(())
        };
        let sites: Vec<Site> = writes
            .iter()
            .map(|w| Site {
                record: w.site.record,
                bytes: w.site.addr.0..w.end(),
                retired: if undo {
                    w.new_fn.clone()
                } else {
                    w.old_fn.clone()
                },
            })
            .collect();
        self.target.quiesce(&sites, &mut critical)?;
        Ok(())
    }

    /// Applies payload `id` on top of the stack. On any error — a check, a
    /// failed write, a hook returning non-zero — the target's code is left
    /// as it was and the payload keeps its state.
    pub fn apply(&mut self, id: PayloadId) -> Result<(), EngineError> {
        let state = self.state(id)?;
        if state == State::Applied {
            return Err(EngineError::WrongState {
                id,
                state,
                action: "apply",
            });
        }
        let writes = self.prepare(id)?.writes;
        let hooks = self.slot(id)?.entry.hooks.clone();
        self.run_hooks(&hooks, &[HookPoint::PreApply])?;
        // The tables are in place before any patch site can reach the code.
        let registered = self.register(id)?;
        if let Err(e) = self.commit(&writes, false) {
            self.unregister(id, registered);
            return Err(e);
        }
        if let Err(e) = self.run_hooks(&hooks, &[HookPoint::Apply, HookPoint::PostApply]) {
            self.commit(&writes, true)?;
            self.unregister(id, registered);
            return Err(e);
        }
        let slot = self.slot_mut(id)?;
        slot.state = State::Applied;
        slot.applied = writes;
        self.stack.push(id);
        if let Err(e) = self.persist() {
            // Not recorded, so not applied: undo.
            self.stack.pop();
            let slot = self.slot_mut(id)?;
            slot.state = state;
            let writes = core::mem::take(&mut slot.applied);
            self.commit(&writes, true)?;
            self.unregister(id, registered);
            return Err(e);
        }
        Ok(())
    }

    /// Hands payload `id`'s exception-table and bug-frame entries to the
    /// target, when it has any; whether it did.
    fn register(&mut self, id: PayloadId) -> Result<bool, EngineError> {
        // Fields, not `self.slot`: the target is borrowed mutably beside it.
        let slot = self
            .slots
            .iter()
            .find(|s| s.id == id)
            .ok_or(EngineError::NoSuchPayload(id))?;
        let Some(p) = slot
            .payload
            .as_ref()
            .filter(|p| p.arch_tables.needs_registration())
        else {
            return Ok(false);
        };
        self.target.register_tables(id, &p.arch_tables)?;
        Ok(true)
    }

    /// Undoes [`Engine::register`] when it registered; best effort, for
    /// the error paths (revert checks the result itself).
    fn unregister(&mut self, id: PayloadId, registered: bool) {
        if registered {
            let _ = self.target.unregister_tables(id);
        }
    }

    /// The architecture-specific tables of a payload (empty when it was
    /// restored from the ledger).
    pub fn arch_tables(&self, id: PayloadId) -> Result<&ArchTables, EngineError> {
        Ok(&self.payload(id)?.arch_tables)
    }

    /// Reverts payload `id`, which must be the top of the stack, restoring
    /// the saved bytes exactly.
    pub fn revert(&mut self, id: PayloadId) -> Result<(), EngineError> {
        let state = self.state(id)?;
        if state != State::Applied {
            return Err(EngineError::WrongState {
                id,
                state,
                action: "revert",
            });
        }
        if let Some(&top) = self.stack.last().filter(|t| **t != id) {
            return Err(EngineError::NotTop { id, top });
        }
        let (hooks, writes) = {
            let s = self.slot(id)?;
            (s.entry.hooks.clone(), s.applied.clone())
        };
        self.run_hooks(&hooks, &[HookPoint::PreRevert])?;
        self.commit(&writes, true)?;
        if let Err(e) = self.run_hooks(&hooks, &[HookPoint::Revert, HookPoint::PostRevert]) {
            self.commit(&writes, false)?;
            return Err(e);
        }
        // The sites no longer reach the payload: its tables go.
        let registered = self
            .slot(id)?
            .payload
            .as_ref()
            .is_some_and(|p| p.arch_tables.needs_registration());
        if registered {
            if let Err(e) = self.target.unregister_tables(id) {
                self.commit(&writes, false)?;
                return Err(e.into());
            }
        }
        self.stack.pop();
        let slot = self.slot_mut(id)?;
        slot.state = State::Reverted;
        let kept = core::mem::take(&mut slot.applied);
        if let Err(e) = self.persist() {
            // Not recorded, so not reverted: write the patches again.
            if registered {
                self.register(id)?;
            }
            self.commit(&kept, false)?;
            let slot = self.slot_mut(id)?;
            slot.state = State::Applied;
            slot.applied = kept;
            self.stack.push(id);
            return Err(e);
        }
        Ok(())
    }

    /// Reverts every applied payload (top first), then applies `id`. If the
    /// apply fails, the reverted payloads are applied again, bottom first.
    pub fn replace(&mut self, id: PayloadId) -> Result<(), EngineError> {
        let state = self.state(id)?;
        if state == State::Applied {
            return Err(EngineError::WrongState {
                id,
                state,
                action: "replace with",
            });
        }
        let previous = self.stack.clone();
        for &old in previous.iter().rev() {
            if let Err(e) = self.revert(old) {
                self.restore(&previous);
                return Err(e);
            }
        }
        if let Err(e) = self.apply(id) {
            self.restore(&previous);
            return Err(e);
        }
        Ok(())
    }

    /// Re-applies what `replace` reverted, best effort.
    fn restore(&mut self, previous: &[PayloadId]) {
        for &old in previous {
            if self.state(old) != Ok(State::Applied) {
                let _ = self.apply(old);
            }
        }
    }

    /// Unloads payload `id` (not while applied): runs its unload hooks and
    /// releases its regions.
    pub fn unload(&mut self, id: PayloadId) -> Result<(), EngineError> {
        let state = self.state(id)?;
        if state == State::Applied {
            return Err(EngineError::WrongState {
                id,
                state,
                action: "unload",
            });
        }
        let hooks = self.slot(id)?.entry.hooks.clone();
        self.run_hooks(&hooks, &[HookPoint::Unload])?;
        let pos = self
            .slots
            .iter()
            .position(|s| s.id == id)
            .ok_or(EngineError::NoSuchPayload(id))?;
        let slot = self.slots.remove(pos);
        for r in &slot.regions() {
            self.target.unmap(r)?;
        }
        Ok(())
    }
}
