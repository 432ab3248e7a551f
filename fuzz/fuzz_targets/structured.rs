//! Structure-aware mutations of the gcc-built fixtures: the input picks a
//! shipped payload and a list of field edits (an ELF header field, a
//! section header field, a symbol field, a relocation field, or a word of
//! `.xsplice.funcs`), so every other byte stays gcc's and the loader is
//! driven past its framing checks into layout, resolution, relocation,
//! record decoding and the engine. An edited payload that loads as a dry
//! run is also loaded and checked on the example image.
//!
//! Input: one byte (the fixture), then 12-byte edits:
//! `[what][index: u16][field][value: u64]`, all little-endian; a `field`
//! with its top bit set takes only the value's low byte (small numbers,
//! which most fields want).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_loader::engine::Engine;
use xsplice_loader::image::ImageTarget;
use xsplice_loader::{DryRun, LoadOptions};

static HV: &[u8] = include_bytes!("../../examples/hypervisor/hv");

macro_rules! fixtures {
    ($($path:literal),* $(,)?) => { [$(include_bytes!(concat!("../../", $path)) as &[u8]),*] };
}
static FIXTURES: [&[u8]; 20] = fixtures![
    "compat-tests/fixtures/features_v3-aarch64-nopic.o",
    "compat-tests/fixtures/features_v3-aarch64-pic.o",
    "compat-tests/fixtures/features_v3-large.o",
    "compat-tests/fixtures/features_v3-nopic.o",
    "compat-tests/fixtures/features_v3-pic.o",
    "compat-tests/fixtures/live_v1-large.o",
    "compat-tests/fixtures/live_v1-nopic.o",
    "compat-tests/fixtures/live_v1-pic.o",
    "compat-tests/fixtures/live_v2-large.o",
    "compat-tests/fixtures/live_v2-nopic.o",
    "compat-tests/fixtures/live_v2-pic.o",
    "compat-tests/fixtures/live_v3-aarch64-nopic.o",
    "compat-tests/fixtures/live_v3-aarch64-pic.o",
    "compat-tests/fixtures/live_v3-large.o",
    "compat-tests/fixtures/live_v3-nopic.o",
    "compat-tests/fixtures/live_v3-pic.o",
    "examples/hypervisor/fix.o",
    "examples/hypervisor/fix_sum.o",
    "examples/hypervisor/fix_v1.o",
    "examples/hypervisor/fix_version.o",
];

/// (offset, width) of the fields of an ELF64 section header.
const SHDR_FIELDS: [(usize, usize); 10] = [
    (0, 4),
    (4, 4),
    (8, 8),
    (16, 8),
    (24, 8),
    (32, 8),
    (40, 4),
    (44, 4),
    (48, 8),
    (56, 8),
];
/// ... of a symbol (name, info, other, shndx, value, size).
const SYM_FIELDS: [(usize, usize); 6] = [(0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8)];
/// ... of a RELA entry (offset, info: type then symbol, addend).
const RELA_FIELDS: [(usize, usize); 4] = [(0, 8), (8, 4), (12, 4), (16, 8)];
/// ... of the ELF header past `e_ident`.
const EHDR_FIELDS: [(usize, usize); 13] = [
    (16, 2),
    (18, 2),
    (20, 4),
    (24, 8),
    (32, 8),
    (40, 8),
    (48, 4),
    (52, 2),
    (54, 2),
    (56, 2),
    (58, 2),
    (60, 2),
    (62, 2),
];

fn get(b: &[u8], at: usize, width: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(src) = b.get(at..at + width) {
        v[..width].copy_from_slice(src);
    }
    u64::from_le_bytes(v)
}

fn put(b: &mut [u8], at: usize, width: usize, value: u64) {
    if let Some(dst) = b.get_mut(at..at + width) {
        dst.copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// The gcc layout, read before any edit: the section headers, and the
/// entries of the symbol table, relocation tables and records.
struct Map {
    shdrs: Vec<usize>,
    syms: Vec<usize>,
    relas: Vec<usize>,
    funcs: Option<(usize, usize)>,
}

fn map(b: &[u8]) -> Map {
    let shoff = get(b, 40, 8) as usize;
    let shnum = get(b, 60, 2) as usize;
    let shdrs: Vec<usize> = (0..shnum).map(|i| shoff + 64 * i).collect();
    let shstr = shdrs
        .get(get(b, 62, 2) as usize)
        .map_or(0, |&h| get(b, h + 24, 8) as usize);
    let (mut syms, mut relas, mut funcs) = (Vec::new(), Vec::new(), None);
    for &h in &shdrs {
        let (typ, off, size) = (
            get(b, h + 4, 4),
            get(b, h + 24, 8) as usize,
            get(b, h + 32, 8) as usize,
        );
        let entries = |n: usize| (0..size / n).map(move |i| off + n * i);
        match typ {
            2 => syms.extend(entries(24)),
            4 => relas.extend(entries(24)),
            _ => {}
        }
        let name = shstr + get(b, h, 4) as usize;
        if b.get(name..name + 15) == Some(b".xsplice.funcs\0") {
            funcs = Some((off, size));
        }
    }
    Map {
        shdrs,
        syms,
        relas,
        funcs,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, edits)) = data.split_first() else {
        return;
    };
    let mut b = FIXTURES[usize::from(pick) % FIXTURES.len()].to_vec();
    let m = map(&b);
    for e in edits.chunks_exact(12) {
        let index = usize::from(u16::from_le_bytes([e[1], e[2]]));
        let field = usize::from(e[3] & 0x7f);
        let mut value = u64::from_le_bytes(e[4..12].try_into().unwrap_or_default());
        if e[3] & 0x80 != 0 {
            value &= 0xff;
        }
        let entry = |table: &[usize], fields: &[(usize, usize)]| {
            let base = *table.get(index % table.len().max(1))?;
            let (off, width) = fields[field % fields.len()];
            Some((base + off, width))
        };
        let at = match e[0] % 5 {
            0 => Some(EHDR_FIELDS[field % EHDR_FIELDS.len()]),
            1 => entry(&m.shdrs, &SHDR_FIELDS),
            2 => entry(&m.syms, &SYM_FIELDS),
            3 => entry(&m.relas, &RELA_FIELDS),
            _ => m
                .funcs
                .filter(|&(_, size)| size >= 8)
                .map(|(off, size)| (off + (index * 8) % (size & !7), 8)),
        };
        if let Some((at, width)) = at {
            put(&mut b, at, width, value);
        }
    }
    if DryRun::default().load(&b, &LoadOptions::default()).is_err() {
        return;
    }
    let target = ImageTarget::new(HV.to_vec()).expect("the example image loads");
    let mut engine = Engine::new(target, LoadOptions::default());
    if let Ok(id) = engine.load("structured", &b) {
        let _ = engine.check(id);
    }
});
