//! The ledger: what a patched target has applied, in stack order.
//!
//! A live hypervisor remembers its applied payloads in memory; a patcher
//! that runs once per command (the CLI on an offline image, or on another
//! process) must find that memory again in the target. The ledger is that
//! memory, in one versioned byte format (`spec/SPEC.md`, "The ledger"):
//! per applied payload its identity, name, record version, the regions it
//! occupies (with what they held before, so an offline revert gives back
//! the original bytes exactly), every patch site with its original and
//! written bytes, the symbols it exports to payloads above it, and the
//! hooks that revert and unload still need.
//!
//! [`Engine`](crate::engine::Engine) builds a [`Ledger`] from its stack and
//! restores its stack from one ([`Engine::open`](crate::engine::Engine::open));
//! a [`Target`](crate::engine::Target) only stores the bytes.
//!
//! Decoding is as careful as payload loading: every count is bounded by the
//! bytes left before anything is allocated, reserved bytes must be zero, and
//! every error names the byte offset at fault.
//!
//! ```
//! use xsplice_loader::ledger::{Entry, Identity, Ledger, Original, Placed, Site};
//! use xsplice_loader::{Addr, RegionKind};
//! use xsplice_abi::{FormatVersion, RecordIndex, RecordVersion};
//!
//! let mut ledger = Ledger::default();
//! ledger.entries.push(Entry {
//!     name: "fix.o".into(),
//!     identity: Identity::sha256([7; 32]),
//!     depends: None,
//!     record_version: RecordVersion::V3,
//!     format: FormatVersion::new(3, 0),
//!     regions: vec![Placed { kind: RegionKind::Text, addr: Addr(0x402000), size: 64, original: Original::Fill(0xcc) }],
//!     sites: vec![Site { record: RecordIndex(0), name: "hv_sum".into(), addr: Addr(0x401132),
//!                        old: vec![0x55, 0x48, 0x89, 0xe5, 0x53], new: vec![0xe9, 0xc9, 0x0e, 0, 0] }],
//!     exports: vec![],
//!     hooks: vec![],
//! });
//! let bytes = ledger.encode()?;
//! assert_eq!(Ledger::decode(&bytes)?, ledger);
//! # Ok::<(), xsplice_loader::ledger::LedgerError>(())
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::mem::offset_of;

use xsplice_abi::ledger::{
    IdKind, OrigCode, LEDGER_ALIGN, LEDGER_ENTRY_SIZE, LEDGER_EXPORT_SIZE, LEDGER_FOOTER_SIZE,
    LEDGER_HEADER_SIZE, LEDGER_HOOK_SIZE, LEDGER_ID_MAX, LEDGER_MAGIC, LEDGER_NAME_MAX,
    LEDGER_REGION_SIZE, LEDGER_SITE_SIZE, LEDGER_VERSION,
};
use xsplice_abi::raw::{
    LedgerEntry, LedgerExport, LedgerFooter, LedgerHeader, LedgerHook, LedgerRegion, LedgerSite,
};
use xsplice_abi::sections::HookPoint;
use xsplice_abi::{Addr, FormatVersion, RecordIndex, RecordVersion};
use zerocopy::{FromBytes, IntoBytes};

use crate::payload::{Export, Hook};
use crate::{RegionKind, Symbol};

/// The SHA-256 of `bytes`: the identity of a payload without a build-id.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// What identifies an applied payload, so that the same payload is never
/// applied twice on one stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What the bytes are.
    pub kind: IdKind,
    /// The build-id, or the SHA-256 of the payload file.
    pub bytes: Vec<u8>,
}

impl Identity {
    /// A payload's own GNU build-id.
    pub fn build_id(bytes: &[u8]) -> Self {
        Identity {
            kind: IdKind::BuildId,
            bytes: bytes.to_vec(),
        }
    }

    /// The SHA-256 of a payload file without a build-id.
    pub fn sha256(digest: [u8; 32]) -> Self {
        Identity {
            kind: IdKind::Sha256,
            bytes: digest.to_vec(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind.name())?;
        self.bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What a region held before its payload was placed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Original {
    /// Not kept: the target frees the memory on unload (a live process).
    NotKept,
    /// Every byte had this value (an arena's fill).
    Fill(u8),
    /// These bytes.
    Bytes(Vec<u8>),
}

impl Original {
    /// The compact form of `bytes`: a fill when every byte is the same.
    pub fn of(bytes: &[u8]) -> Self {
        match bytes.split_first() {
            Some((&b, rest)) if rest.iter().all(|&x| x == b) => Original::Fill(b),
            None => Original::Fill(0),
            Some(_) => Original::Bytes(bytes.to_vec()),
        }
    }
}

/// A region an applied payload occupies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Text, read-only or data.
    pub kind: RegionKind,
    /// Start.
    pub addr: Addr,
    /// Size in bytes.
    pub size: u64,
    /// What was there before.
    pub original: Original,
}

/// One patch site an applied payload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The record that patched it.
    pub record: RecordIndex,
    /// The record's function name.
    pub name: String,
    /// Address.
    pub addr: Addr,
    /// Bytes that were there before (restored by revert).
    pub old: Vec<u8>,
    /// Bytes written (the same length as `old`).
    pub new: Vec<u8>,
}

/// A site is its own view for [`Ledger::encode_entries`] (the engine's
/// planned writes give theirs).
impl AsRef<Site> for Site {
    fn as_ref(&self) -> &Site {
        self
    }
}

/// One applied payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The payload's name (its file name when applied by the CLI).
    pub name: String,
    /// Its identity.
    pub identity: Identity,
    /// The build-id it was built against (`.xsplice.depends`).
    pub depends: Option<Vec<u8>>,
    /// Its record version.
    pub record_version: RecordVersion,
    /// Its format version.
    pub format: FormatVersion,
    /// Regions it occupies.
    pub regions: Vec<Placed>,
    /// Sites it wrote, in record order.
    pub sites: Vec<Site>,
    /// Symbols it exports to payloads above it.
    pub exports: Vec<Export>,
    /// Its hooks (revert and unload ones are run from the ledger).
    pub hooks: Vec<Hook>,
}

impl Entry {
    /// The build-id a payload above it must name in its `.xsplice.depends`.
    pub fn build_id(&self) -> Option<&[u8]> {
        (self.identity.kind == IdKind::BuildId).then_some(self.identity.bytes.as_slice())
    }
}

/// The applied stack of a target, bottom first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Applied payloads, bottom of the stack first.
    pub entries: Vec<Entry>,
}

/// What is wrong with a ledger's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerProblem {
    /// The bytes end before the structure does.
    #[error("truncated")]
    Truncated,
    /// The magic is not `"XSPLEDG\0"`.
    #[error("bad magic")]
    BadMagic,
    /// A ledger (or footer) version this loader does not know.
    #[error("unsupported ledger version {0}")]
    UnsupportedVersion(u16),
    /// A size tag smaller than the layout, or not a multiple of 8.
    #[error("bad size field {0}")]
    BadSize(u64),
    /// A reserved byte, or the unknown tail of a larger structure, is not zero.
    #[error("reserved byte is not zero")]
    NonZeroReserved,
    /// A code (region kind, id kind, original kind, hook point, record
    /// version) this loader does not know.
    #[error("unknown code {0}")]
    UnknownCode(u64),
    /// A length over its limit (names 4096, ids 64, site bytes 255).
    #[error("length {0} over the limit")]
    TooLong(u64),
    /// A name that is not UTF-8.
    #[error("name is not UTF-8")]
    NotUtf8,
    /// Bytes left after the last entry, or sizes that disagree.
    #[error("sizes disagree with the contents")]
    SizeMismatch,
}

/// A ledger that cannot be read or written, with the byte offset at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ledger, offset {offset}: {problem}")]
pub struct LedgerError {
    /// Byte offset from the start of the ledger.
    pub offset: usize,
    /// What is wrong.
    pub problem: LedgerProblem,
}

fn fail<T>(offset: usize, problem: LedgerProblem) -> Result<T, LedgerError> {
    Err(LedgerError { offset, problem })
}

/// `LEDGER_ALIGN - 1`: the alignment is a power of two, so this masks the
/// misaligned low bits.
const ALIGN_MASK: usize = LEDGER_ALIGN - 1;
const _: () = assert!(LEDGER_ALIGN.is_power_of_two());

/// [`LEDGER_HEADER_SIZE`] as the header's `header_size` field.
// Cannot truncate: the assertion below checks the round trip at compile time.
#[allow(clippy::cast_possible_truncation)]
const HEADER_SIZE_FIELD: u16 = LEDGER_HEADER_SIZE as u16;
const _: () = assert!(HEADER_SIZE_FIELD as usize == LEDGER_HEADER_SIZE);

/// [`LEDGER_ENTRY_SIZE`] as an entry's `header_size` field.
// Cannot truncate: the assertion below checks the round trip at compile time.
#[allow(clippy::cast_possible_truncation)]
const ENTRY_SIZE_FIELD: u16 = LEDGER_ENTRY_SIZE as u16;
const _: () = assert!(ENTRY_SIZE_FIELD as usize == LEDGER_ENTRY_SIZE);

/// Zero bytes after `n` bytes up to the next `LEDGER_ALIGN` boundary.
fn pad_len(n: usize) -> usize {
    n.wrapping_neg() & ALIGN_MASK
}

/// The offset of a field `field` bytes into a structure at `start`, for an
/// error report. `start` lies within the input, so this cannot saturate; if
/// it did, the report would only name a wrong offset.
fn field_at(start: usize, field: usize) -> usize {
    start.saturating_add(field)
}

/// The hook point code: its position in [`HookPoint::ALL`].
fn point_code(point: HookPoint) -> u8 {
    HookPoint::ALL
        .iter()
        .position(|p| *p == point)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

fn kind_from(code: u8) -> Option<RegionKind> {
    [RegionKind::Text, RegionKind::ReadOnly, RegionKind::Data]
        .into_iter()
        .find(|k| *k as u8 == code)
}

/// Writes ledger bytes; every length is checked against its field.
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn pad(&mut self) {
        let n = pad_len(self.out.len());
        self.out.extend(core::iter::repeat_n(0, n));
    }

    fn len<T: TryFrom<usize>>(&self, n: usize, max: usize) -> Result<T, LedgerError> {
        if n > max {
            return fail(self.out.len(), LedgerProblem::TooLong(n as u64));
        }
        T::try_from(n).or_else(|_| fail(self.out.len(), LedgerProblem::TooLong(n as u64)))
    }
}

impl Ledger {
    /// Whether nothing is applied.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ledger's bytes. Fails only when a length exceeds its field
    /// (a name over 4096 bytes, an id over 64, more than 65535 regions).
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        Self::encode_entries(self.entries.iter().map(|e| (e, e.sites.as_slice())))
    }

    /// The bytes of a ledger of `entries`, each with its sites taken from
    /// the slice beside it (the entry's own `sites` are not read): what
    /// [`Ledger::encode`] writes, for a caller that keeps its sites apart.
    pub fn encode_entries<'a, S: AsRef<Site> + 'a>(
        entries: impl ExactSizeIterator<Item = (&'a Entry, &'a [S])>,
    ) -> Result<Vec<u8>, LedgerError> {
        let mut w = Writer { out: Vec::new() };
        w.put(LedgerHeader::default().as_bytes());
        let count = entries.len();
        for (e, sites) in entries {
            let start = w.out.len();
            w.put(LedgerEntry::default().as_bytes());
            let head = LedgerEntry {
                entry_size: 0.into(),
                header_size: ENTRY_SIZE_FIELD.into(),
                record_version: e.record_version.number().into(),
                format_major: e.format.major.into(),
                format_minor: e.format.minor.into(),
                id_kind: e.identity.kind.code(),
                id_len: w.len(e.identity.bytes.len(), LEDGER_ID_MAX)?,
                depends_len: w.len(e.depends.as_ref().map_or(0, Vec::len), LEDGER_ID_MAX)?,
                reserved0: 0,
                name_len: w.len::<u16>(e.name.len(), LEDGER_NAME_MAX)?.into(),
                region_count: w.len::<u16>(e.regions.len(), usize::from(u16::MAX))?.into(),
                site_count: w.len::<u32>(sites.len(), usize::MAX)?.into(),
                export_count: w.len::<u32>(e.exports.len(), usize::MAX)?.into(),
                hook_count: w.len::<u32>(e.hooks.len(), usize::MAX)?.into(),
                reserved1: [0; 32],
            };
            w.put(e.name.as_bytes());
            w.put(&e.identity.bytes);
            w.put(e.depends.as_deref().unwrap_or(&[]));
            w.pad();
            for r in &e.regions {
                let (orig, fill) = match &r.original {
                    Original::NotKept => (OrigCode::NotKept, 0),
                    Original::Fill(b) => (OrigCode::Fill, *b),
                    Original::Bytes(_) => (OrigCode::Bytes, 0),
                };
                w.put(
                    LedgerRegion {
                        addr: r.addr.0.into(),
                        size: r.size.into(),
                        kind: r.kind as u8,
                        orig: orig.code(),
                        fill,
                        reserved: [0; 5],
                    }
                    .as_bytes(),
                );
                if let Original::Bytes(b) = &r.original {
                    if b.len() as u64 != r.size {
                        return fail(w.out.len(), LedgerProblem::SizeMismatch);
                    }
                    w.put(b);
                    w.pad();
                }
            }
            for s in sites.iter().map(AsRef::as_ref) {
                if s.old.len() != s.new.len() {
                    return fail(w.out.len(), LedgerProblem::SizeMismatch);
                }
                w.put(
                    LedgerSite {
                        addr: s.addr.0.into(),
                        record: s.record.0.into(),
                        len: w.len(s.new.len(), usize::from(u8::MAX))?,
                        reserved0: 0,
                        name_len: w.len::<u16>(s.name.len(), xsplice_abi::NAME_MAX)?.into(),
                        reserved1: [0; 8],
                    }
                    .as_bytes(),
                );
                w.put(&s.old);
                w.put(&s.new);
                w.put(s.name.as_bytes());
                w.pad();
            }
            for x in &e.exports {
                w.put(
                    LedgerExport {
                        addr: x.symbol.addr.0.into(),
                        size: x.symbol.size.into(),
                        name_len: w.len::<u16>(x.name.len(), LEDGER_NAME_MAX)?.into(),
                        reserved: [0; 6],
                    }
                    .as_bytes(),
                );
                w.put(x.name.as_bytes());
                w.pad();
            }
            for h in &e.hooks {
                w.put(
                    LedgerHook {
                        addr: h.addr.0.into(),
                        index: w.len::<u32>(h.index, usize::MAX)?.into(),
                        point: point_code(h.point),
                        reserved: [0; 3],
                    }
                    .as_bytes(),
                );
            }
            let written = w.out.get(start..).map_or(0, <[u8]>::len);
            let size: u32 = w.len(written, usize::MAX)?;
            let head = LedgerEntry {
                entry_size: size.into(),
                ..head
            };
            let slot = w
                .out
                .get_mut(start..)
                .and_then(|e| e.get_mut(..LEDGER_ENTRY_SIZE));
            if let Some(slot) = slot {
                slot.copy_from_slice(head.as_bytes());
            }
        }
        let header = LedgerHeader {
            magic: LEDGER_MAGIC,
            version: LEDGER_VERSION.into(),
            header_size: HEADER_SIZE_FIELD.into(),
            entry_count: w.len::<u32>(count, usize::MAX)?.into(),
            total_size: w.len::<u32>(w.out.len(), usize::MAX)?.into(),
            reserved: [0; 12],
        };
        if let Some(slot) = w.out.get_mut(..LEDGER_HEADER_SIZE) {
            slot.copy_from_slice(header.as_bytes());
        }
        Ok(w.out)
    }

    /// Reads a ledger written by [`Ledger::encode`] (or by a newer writer
    /// of the same version, under the size rule).
    pub fn decode(bytes: &[u8]) -> Result<Ledger, LedgerError> {
        let mut r = Reader { bytes, at: 0 };
        let (header, _) = r.sized::<LedgerHeader>(|h| h.header_size.get().into())?;
        if header.magic != LEDGER_MAGIC {
            return fail(0, LedgerProblem::BadMagic);
        }
        if header.version.get() != LEDGER_VERSION {
            return fail(
                offset_of!(LedgerHeader, version),
                LedgerProblem::UnsupportedVersion(header.version.get()),
            );
        }
        r.zero(
            header.reserved.as_slice(),
            offset_of!(LedgerHeader, reserved),
        )?;
        let total = header.total_size.get() as usize;
        if total != bytes.len() {
            return fail(
                offset_of!(LedgerHeader, total_size),
                LedgerProblem::SizeMismatch,
            );
        }
        let count = header.entry_count.get() as usize;
        // Every entry takes at least its fixed part: bound before allocating.
        if count > bytes.len() / LEDGER_ENTRY_SIZE {
            return fail(
                offset_of!(LedgerHeader, entry_count),
                LedgerProblem::SizeMismatch,
            );
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push(r.entry()?);
        }
        if r.at != bytes.len() {
            return fail(r.at, LedgerProblem::SizeMismatch);
        }
        Ok(Ledger { entries })
    }
}

/// A bounded, position-tracking reader over ledger bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LedgerError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(LedgerError {
                offset: self.at,
                problem: LedgerProblem::Truncated,
            })?;
        let s = self.bytes.get(self.at..end).unwrap_or(&[]);
        self.at = end;
        Ok(s)
    }

    fn pad(&mut self) -> Result<(), LedgerError> {
        let at = self.at;
        let pad = self.take(pad_len(at))?;
        self.zero(pad, at)
    }

    fn zero(&self, bytes: &[u8], offset: usize) -> Result<(), LedgerError> {
        match bytes.iter().position(|&b| b != 0) {
            Some(i) => fail(field_at(offset, i), LedgerProblem::NonZeroReserved),
            None => Ok(()),
        }
    }

    fn read<T: FromBytes>(&mut self) -> Result<T, LedgerError> {
        let at = self.at;
        let b = self.take(core::mem::size_of::<T>())?;
        T::read_from_bytes(b).or_else(|_| fail(at, LedgerProblem::Truncated))
    }

    /// A size-tagged structure: its known part, then an unknown tail up to
    /// `size(..)` bytes that must be zero. Returns the value and its start.
    fn sized<T: FromBytes>(&mut self, size: impl Fn(&T) -> u64) -> Result<(T, usize), LedgerError> {
        let start = self.at;
        let v: T = self.read()?;
        let known = core::mem::size_of::<T>();
        let tagged = size(&v);
        let tail_len = usize::try_from(tagged)
            .unwrap_or(usize::MAX)
            .checked_sub(known)
            .filter(|_| tagged & ALIGN_MASK as u64 == 0);
        let Some(tail_len) = tail_len else {
            return fail(start, LedgerProblem::BadSize(tagged));
        };
        let at = self.at;
        let tail = self.take(tail_len)?;
        self.zero(tail, at)?;
        Ok((v, start))
    }

    fn text(&mut self, n: usize) -> Result<String, LedgerError> {
        let at = self.at;
        let b = self.take(n)?;
        core::str::from_utf8(b)
            .map(String::from)
            .or_else(|_| fail(at, LedgerProblem::NotUtf8))
    }

    /// A count of items that take at least `min` bytes each, checked
    /// against the bytes left so a lying count cannot allocate.
    fn bounded(&self, count: usize, min: usize, offset: usize) -> Result<usize, LedgerError> {
        let left = self.bytes.len().saturating_sub(self.at);
        if count > left.checked_div(min).unwrap_or(0) {
            return fail(offset, LedgerProblem::SizeMismatch);
        }
        Ok(count)
    }

    fn entry(&mut self) -> Result<Entry, LedgerError> {
        let start = self.at;
        let (e, _) = self.sized::<LedgerEntry>(|e| e.header_size.get().into())?;
        self.zero(
            &[e.reserved0],
            field_at(start, offset_of!(LedgerEntry, reserved0)),
        )?;
        self.zero(
            &e.reserved1,
            field_at(start, offset_of!(LedgerEntry, reserved1)),
        )?;
        let code = |v: u64| LedgerError {
            offset: start,
            problem: LedgerProblem::UnknownCode(v),
        };
        let record_version = RecordVersion::from_number(e.record_version.get())
            .ok_or_else(|| code(e.record_version.get().into()))?;
        let id_kind = IdKind::from_code(e.id_kind).ok_or_else(|| code(e.id_kind.into()))?;
        let name_len = usize::from(e.name_len.get());
        if name_len > LEDGER_NAME_MAX {
            return fail(
                field_at(start, offset_of!(LedgerEntry, name_len)),
                LedgerProblem::TooLong(name_len as u64),
            );
        }
        if usize::from(e.id_len) > LEDGER_ID_MAX || usize::from(e.depends_len) > LEDGER_ID_MAX {
            return fail(
                field_at(start, offset_of!(LedgerEntry, id_len)),
                LedgerProblem::TooLong(e.id_len.max(e.depends_len).into()),
            );
        }
        let name = self.text(name_len)?;
        let id = self.take(e.id_len.into())?.to_vec();
        let depends = self.take(e.depends_len.into())?;
        let depends = (!depends.is_empty()).then(|| depends.to_vec());
        self.pad()?;
        let n = self.bounded(
            usize::from(e.region_count.get()),
            LEDGER_REGION_SIZE,
            field_at(start, offset_of!(LedgerEntry, region_count)),
        )?;
        let mut regions = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.at;
            let raw: LedgerRegion = self.read()?;
            self.zero(
                &raw.reserved,
                field_at(at, offset_of!(LedgerRegion, reserved)),
            )?;
            let kind = kind_from(raw.kind).ok_or_else(|| code(raw.kind.into()))?;
            let original = match OrigCode::from_code(raw.orig) {
                Some(OrigCode::NotKept) => Original::NotKept,
                Some(OrigCode::Fill) => Original::Fill(raw.fill),
                Some(OrigCode::Bytes) => {
                    let len = usize::try_from(raw.size.get()).unwrap_or(usize::MAX);
                    let b = self.take(len)?.to_vec();
                    self.pad()?;
                    Original::Bytes(b)
                }
                _ => {
                    return fail(
                        field_at(at, offset_of!(LedgerRegion, orig)),
                        LedgerProblem::UnknownCode(raw.orig.into()),
                    )
                }
            };
            regions.push(Placed {
                kind,
                addr: Addr(raw.addr.get()),
                size: raw.size.get(),
                original,
            });
        }
        let n = self.bounded(
            e.site_count.get() as usize,
            LEDGER_SITE_SIZE,
            field_at(start, offset_of!(LedgerEntry, site_count)),
        )?;
        let mut sites = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.at;
            let raw: LedgerSite = self.read()?;
            self.zero(
                &[raw.reserved0],
                field_at(at, offset_of!(LedgerSite, reserved0)),
            )?;
            self.zero(
                &raw.reserved1,
                field_at(at, offset_of!(LedgerSite, reserved1)),
            )?;
            let len = usize::from(raw.len);
            let old = self.take(len)?.to_vec();
            let new = self.take(len)?.to_vec();
            let name_len = usize::from(raw.name_len.get());
            if name_len > xsplice_abi::NAME_MAX {
                return fail(
                    field_at(at, offset_of!(LedgerSite, name_len)),
                    LedgerProblem::TooLong(name_len as u64),
                );
            }
            let name = self.text(name_len)?;
            self.pad()?;
            sites.push(Site {
                record: RecordIndex(raw.record.get()),
                name,
                addr: Addr(raw.addr.get()),
                old,
                new,
            });
        }
        let n = self.bounded(
            e.export_count.get() as usize,
            LEDGER_EXPORT_SIZE,
            field_at(start, offset_of!(LedgerEntry, export_count)),
        )?;
        let mut exports = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.at;
            let raw: LedgerExport = self.read()?;
            self.zero(
                &raw.reserved,
                field_at(at, offset_of!(LedgerExport, reserved)),
            )?;
            let name_len = usize::from(raw.name_len.get());
            if name_len > LEDGER_NAME_MAX {
                return fail(
                    field_at(at, offset_of!(LedgerExport, name_len)),
                    LedgerProblem::TooLong(name_len as u64),
                );
            }
            let name = self.text(name_len)?;
            self.pad()?;
            exports.push(Export {
                name,
                symbol: Symbol {
                    addr: Addr(raw.addr.get()),
                    size: raw.size.get(),
                },
            });
        }
        let n = self.bounded(
            e.hook_count.get() as usize,
            LEDGER_HOOK_SIZE,
            field_at(start, offset_of!(LedgerEntry, hook_count)),
        )?;
        let mut hooks = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.at;
            let raw: LedgerHook = self.read()?;
            self.zero(
                &raw.reserved,
                field_at(at, offset_of!(LedgerHook, reserved)),
            )?;
            let point = HookPoint::ALL
                .get(usize::from(raw.point))
                .copied()
                .ok_or_else(|| code(raw.point.into()))?;
            hooks.push(Hook {
                point,
                index: raw.index.get() as usize,
                addr: Addr(raw.addr.get()),
            });
        }
        if self.at.checked_sub(start) != Some(e.entry_size.get() as usize) {
            return fail(start, LedgerProblem::SizeMismatch);
        }
        Ok(Entry {
            name,
            identity: Identity {
                kind: id_kind,
                bytes: id,
            },
            depends,
            record_version,
            format: FormatVersion::new(e.format_major.get(), e.format_minor.get()),
            regions,
            sites,
            exports,
            hooks,
        })
    }
}

/// Splits a file into the bytes before a ledger trailer and the ledger's
/// bytes, when the file ends with a [`LedgerFooter`]. A file that does not
/// end with the footer's magic has no ledger.
///
/// ```
/// use xsplice_loader::ledger::{split_trailer, with_trailer, Ledger};
/// let ledger = Ledger::default().encode()?;
/// let file = with_trailer(b"\x7fELF...", &ledger)?;
/// assert_eq!(split_trailer(&file)?, (&b"\x7fELF..."[..], Some(&ledger[..])));
/// assert_eq!(split_trailer(b"\x7fELF...")?, (&b"\x7fELF..."[..], None));
/// # Ok::<(), xsplice_loader::ledger::LedgerError>(())
/// ```
pub fn split_trailer(file: &[u8]) -> Result<(&[u8], Option<&[u8]>), LedgerError> {
    let Some(footer_at) = file.len().checked_sub(LEDGER_FOOTER_SIZE) else {
        return Ok((file, None));
    };
    let Some(Ok(footer)) = file.get(footer_at..).map(LedgerFooter::read_from_bytes) else {
        return Ok((file, None));
    };
    if footer.magic != LEDGER_MAGIC {
        return Ok((file, None));
    }
    if footer.version.get() != LEDGER_VERSION {
        return fail(
            field_at(footer_at, offset_of!(LedgerFooter, version)),
            LedgerProblem::UnsupportedVersion(footer.version.get()),
        );
    }
    if footer.reserved.get() != 0 {
        return fail(
            field_at(footer_at, offset_of!(LedgerFooter, reserved)),
            LedgerProblem::NonZeroReserved,
        );
    }
    let size = footer.ledger_size.get() as usize;
    let Some(start) = footer_at.checked_sub(size) else {
        return fail(footer_at, LedgerProblem::BadSize(size as u64));
    };
    Ok((file.get(..start).unwrap_or(&[]), file.get(start..footer_at)))
}

/// `body` followed by `ledger` and its footer.
pub fn with_trailer(body: &[u8], ledger: &[u8]) -> Result<Vec<u8>, LedgerError> {
    let size = u32::try_from(ledger.len())
        .or_else(|_| fail(body.len(), LedgerProblem::TooLong(ledger.len() as u64)))?;
    let footer = LedgerFooter {
        ledger_size: size.into(),
        version: LEDGER_VERSION.into(),
        reserved: 0.into(),
        magic: LEDGER_MAGIC,
    };
    let size = body
        .len()
        .checked_add(ledger.len())
        .and_then(|n| n.checked_add(LEDGER_FOOTER_SIZE));
    let Some(size) = size else {
        return fail(body.len(), LedgerProblem::TooLong(ledger.len() as u64));
    };
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(body);
    out.extend_from_slice(ledger);
    out.extend_from_slice(footer.as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;
    use alloc::vec;

    fn sample() -> Ledger {
        Ledger {
            entries: vec![Entry {
                name: "fix_sum.o".into(),
                identity: Identity::build_id(&[0xab; 20]),
                depends: Some(vec![0xb1; 20]),
                record_version: RecordVersion::V3,
                format: FormatVersion::new(3, 0),
                regions: vec![
                    Placed {
                        kind: RegionKind::Text,
                        addr: Addr(0x40_2000),
                        size: 88,
                        original: Original::Fill(0xcc),
                    },
                    Placed {
                        kind: RegionKind::ReadOnly,
                        addr: Addr(0x41_4000),
                        size: 3,
                        original: Original::Bytes(vec![1, 2, 3]),
                    },
                ],
                sites: vec![Site {
                    record: RecordIndex(0),
                    name: "hv_sum".into(),
                    addr: Addr(0x40_1132),
                    old: vec![0x41, 0x55, 0x41, 0x54, 0x55],
                    new: vec![0xe9, 0xc9, 0x0e, 0, 0],
                }],
                exports: vec![Export {
                    name: "fix_hv_sum".into(),
                    symbol: Symbol {
                        addr: Addr(0x40_2000),
                        size: 88,
                    },
                }],
                hooks: vec![Hook {
                    point: HookPoint::PreRevert,
                    index: 0,
                    addr: Addr(0x40_2058),
                }],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let l = sample();
        let b = l.encode().unwrap();
        assert_eq!(b.len() % LEDGER_ALIGN, 0);
        assert_eq!(Ledger::decode(&b).unwrap(), l);
        let empty = Ledger::default().encode().unwrap();
        assert_eq!(empty.len(), LEDGER_HEADER_SIZE);
        assert!(Ledger::decode(&empty).unwrap().is_empty());
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_a_ledger() {
        let b = sample().encode().unwrap();
        for n in 0..b.len() {
            assert!(Ledger::decode(&b[..n]).is_err(), "truncated to {n}");
        }
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0xff;
            let _ = Ledger::decode(&m);
        }
    }

    #[test]
    fn a_lying_count_does_not_allocate() {
        let mut b = Ledger::default().encode().unwrap();
        b[offset_of!(LedgerHeader, entry_count)..][..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Ledger::decode(&b).unwrap_err(),
            LedgerError {
                offset: offset_of!(LedgerHeader, entry_count),
                problem: LedgerProblem::SizeMismatch
            }
        );
    }

    #[test]
    fn a_larger_header_reads_when_its_tail_is_zero() {
        let b = Ledger::default().encode().unwrap();
        let mut big = b.clone();
        big.extend_from_slice(&[0; 8]);
        big[offset_of!(LedgerHeader, header_size)..][..2].copy_from_slice(&40u16.to_le_bytes());
        big[offset_of!(LedgerHeader, total_size)..][..4].copy_from_slice(&40u32.to_le_bytes());
        assert!(Ledger::decode(&big).unwrap().is_empty());
        big[35] = 1;
        assert_eq!(
            Ledger::decode(&big).unwrap_err(),
            LedgerError {
                offset: 35,
                problem: LedgerProblem::NonZeroReserved
            }
        );
    }

    #[test]
    fn the_trailer_is_found_only_with_its_footer() {
        let l = sample().encode().unwrap();
        let file = with_trailer(b"ELF", &l).unwrap();
        assert_eq!(split_trailer(&file).unwrap(), (&b"ELF"[..], Some(&l[..])));
        let mut lying = file.clone();
        let at = lying.len() - LEDGER_FOOTER_SIZE;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            split_trailer(&lying).unwrap_err().problem,
            LedgerProblem::BadSize(u64::from(u32::MAX))
        );
        assert_eq!(
            split_trailer(b"no footer").unwrap(),
            (&b"no footer"[..], None)
        );
    }
}
