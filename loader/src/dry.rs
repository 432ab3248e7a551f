//! A dry-run target for `check` and `inspect` without an image: regions get
//! synthetic addresses and every undefined symbol resolves to a placeholder,
//! so every relocation is still computed and range-checked.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use core::cell::RefCell;

use crate::{
    Addr, Allocator, LoadError, LoadOptions, LoadedPayload, RegionKind, Symbol, SymbolSource,
    TargetError,
};

/// The address every unresolved symbol gets: below 2 GiB, so that even
/// `-fno-pic` absolute 32-bit relocations fit, as in a hypervisor image.
pub const PLACEHOLDER: Addr = Addr(0x1000_0000);
/// Where dry-run regions start: 1 MiB above the placeholder, so that every
/// region is within reach of the shortest branch (AArch64 `b`, ±128 MiB).
const REGION_BASE: u64 = PLACEHOLDER.0 + 0x10_0000;
/// Each region kind gets its own 16 MiB window (the default `max_alloc`).
const REGION_STRIDE: u64 = 0x100_0000;
/// Alignment of packed regions: a page, as the permissions of an arena's
/// regions differ.
const PAGE: u64 = 0x1000;

/// Collects the names resolved to the placeholder.
///
/// By default each region kind gets its own window (text from
/// `0x1010_0000`, read-only data from `0x1110_0000`, data from
/// `0x1210_0000`: stable addresses `inspect` shows). [`DryRun::packed`]
/// places the regions one after the other instead, page-aligned, as an
/// arena holds them, so that relocations of short reach between a
/// payload's own sections (AArch64 tiny code model: `ADR`, ±1 MiB) fit as
/// they do on a real target; the writer checks what it writes that way.
#[derive(Debug, Default)]
pub struct DryRun {
    unresolved: RefCell<BTreeSet<String>>,
    next: [u64; 3],
    packed: bool,
}

/// The symbol side of a [`DryRun`].
#[derive(Debug)]
pub struct DryRunSymbols<'a>(&'a RefCell<BTreeSet<String>>);

/// The allocator side of a [`DryRun`].
#[derive(Debug)]
pub struct DryRunAllocator<'a> {
    next: &'a mut [u64; 3],
    packed: bool,
}

impl DryRun {
    /// A dry run whose regions are packed one after the other (see
    /// [`DryRun`]).
    ///
    /// ```
    /// use xsplice_loader::{DryRun, LoadOptions, LoadedPayload};
    ///
    /// let bytes = std::fs::read(concat!(
    ///     env!("CARGO_MANIFEST_DIR"),
    ///     "/../compat-tests/fixtures/live_v3-nopic.o"
    /// ))?;
    /// let span = |p: &LoadedPayload| {
    ///     let lo = p.regions.iter().map(|r| r.addr.0).min().unwrap_or(0);
    ///     let hi = p.regions.iter().map(|r| r.addr.0 + r.bytes.len() as u64).max().unwrap_or(0);
    ///     hi - lo
    /// };
    /// let opts = LoadOptions::default();
    /// // Text and read-only data each in their own 16 MiB window...
    /// assert!(span(&DryRun::default().load(&bytes, &opts)?) > 0x100_0000);
    /// // ...or next to each other, within an AArch64 `adr` (±1 MiB).
    /// assert!(span(&DryRun::packed().load(&bytes, &opts)?) < 0x10_0000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn packed() -> Self {
        DryRun {
            packed: true,
            ..DryRun::default()
        }
    }

    /// The symbol source (every name resolves to [`PLACEHOLDER`]) and the
    /// allocator (synthetic, non-overlapping addresses), used together.
    pub fn split(&mut self) -> (DryRunSymbols<'_>, DryRunAllocator<'_>) {
        (
            DryRunSymbols(&self.unresolved),
            DryRunAllocator {
                next: &mut self.next,
                packed: self.packed,
            },
        )
    }

    /// Loads `bytes` against nothing: what `check` and `inspect` do without
    /// an image.
    pub fn load(&mut self, bytes: &[u8], opts: &LoadOptions) -> Result<LoadedPayload, LoadError> {
        let (symbols, mut alloc) = self.split();
        crate::load(bytes, opts, &symbols, &mut alloc)
    }

    /// The names that were resolved to the placeholder, sorted.
    pub fn unresolved(&self) -> impl Iterator<Item = String> {
        self.unresolved.borrow().clone().into_iter()
    }
}

impl SymbolSource for DryRunSymbols<'_> {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.0.borrow_mut().insert(name.to_string());
        Some(Symbol {
            addr: PLACEHOLDER,
            size: 0,
        })
    }

    fn lookup_local(&self, name: &str, _pos: u32) -> Option<Symbol> {
        self.lookup(name)
    }
}

impl Allocator for DryRunAllocator<'_> {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        // Packed: one window for every kind, page-aligned regions.
        let (k, window, a) = if self.packed {
            (0, REGION_STRIDE * 3, align.max(PAGE))
        } else {
            (kind as usize, REGION_STRIDE, align.max(1))
        };
        let used = self
            .next
            .get_mut(k)
            .ok_or(TargetError::Unsupported("region kind"))?;
        let out_of_memory = TargetError::OutOfMemory {
            kind: kind.name(),
            size,
        };
        let start = used.checked_next_multiple_of(a).unwrap_or(u64::MAX);
        let end = start.saturating_add(size);
        // `k` indexes a three-kind table, so the window's base cannot wrap;
        // checked all the same.
        let addr = (k as u64)
            .checked_mul(REGION_STRIDE)
            .and_then(|o| o.checked_add(REGION_BASE))
            .and_then(|base| base.checked_add(start));
        match addr {
            Some(addr) if end <= window => {
                *used = end;
                Ok(Addr(addr))
            }
            _ => Err(out_of_memory),
        }
    }
}
