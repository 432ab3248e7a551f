//! Loads untrusted xsplice payloads and patches targets with them.
//!
//! A payload is an ELF64 relocatable object (`ET_REL`) whose
//! `.xsplice.funcs` section holds one versioned record per function to
//! replace. This crate is the reader side of the format:
//!
//! 1. [`load`] validates the ELF (every count and size bounded by the input
//!    before anything is allocated), lays the allocated sections out into
//!    text (RX), read-only (R) and data (RW) regions through an
//!    [`Allocator`], resolves undefined symbols through a [`SymbolSource`],
//!    applies every relocation (x86-64 and AArch64, GOT forms included),
//!    and decodes the records of every supported version with
//!    [`xsplice_abi`] into [`LoadedPayload`].
//! 2. [`engine::Engine`] applies, reverts and replaces loaded payloads on a
//!    [`engine::Target`] that the hypervisor implements: every byte is
//!    computed and checked before the stop-the-world step, which only writes.
//!
//! Before any of this, [`signature`] checks the payload's Ed25519 signature
//! (appended after the ELF bytes) under [`LoadOptions::signature_policy`].
//!
//! # The modules, in the order the data flows
//!
//! | step | module | what it does |
//! |---|---|---|
//! | bytes | [`signature`] | splits off and verifies the signature trailer, before any parsing |
//! | ELF | `elf` | header, section table, symbols and relocations, each bounded by the input; note framing (read and write); relocation numbers |
//! | layout | `layout` | sections into text / read-only / data regions through the [`Allocator`]; GOT and stub space |
//! | symbols, relocation | `link`, `reloc` | resolves symbols through the [`SymbolSource`]; applies x86-64 and AArch64 relocations; the format sections' relocation rules |
//! | records | `payload` | decodes the records with [`xsplice_abi`], checks them, reads the note, build-ids, hooks and vendor entries: [`LoadedPayload`] |
//! | architecture tables | [`arch_tables`] | exception tables, alternatives, bug frames |
//! | plan | [`engine`] | [`engine::PatchPlan`]: every byte to write, computed and checked before the stop-the-world step |
//! | target writes | [`engine`], [`patch`], [`ledger`] | the state machine over a [`engine::Target`]; branch and NOP bytes; what is applied, kept across runs |
//! | targets | `image`, `process`, `ptrace` (with `std`) | an offline executable, this process, another process |
//! | writer | `write` (feature `write`) | builds payloads and rewrites their record version, loading back what it writes |
//!
//! The core is `no_std + alloc`; with `std` come [`image::ImageTarget`]
//! (offline patching of an executable), on Linux x86-64 and AArch64
//! `process::ProcessTarget` (live patching of the running process), and on
//! Linux x86-64 `ptrace::PtraceTarget` (live patching of another process).
//!
//! # Example
//!
//! Check a payload without a target: undefined symbols resolve to a
//! placeholder and nothing is written anywhere.
//!
//! ```
//! use xsplice_loader::{DryRun, LoadOptions};
//!
//! let bytes = std::fs::read(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../compat-tests/fixtures/live_v3-nopic.o"
//! ))?;
//! let mut dry = DryRun::default();
//! let payload = dry.load(&bytes, &LoadOptions::default())?;
//! assert_eq!(payload.records.len(), 2);
//! assert_eq!(payload.records[0].name, "xsplice_demo_answer");
//! // The replacement calls back into the target, which was not given:
//! assert_eq!(dry.unresolved().collect::<Vec<_>>(), ["xsplice_demo_answer", "xsplice_demo_base", "xsplice_demo_scale"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
// Tests compute expected offsets freely.
#![cfg_attr(
    test,
    allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)
)]

extern crate alloc;

pub mod arch_tables;
mod dry;
mod elf;
pub mod engine;
mod error;
mod layout;
pub mod ledger;
mod link;
pub mod patch;
mod payload;
mod reloc;
pub mod signature;

#[cfg(all(
    feature = "std",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod exe;
#[cfg(feature = "std")]
pub mod image;
#[cfg(all(
    feature = "std",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod process;
#[cfg(all(feature = "std", target_os = "linux", target_arch = "x86_64"))]
pub mod ptrace;
#[cfg(feature = "std")]
mod symtab;
#[cfg(feature = "write")]
pub mod write;

use alloc::vec::Vec;
use core::fmt;

pub use arch_tables::{ArchProblem, ArchTables, CpuFeatures};
pub use dry::{DryRun, DryRunAllocator, DryRunSymbols, PLACEHOLDER};
pub use error::{
    HeaderProblem, LoadError, NoteProblem, RecordProblem, RelocIndex, RelocProblem, SectionIndex,
    SectionProblem, SymbolIndex, SymbolProblem, VendorProblem,
};
pub use payload::{
    load, Export, Hook, LoadWarning, LoadedPayload, LoadedSection, PatchRecord, Region,
    VendorEntry, NAME_MAX,
};
pub use xsplice_abi::Addr;

/// The machine a payload is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Arch {
    /// x86-64: patches are a 5-byte `jmp rel32` (±2 GiB).
    X86_64,
    /// AArch64: patches are a 4-byte `b imm26` (±128 MiB).
    Aarch64,
}

impl Arch {
    /// The architecture of an ELF `e_machine`, if the format supports it:
    /// the one mapping the reader, the image target and the writer use.
    ///
    /// ```
    /// use xsplice_loader::Arch;
    /// assert_eq!(Arch::from_machine(62), Some(Arch::X86_64));
    /// assert_eq!(Arch::from_machine(183), Some(Arch::Aarch64));
    /// assert_eq!(Arch::from_machine(40), None); // EM_ARM
    /// ```
    pub const fn from_machine(e_machine: u16) -> Option<Arch> {
        match e_machine {
            goblin::elf::header::EM_X86_64 => Some(Arch::X86_64),
            goblin::elf::header::EM_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// Bytes written at a patch site to redirect it.
    pub const fn patch_size(self) -> usize {
        match self {
            Arch::X86_64 => xsplice_abi::sections::PATCH_SIZE_X86_64,
            Arch::Aarch64 => xsplice_abi::sections::PATCH_SIZE_AARCH64,
        }
    }

    /// The name used in messages and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The three kinds of payload memory. A section that is both writable and
/// executable is refused, so W^X holds for every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegionKind {
    /// Code: read + execute.
    Text = 0,
    /// Read-only data, records and tables included.
    ReadOnly = 1,
    /// Writable data.
    Data = 2,
}

impl RegionKind {
    /// The name used in messages and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            RegionKind::Text => "text",
            RegionKind::ReadOnly => "rodata",
            RegionKind::Data => "data",
        }
    }
}

/// A symbol of the target or of a loaded payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    /// Address.
    pub addr: Addr,
    /// Size in bytes (0 when unknown).
    pub size: u64,
}

/// Where a payload's undefined symbols, and the functions its records name
/// with `old_addr == 0`, are looked up.
pub trait SymbolSource {
    /// The global (or unique) symbol called `name`.
    fn lookup(&self, name: &str) -> Option<Symbol>;
    /// The `pos`-th (1-based, in symbol-table order) local symbol called
    /// `name`, for records using SYMPOS.
    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol>;
    /// Where a payload's undefined symbol `name` that [`lookup`] does not
    /// find may still be reached: a function the target imports from a
    /// shared library and calls through a PLT entry resolves to that entry,
    /// so the payload's calls go where the target's own calls go. Only
    /// symbols of the payload use it, never a record's function (patching a
    /// PLT entry is not patching the function). The default: none (a
    /// hypervisor has no shared libraries).
    ///
    /// [`lookup`]: SymbolSource::lookup
    fn lookup_import(&self, name: &str) -> Option<Symbol> {
        let _ = name;
        None
    }
}

/// Memory for payload regions. A hypervisor owns its memory, so the loader
/// asks for it rather than allocating it.
pub trait Allocator {
    /// Reserves `size` bytes aligned to `align` for a region of `kind`,
    /// returning its address. The memory is not written until the engine
    /// maps the region.
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError>;
}

/// An error reported by a target (or an allocator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// No memory for a region.
    #[error("no memory for a {kind} region of {size} bytes")]
    OutOfMemory {
        /// Region kind name.
        kind: &'static str,
        /// Requested size.
        size: u64,
    },
    /// An address is not mapped or not accessible.
    #[error("address {0} is not accessible")]
    BadAddress(Addr),
    /// The target cannot do what was asked.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// An offline image has no arena section for a region of this kind.
    #[error("the image has no `{section}` section for the payload's {} ({size} bytes)", .kind.name())]
    ArenaMissing {
        /// The arena section it needs.
        section: &'static str,
        /// The region kind.
        kind: RegionKind,
        /// The region's size.
        size: u64,
    },
    /// An arena of an offline image has no room left for a region.
    #[error("`{section}` is full: {used} of {capacity} bytes used, {size} more needed (aligned to {align})")]
    ArenaFull {
        /// The arena section.
        section: &'static str,
        /// Bytes in use.
        used: u64,
        /// The arena's size.
        capacity: u64,
        /// The region's size.
        size: u64,
        /// The region's alignment.
        align: u64,
    },
    /// A thread did not reach the stop-the-world rendezvous in time (it
    /// blocks the signal, or never gets a CPU): nothing was written.
    #[error("thread {tid} did not stop within {timeout:?}: nothing written")]
    RendezvousTimeout {
        /// The thread id.
        tid: i32,
        /// How long the rendezvous waited.
        timeout: core::time::Duration,
    },
    /// At every attempt a stopped thread was inside code the action writes
    /// (or, under the strict policy, retires): nothing was written.
    #[error("thread {tid} stopped at {pc}, inside the {} of {record}, at each of {attempts} attempts: nothing written", if *.whole_function { "retired function" } else { "bytes to write" })]
    ThreadInSite {
        /// The thread id.
        tid: i32,
        /// Its program counter at the last attempt.
        pc: Addr,
        /// The record whose site (or function) holds it.
        record: xsplice_abi::RecordIndex,
        /// Whether the PC was only inside the whole retired function (the
        /// strict policy), not inside the bytes written.
        whole_function: bool,
        /// Rendezvous attempts made.
        attempts: u32,
    },
    /// An operating-system call failed.
    #[error("{op} failed with errno {errno}")]
    Os {
        /// The call.
        op: &'static str,
        /// Its `errno`.
        errno: i32,
    },
    /// The process has more threads than the rendezvous can stop.
    #[error("more than {max} threads: the rendezvous cannot stop them all")]
    TooManyThreads {
        /// The most threads a rendezvous stops.
        max: usize,
    },
    /// The rendezvous signal already has another handler in this process.
    #[error("signal {signal} already has a handler: the rendezvous cannot use it")]
    SignalInUse {
        /// The signal number.
        signal: i32,
    },
    /// A failure of the ptrace target (another process).
    #[cfg(all(feature = "std", target_os = "linux", target_arch = "x86_64"))]
    #[error(transparent)]
    Ptrace(#[from] ptrace::PtraceError),
}

/// Limits and knowledge the loader applies to untrusted payloads.
///
/// # Memory bound
///
/// Loading an input of `n` bytes allocates, at its peak, at most
/// **`24·n + max_alloc + 16 KiB`** bytes of heap with the default options
/// (`compat-tests/tests/memory_bound.rs` asserts it with a counting
/// allocator over every gcc fixture, the regression corpus of
/// `compat-tests/malformed/`, thousands of truncations and byte flips of
/// them, and issue 12's hostile shapes).
///
/// * `max_alloc` is the regions' bytes: a few-byte `NOBITS` size asks for
///   that much (measured: 16.7 MB for a 2,344-byte payload).
/// * `24·n` is dominated by names. Every other table costs a small
///   multiple of its file bytes, but a name is copied where it must outlive
///   the input (an [`Export`], a dry run's unresolved list, an error), and
///   one 24-byte symbol can name up to [`max_name`](Self::max_name) bytes
///   that other symbols share. The worst measured: 40,000 exports whose
///   names are distinct tails of 1,023-byte strings, 45.6 MB for a 2.0 MB
///   payload (22.6 bytes per input byte). The factor grows with `max_name`
///   (about `max_name / 45`): raising it raises the bound.
/// * The fixed part is the dry run's and the parser's own state; no input
///   of the corpus needed any (every small input stays under `24·n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Largest payload file accepted, in bytes (default 2 MiB).
    pub max_size: usize,
    /// Largest total of loaded regions, in bytes (default 16 MiB): bounds
    /// NOBITS sections, which take no file space.
    pub max_alloc: usize,
    /// Largest section count (default 4096).
    pub max_sections: usize,
    /// Longest section or symbol name, in bytes (default 1024). Names are
    /// compared and copied (exports, messages), so this bounds the work and
    /// memory per section and symbol; C symbol names are far shorter.
    pub max_name: usize,
    /// `(vendor, kind)` pairs this loader understands; an unknown CRITICAL
    /// vendor entry refuses the payload.
    pub known_vendor_entries: Vec<(u32, u16)>,
    /// The target's machine, when known: a payload for another is refused
    /// right after the ELF header is read.
    pub arch: Option<Arch>,
    /// The target is loaded at an address unknown when patching (a PIE
    /// image patched offline): absolute addresses in a payload's code and
    /// data are refused, since nothing would fix them up at run time.
    pub position_independent: bool,
    /// What to do with payload signatures (default: verify if present).
    /// Checked before any ELF parsing; see [`signature`].
    pub signature_policy: signature::SignaturePolicy,
    /// The public keys whose signatures are trusted (default: none).
    pub trusted_keys: Vec<signature::TrustedKey>,
    /// The incompat bits this loader implements (default: all this crate
    /// knows). A payload whose ABI note sets another is refused as by a
    /// loader that does not know the bit: a deployment whose target cannot
    /// honour the architecture-specific tables may clear
    /// [`xsplice_abi::Incompat::ARCH`], and tests act as an older loader.
    pub incompat_supported: xsplice_abi::Incompat,
    /// Architecture-specific tables the target cannot honour (default:
    /// none). A payload carrying one is refused, naming the section, before
    /// anything is allocated. [`engine::Engine::new`] fills it from
    /// [`engine::Target::honours`].
    pub unhonoured_tables: Vec<xsplice_abi::arch::ArchTable>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_size: 2 << 20,
            max_alloc: 16 << 20,
            max_sections: 4096,
            max_name: 1024,
            known_vendor_entries: Vec::new(),
            arch: None,
            position_independent: false,
            signature_policy: signature::SignaturePolicy::default(),
            trusted_keys: Vec::new(),
            incompat_supported: xsplice_abi::Incompat::all(),
            unhonoured_tables: Vec::new(),
        }
    }
}
