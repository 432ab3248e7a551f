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

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use core::ops::Range;

use xsplice_abi::arch::ArchTable;
use xsplice_abi::sections::HookPoint;
use xsplice_abi::{Incompat, RecordIndex};

use crate::arch_tables::{self, ArchTables, CpuFeatures};
use crate::ledger::{self, Entry, Identity, Ledger, LedgerError, Original, Placed};
use crate::patch::{self, PatchError};
use crate::payload::{Hook, LoadedPayload, Region};
use crate::{
    load, Addr, Allocator, Arch, LoadError, LoadOptions, RegionKind, Symbol, SymbolSource,
    TargetError,
};

/// Writes code bytes; what a [`Target`] hands the critical section.
///
/// A target may refuse writes outside the [`Site`]s it was given for the
/// action: the stop-the-world guarantees are about exactly those bytes.
pub trait CodeWriter {
    /// Writes `bytes` at `addr` (text of the target or of a payload).
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError>;
    /// Makes the instruction fetch of `[addr, addr+len)` see the new bytes.
    fn flush_icache(&mut self, addr: Addr, len: usize);
}

/// One write of an action, as the engine announces it to
/// [`Target::quiesce`] before the critical section: where other threads or
/// CPUs must not be stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The record the write belongs to.
    pub record: RecordIndex,
    /// The bytes the write changes, `[site, site + len)`.
    pub bytes: Range<u64>,
    /// The code the write takes out of service: the old function
    /// `[old_addr, old_addr + old_size)` on apply, the replacement
    /// `[new_addr, new_addr + new_size)` on revert (empty for a NOP record,
    /// whose revert retires no function). A target that offers a stricter
    /// policy refuses while a thread is anywhere in it.
    pub retired: Range<u64>,
}

/// What a hook call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookOutcome {
    /// The hook ran and returned this value (0 = success).
    Returned(i32),
    /// The target cannot run code (an offline image): the hook was skipped.
    Skipped,
}

/// What the hypervisor provides. Each method's contract is part of the
/// safety of live patching; implementations document how they meet it.
pub trait Target: SymbolSource + Allocator + CodeWriter {
    /// The machine of the target: payloads for another are refused.
    fn arch(&self) -> Arch;
    /// Whether the target runs at an address unknown when patching (an
    /// offline PIE image): payloads must then be position-independent.
    fn position_independent(&self) -> bool {
        false
    }
    /// Copies a region's relocated bytes to its address and gives it its
    /// final permissions: text read+execute, read-only read, data read+write.
    fn map(&mut self, region: &Region) -> Result<(), TargetError>;
    /// Releases a region mapped earlier (by this run, or by an earlier run
    /// and [`adopt`](Target::adopt)ed: then `region.bytes` is empty and the
    /// target identifies the region by `region.addr`). An offline image
    /// puts back what the region held before.
    fn unmap(&mut self, region: &Region) -> Result<(), TargetError>;
    /// Takes note of a region an earlier run mapped, found in the ledger:
    /// the target must not allocate over it, and may [`unmap`](Target::unmap)
    /// it later. The default does nothing (a target whose memory manager
    /// already knows its mappings).
    fn adopt(&mut self, region: &Placed) -> Result<(), TargetError> {
        let _ = region;
        Ok(())
    }
    /// What the region mapped at `addr` held before [`map`](Target::map)
    /// wrote it, for the ledger. The default keeps nothing
    /// ([`Original::NotKept`]): a live target frees the memory on unmap,
    /// so it need not read it first; an offline image keeps the bytes it
    /// puts back on unmap.
    fn original(&self, addr: Addr) -> Original {
        let _ = addr;
        Original::NotKept
    }
    /// The ledger bytes the target keeps, if any (see [`Engine::open`]).
    /// The default keeps none: the engine's memory is the ledger.
    fn ledger_read(&self) -> Result<Option<Vec<u8>>, TargetError> {
        Ok(None)
    }
    /// Stores the ledger bytes (an empty stack is an empty ledger). Called
    /// after every apply and revert; a failure undoes that action.
    fn ledger_write(&mut self, bytes: &[u8]) -> Result<(), TargetError> {
        let _ = bytes;
        Ok(())
    }
    /// Reads the bytes at `addr` (code of the target or of a payload).
    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError>;
    /// Runs `critical` with every other CPU (or thread) stopped, in Xen a
    /// rendezvous of all CPUs with a timeout. `critical` only calls the
    /// [`CodeWriter`] it is given, at the byte ranges of `sites`, and
    /// neither allocates nor takes locks.
    ///
    /// What an implementation guarantees when it calls `critical`:
    /// - no other CPU or thread executes until `critical` has returned and
    ///   the written bytes are visible to instruction fetch everywhere;
    /// - no stopped CPU or thread is stopped *inside* an instruction being
    ///   rewritten, i.e. with its program counter in the interior of any
    ///   `sites[i].bytes` (it would resume in the middle of the new bytes).
    ///
    /// When it cannot (a CPU does not arrive in time, a thread stays inside
    /// a site), it returns an error without calling `critical`, so nothing
    /// is written. `sites` lists every write of the action (all records;
    /// on rollback the same ranges are written back).
    fn quiesce(
        &mut self,
        sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError>;
    /// The build-id of the running image.
    fn build_id(&self) -> Option<&[u8]>;
    /// Calls the hook `int fn(void)` at `hook.addr`.
    fn run_hook(&mut self, hook: &Hook) -> Result<HookOutcome, TargetError>;
    /// The CPU features of the machine the patched code runs on: the
    /// engine applies a payload's alternatives for them at load, before its
    /// text is mapped. The default reports none, so the original code stays.
    fn cpu_features(&self) -> CpuFeatures {
        CpuFeatures::NONE
    }
    /// Whether the target honours `table` of a payload (exception tables
    /// and bug frames: registers them with its fault and trap handlers). A
    /// payload carrying a table its target does not honour is refused at
    /// load, naming the section. The default honours neither; alternatives
    /// are applied by the engine and always honoured.
    fn honours(&self, table: ArchTable) -> bool {
        table == ArchTable::AltInstructions
    }
    /// Registers a payload's exception-table and bug-frame entries (called
    /// by [`Engine::apply`] before the patch sites are written, only for a
    /// payload that has entries). The engine calls
    /// [`unregister_tables`](Target::unregister_tables) exactly once for
    /// every successful call: when the apply fails later, or at revert
    /// after the original bytes are back.
    fn register_tables(&mut self, id: PayloadId, tables: &ArchTables) -> Result<(), TargetError> {
        let _ = (id, tables);
        Err(TargetError::Unsupported(
            "this target has no exception-table or bug-frame registry",
        ))
    }
    /// Removes what [`register_tables`](Target::register_tables) registered
    /// for `id`.
    fn unregister_tables(&mut self, id: PayloadId) -> Result<(), TargetError> {
        let _ = id;
        Ok(())
    }
}

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

/// Why an engine action failed. After any error the target's code is as it
/// was before the action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The payload did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// No payload has this id.
    #[error("{0} does not exist")]
    NoSuchPayload(PayloadId),
    /// The action is not allowed in the payload's state.
    #[error("{id} is {state:?}: cannot {action}")]
    WrongState {
        /// Payload.
        id: PayloadId,
        /// Its state.
        state: State,
        /// The refused action.
        action: &'static str,
    },
    /// Only the most recently applied payload can be reverted.
    #[error("{id} is not the top of the applied stack ({top} is)")]
    NotTop {
        /// Payload.
        id: PayloadId,
        /// The top.
        top: PayloadId,
    },
    /// The patch bytes for a record cannot be made.
    #[error("{record} `{name}`: {problem}")]
    Patch {
        /// Record.
        record: RecordIndex,
        /// Function name.
        name: String,
        /// What is wrong.
        problem: PatchError,
    },
    /// The bytes at the site differ from the record's EXPECT bytes.
    #[error("{record} `{name}`: bytes at {site} are {found:02x?}, expected {expected:02x?}")]
    ExpectMismatch {
        /// Record.
        record: RecordIndex,
        /// Function name.
        name: String,
        /// Site.
        site: Addr,
        /// Expected bytes.
        expected: Vec<u8>,
        /// Bytes found.
        found: Vec<u8>,
    },
    /// Two records, or this record and an applied payload, patch
    /// overlapping bytes.
    #[error("{record} `{name}`: site {site} overlaps a patch of {other} ({other_record})")]
    SiteConflict {
        /// Record.
        record: RecordIndex,
        /// Function name.
        name: String,
        /// Site.
        site: Addr,
        /// The payload already patching there (possibly this one).
        other: PayloadId,
        /// Its record.
        other_record: RecordIndex,
    },
    /// The payload depends on a build-id that is not below it.
    #[error("depends on build-id {}, but {what} has {}", hex(.wanted), .found.as_deref().map_or_else(|| String::from("none"), hex))]
    Dependency {
        /// The build-id the payload was built against.
        wanted: Vec<u8>,
        /// What is below it: the image or a payload.
        what: &'static str,
        /// That one's build-id.
        found: Option<Vec<u8>>,
    },
    /// A hook returned non-zero; the payload stays in its previous state.
    #[error("{point:?} hook {index} at {addr} returned {ret}")]
    HookFailed {
        /// Hook point.
        point: HookPoint,
        /// Index in its section.
        index: usize,
        /// Address.
        addr: Addr,
        /// Return value.
        ret: i32,
    },
    /// The target failed.
    #[error("target: {0}")]
    Target(#[from] TargetError),
    /// The same payload (by build-id, else by SHA-256) is already applied.
    #[error("{id} is already applied as `{applied}` ({identity})")]
    AlreadyApplied {
        /// The payload refused.
        id: PayloadId,
        /// The name of the applied copy.
        applied: String,
        /// The identity they share.
        identity: Identity,
    },
    /// The ledger the target keeps cannot be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The target's bytes at a site differ from what its ledger says was
    /// written there: something else changed the target.
    #[error("ledger entry `{name}`: site {site} of `{function}` holds {found:02x?}, the ledger wrote {written:02x?}")]
    LedgerMismatch {
        /// The ledger entry.
        name: String,
        /// Its function.
        function: String,
        /// The site.
        site: Addr,
        /// Bytes the ledger says were written.
        written: Vec<u8>,
        /// Bytes found.
        found: Vec<u8>,
    },
    /// The payload was restored from the ledger: its loaded form is not in
    /// this run (only [`Engine::entry`] describes it).
    #[error("{0} was applied by an earlier run: its payload is not loaded here")]
    Restored(PayloadId),
}

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One precomputed write: new bytes for the site, and the bytes they replace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Write {
    record: RecordIndex,
    name: String,
    addr: Addr,
    new: Vec<u8>,
    old: Vec<u8>,
    /// The old function and the replacement (see [`Site::retired`]).
    old_fn: Range<u64>,
    new_fn: Range<u64>,
}

impl Write {
    /// A write from a ledger site. The ledger keeps the bytes, not the
    /// functions' extents: the strict site policy of a live target sees
    /// only the site's own bytes for a payload restored from a ledger.
    fn restored(s: &ledger::Site, old: Vec<u8>) -> Self {
        Write {
            record: s.record,
            name: s.name.clone(),
            addr: s.addr,
            new: s.new.clone(),
            old,
            old_fn: s.addr.0..s.addr.0,
            new_fn: s.addr.0..s.addr.0,
        }
    }

    fn site(&self) -> ledger::Site {
        ledger::Site {
            record: self.record,
            name: self.name.clone(),
            addr: self.addr,
            old: self.old.clone(),
            new: self.new.clone(),
        }
    }

    fn end(&self) -> u64 {
        self.addr.0.saturating_add(self.new.len() as u64)
    }

    fn overlaps(&self, other: &Write) -> bool {
        self.addr.0 < other.end() && other.addr.0 < self.end()
    }
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
    applied: Vec<Write>,
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
            sites: s.applied.iter().map(Write::site).collect(),
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
                .map(|s| Write::restored(s, s.old.clone()))
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
        let bytes = self.ledger()?.encode()?;
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

    /// Computes every write of payload `id` as it would apply now, checking
    /// ranges, EXPECT bytes, conflicts and the build-id dependency.
    fn prepare(&self, id: PayloadId) -> Result<Vec<Write>, EngineError> {
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
                writes.push(Write::restored(s, old));
            }
            self.check_overlaps(id, &writes)?;
            return Ok(writes);
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
        let mut writes: Vec<Write> = Vec::with_capacity(p.records.len());
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
            let w = Write {
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
        Ok(writes)
    }

    /// Refuses writes that overlap each other, or overlap a write of a
    /// payload below on the stack other than at the very same site (there
    /// the newer jump wins and revert restores the older one). Sorting keeps
    /// this O(n log n) in the number of records, whatever the input.
    fn check_overlaps(&self, id: PayloadId, writes: &[Write]) -> Result<(), EngineError> {
        let conflict =
            |w: &Write, other: PayloadId, other_record: RecordIndex| EngineError::SiteConflict {
                record: w.record,
                name: w.name.clone(),
                site: w.addr,
                other,
                other_record,
            };
        // Within the payload: sorted by address, a write overlaps an
        // earlier one exactly when it starts before the furthest end so far.
        let mut order: Vec<&Write> = writes.iter().collect();
        order.sort_by_key(|w| (w.addr.0, w.record));
        let mut furthest: Option<&Write> = None;
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
        let mut below: Vec<(&Write, PayloadId)> = Vec::new();
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

    /// Checks that payload `id` would apply now, without writing anything.
    pub fn check(&mut self, id: PayloadId) -> Result<(), EngineError> {
        let state = self.state(id)?;
        if state == State::Applied {
            return Err(EngineError::WrongState {
                id,
                state,
                action: "check",
            });
        }
        self.prepare(id)?;
        self.slot_mut(id)?.state = State::Checked;
        Ok(())
    }

    /// Writes `writes` (their `new` bytes, or with `undo` their `old` bytes
    /// in reverse order) inside one stop-the-world section. A failed write
    /// rolls back the earlier ones before the section ends.
    fn commit(&mut self, writes: &[Write], undo: bool) -> Result<(), EngineError> {
        fn bytes(w: &Write, undo: bool) -> &[u8] {
            if undo {
                &w.old
            } else {
                &w.new
            }
        }
        let mut critical = |cw: &mut dyn CodeWriter| -> Result<(), TargetError> {
            let order = |i: usize| if undo { writes.len() - 1 - i } else { i };
            for i in 0..writes.len() {
                let Some(w) = writes.get(order(i)) else {
                    continue;
                };
                if let Err(e) = cw.write_code(w.addr, bytes(w, undo)) {
                    for j in (0..i).rev() {
                        if let Some(done) = writes.get(order(j)) {
                            let _ = cw.write_code(done.addr, bytes(done, !undo));
                            cw.flush_icache(done.addr, done.new.len());
                        }
                    }
                    return Err(e);
                }
                cw.flush_icache(w.addr, w.new.len());
            }
            Ok(())
        };
        let sites: Vec<Site> = writes
            .iter()
            .map(|w| Site {
                record: w.record,
                bytes: w.addr.0..w.end(),
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
        let writes = self.prepare(id)?;
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
