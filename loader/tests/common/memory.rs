//! One in-memory [`Target`] for the engine's tests: memory in segments the
//! test reads and snapshots, symbols from a [`Table`], and knobs to inject
//! failures (a code write, the ledger write, a hook's return value) and to
//! choose the machine, CPU features and whether exception tables and bug
//! frames are honoured (registrations are recorded).

use std::collections::BTreeMap;

use xsplice_abi::arch::ArchTable;
use xsplice_abi::sections::HookPoint;
use xsplice_loader::arch_tables::ArchTables;
use xsplice_loader::engine::{CodeWriter, HookOutcome, PayloadId, Site, Target};
use xsplice_loader::{
    Addr, Allocator, Arch, CpuFeatures, Hook, Region, RegionKind, Symbol, SymbolSource, TargetError,
};

use super::Table;

/// The bytes at each symbol of the table: `push rbp; mov rbp, rsp; nop`.
pub const PROLOGUE: [u8; 5] = [0x55, 0x48, 0x89, 0xe5, 0x90];

/// Memory in segments; symbols from a [`Table`].
pub struct Memory {
    pub arch: Arch,
    pub table: Table,
    pub segments: BTreeMap<u64, Vec<u8>>,
    /// Where the next payload region goes (64 KiB steps).
    pub next_region: u64,
    pub build_id: Option<Vec<u8>>,
    pub cpu: CpuFeatures,
    /// Whether every architecture table is honoured (`false`: none is).
    pub honour: bool,
    /// Registered payloads: (exception-table entries, bug frames).
    pub registered: BTreeMap<PayloadId, (usize, usize)>,
    /// What each hook point returns (0 when not listed).
    pub hook_results: BTreeMap<HookPoint, i32>,
    pub hook_calls: Vec<HookPoint>,
    /// Fail the code write after this many succeeded (one-shot).
    pub fail_after_writes: Option<usize>,
    pub writes: usize,
    /// The ledger as a hypervisor would keep it across patcher runs.
    pub ledger: Option<Vec<u8>>,
    /// Make the next ledger write fail.
    pub fail_ledger: bool,
}

impl Memory {
    /// x86-64 memory holding [`PROLOGUE`] at every symbol of `table`, in
    /// 64 KiB segments filled with `int3`; payload regions from 0x50_0000.
    pub fn new(table: Table) -> Memory {
        let mut segments = BTreeMap::new();
        for s in table.globals.values().chain(table.locals.values()) {
            let base = s.addr.0 & !0xffff;
            let seg = segments.entry(base).or_insert_with(|| vec![0xcc; 0x1_0000]);
            let at = (s.addr.0 - base) as usize;
            seg[at..at + PROLOGUE.len()].copy_from_slice(&PROLOGUE);
        }
        Memory {
            arch: Arch::X86_64,
            table,
            segments,
            next_region: 0x50_0000,
            build_id: Some((1..=0x14).collect()),
            cpu: CpuFeatures::NONE,
            honour: false,
            registered: BTreeMap::new(),
            hook_results: BTreeMap::new(),
            hook_calls: Vec::new(),
            fail_after_writes: None,
            writes: 0,
            ledger: None,
            fail_ledger: false,
        }
    }

    fn find(&self, addr: u64, len: usize) -> Option<(u64, usize)> {
        let (base, seg) = self.segments.range(..=addr).next_back()?;
        let off = usize::try_from(addr - base).ok()?;
        (off + len <= seg.len()).then_some((*base, off))
    }

    /// `len` bytes at `addr` (panics outside memory: a test bug).
    pub fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.read(Addr(addr), &mut b).unwrap();
        b
    }

    /// A copy of all memory, to compare before and after a refused action.
    pub fn snapshot(&self) -> BTreeMap<u64, Vec<u8>> {
        self.segments.clone()
    }
}

impl SymbolSource for Memory {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.table.lookup(name)
    }
    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        self.table.lookup_local(name, pos)
    }
}

impl Allocator for Memory {
    fn allocate(&mut self, _kind: RegionKind, size: u64, _align: u64) -> Result<Addr, TargetError> {
        let addr = self.next_region;
        self.next_region += (size + 0xffff) & !0xffff;
        Ok(Addr(addr))
    }
}

impl CodeWriter for Memory {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        if self.fail_after_writes == Some(self.writes) {
            // One-shot: the rollback that follows must succeed.
            self.fail_after_writes = None;
            return Err(TargetError::Unsupported("injected write failure"));
        }
        self.writes += 1;
        let (base, off) = self
            .find(addr.0, bytes.len())
            .ok_or(TargetError::BadAddress(addr))?;
        let seg = self
            .segments
            .get_mut(&base)
            .ok_or(TargetError::BadAddress(addr))?;
        seg[off..off + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
    fn flush_icache(&mut self, _addr: Addr, _len: usize) {}
}

impl Target for Memory {
    fn arch(&self) -> Arch {
        self.arch
    }
    fn map(&mut self, region: &Region) -> Result<(), TargetError> {
        self.segments.insert(region.addr.0, region.bytes.clone());
        Ok(())
    }
    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        self.segments.remove(&region.addr.0);
        Ok(())
    }
    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        let (base, off) = self
            .find(addr.0, buf.len())
            .ok_or(TargetError::BadAddress(addr))?;
        buf.copy_from_slice(&self.segments[&base][off..off + buf.len()]);
        Ok(())
    }
    fn quiesce(
        &mut self,
        _sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        critical(self)
    }
    fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }
    fn ledger_read(&self) -> Result<Option<Vec<u8>>, TargetError> {
        Ok(self.ledger.clone())
    }
    fn ledger_write(&mut self, bytes: &[u8]) -> Result<(), TargetError> {
        if self.fail_ledger {
            return Err(TargetError::Unsupported("injected ledger failure"));
        }
        self.ledger = Some(bytes.to_vec());
        Ok(())
    }
    fn run_hook(&mut self, hook: &Hook) -> Result<HookOutcome, TargetError> {
        self.hook_calls.push(hook.point);
        Ok(HookOutcome::Returned(
            self.hook_results.get(&hook.point).copied().unwrap_or(0),
        ))
    }
    fn cpu_features(&self) -> CpuFeatures {
        self.cpu
    }
    fn honours(&self, _table: ArchTable) -> bool {
        self.honour
    }
    fn register_tables(&mut self, id: PayloadId, tables: &ArchTables) -> Result<(), TargetError> {
        let counts = (tables.ex_entries().len(), tables.bug_entries().len());
        assert!(
            self.registered.insert(id, counts).is_none(),
            "registered twice"
        );
        Ok(())
    }
    fn unregister_tables(&mut self, id: PayloadId) -> Result<(), TargetError> {
        assert!(self.registered.remove(&id).is_some(), "not registered");
        Ok(())
    }
}
