//! What the engine needs from the patched system: the [`Target`] trait and
//! the types its methods exchange. The contract of each method is part of
//! the safety of live patching; implementations document how they meet it.

use alloc::vec::Vec;
use core::ops::Range;

use xsplice_abi::arch::ArchTable;
use xsplice_abi::RecordIndex;

use super::PayloadId;

use crate::arch_tables::{ArchTables, CpuFeatures};
use crate::ledger::{Original, Placed};
use crate::payload::{Hook, Region};
use crate::{Addr, Allocator, Arch, SymbolSource, TargetError};

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
    /// The ledger bytes the target keeps, if any (see [`Engine::open`](super::Engine::open)).
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
    /// by [`Engine::apply`](super::Engine::apply) before the patch sites are written, only for a
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
