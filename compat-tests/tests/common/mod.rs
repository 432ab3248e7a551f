//! Inputs shared by the hostile-input tests: the shipped payloads, the
//! regression corpus of `malformed/`, and payloads grown from a gcc-built
//! fixture into the shapes of issue 12's hostile list (the tables are
//! appended at the end of the file, the rest is gcc's bytes).
#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A missing tool: a loud skip, or a failure under `XSPLICE_REQUIRE_TOOLS=1`
/// (CI), where a skipped check would pass while checking nothing.
pub fn skip(what: &str) {
    assert!(
        std::env::var("XSPLICE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{what} is missing and XSPLICE_REQUIRE_TOOLS=1 (CI) forbids skipping"
    );
    eprintln!("SKIPPED: {what} not found");
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file of `dir` whose name ends with `ext`, sorted, with its bytes.
fn files(dir: &Path, ext: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read(&p),
            )
        })
        .collect();
    v.sort();
    v
}

/// The gcc-built payloads: `compat-tests/fixtures/*.o` and the example's.
pub fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut v = files(&root().join("compat-tests/fixtures"), ".o");
    v.extend(files(&root().join("examples/hypervisor"), ".o"));
    assert!(v.len() >= 20, "fixtures missing");
    v
}

/// The regression corpus: every input a fuzzer found (see `malformed/README.md`).
pub fn malformed() -> Vec<(String, Vec<u8>)> {
    files(&root().join("compat-tests/malformed"), ".bin")
}

pub fn fixture(name: &str) -> Vec<u8> {
    read(&root().join("compat-tests/fixtures").join(name))
}

// ---- a minimal ELF64 section-table editor ---------------------------------

const SHDR: usize = 64;

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()).into()
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A section header, as the fields this editor changes.
#[derive(Clone)]
pub struct Shdr(pub [u8; SHDR]);

impl Shdr {
    pub fn name(&self) -> u32 {
        u32_at(&self.0, 0)
    }
    pub fn set_name(&mut self, v: u32) {
        self.0[0..4].copy_from_slice(&v.to_le_bytes());
    }
    pub fn set_type(&mut self, v: u32) {
        self.0[4..8].copy_from_slice(&v.to_le_bytes());
    }
    pub fn set_flags(&mut self, v: u64) {
        self.0[8..16].copy_from_slice(&v.to_le_bytes());
    }
    pub fn offset(&self) -> usize {
        u64_at(&self.0, 24) as usize
    }
    pub fn size(&self) -> usize {
        u64_at(&self.0, 32) as usize
    }
    /// Points the section at `len` bytes at `offset`.
    pub fn place(&mut self, offset: usize, len: usize) {
        self.0[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
        self.0[32..40].copy_from_slice(&(len as u64).to_le_bytes());
    }
}

/// An ELF64 relocatable object split into its bytes and section headers;
/// `finish` appends the (edited) headers at the end.
pub struct Elf {
    pub bytes: Vec<u8>,
    pub sections: Vec<Shdr>,
    shstrndx: usize,
}

impl Elf {
    pub fn parse(bytes: Vec<u8>) -> Elf {
        let shoff = u64_at(&bytes, 0x28) as usize;
        let shnum = u16_at(&bytes, 0x3c);
        let shstrndx = u16_at(&bytes, 0x3e);
        let sections = (0..shnum)
            .map(|i| Shdr(bytes[shoff + SHDR * i..][..SHDR].try_into().unwrap()))
            .collect();
        Elf {
            bytes,
            sections,
            shstrndx,
        }
    }

    pub fn contents(&self, i: usize) -> &[u8] {
        let s = &self.sections[i];
        &self.bytes[s.offset()..s.offset() + s.size()]
    }

    /// The index of the section called `name`.
    pub fn find(&self, name: &str) -> usize {
        let names = self.contents(self.shstrndx);
        (0..self.sections.len())
            .find(|&i| {
                let at = self.sections[i].name() as usize;
                names[at..].split(|&b| b == 0).next() == Some(name.as_bytes())
            })
            .unwrap_or_else(|| panic!("no section {name}"))
    }

    /// Appends new contents for section `i`: its old bytes, then `extra`.
    /// Returns the offset of `extra` within the section.
    pub fn grow(&mut self, i: usize, extra: &[u8]) -> usize {
        let old = self.contents(i).to_vec();
        while self.bytes.len() % 8 != 0 {
            self.bytes.push(0);
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&old);
        self.bytes.extend_from_slice(extra);
        self.sections[i].place(at, old.len() + extra.len());
        old.len()
    }

    /// Grows the section-name table by `extra`; returns where it starts.
    pub fn grow_names(&mut self, extra: &[u8]) -> usize {
        self.grow(self.shstrndx, extra)
    }

    pub fn finish(mut self) -> Vec<u8> {
        while self.bytes.len() % 8 != 0 {
            self.bytes.push(0);
        }
        let shoff = self.bytes.len() as u64;
        let shnum = u16::try_from(self.sections.len()).expect("fits e_shnum");
        for s in &self.sections {
            self.bytes.extend_from_slice(&s.0);
        }
        self.bytes[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        self.bytes[0x3c..0x3e].copy_from_slice(&shnum.to_le_bytes());
        self.bytes
    }
}

// ---- issue 12's hostile shapes ---------------------------------------------

/// `count` extra sections, all named by one `name_len`-byte string
/// (`flags` 0: never loaded; `SHF_ALLOC`: loaded, size 0).
pub fn sections_sharing_a_long_name(count: usize, name_len: usize, flags: u64) -> Vec<u8> {
    let mut elf = Elf::parse(fixture("live_v3-nopic.o"));
    let mut name = vec![b'n'; name_len];
    name.push(0);
    let at = elf.grow_names(&name) as u32;
    let mut extra = elf.sections[elf.find(".comment")].clone();
    extra.set_name(at);
    extra.set_type(1); // SHT_PROGBITS
    extra.set_flags(flags);
    extra.place(0, 0);
    elf.sections.extend(std::iter::repeat_n(extra, count));
    elf.finish()
}

/// `count` extra global symbols, undefined or (`defined`) at the start of
/// `.text`; the `i`-th is named by the bytes of one shared string from
/// offset `name_at(i)` to its next NUL (the string is `text`).
pub fn global_symbols(
    count: usize,
    text: &[u8],
    name_at: impl Fn(usize) -> usize,
    defined: bool,
) -> Vec<u8> {
    let mut elf = Elf::parse(fixture("live_v3-nopic.o"));
    let strtab = elf.find(".strtab");
    let shndx = if defined { elf.find(".text") as u16 } else { 0 };
    let base = elf.grow(strtab, text);
    let mut syms = Vec::with_capacity(24 * count);
    for i in 0..count {
        let name = u32::try_from(base + name_at(i)).unwrap();
        syms.extend_from_slice(&name.to_le_bytes());
        syms.push(0x10); // STB_GLOBAL, STT_NOTYPE
        syms.push(0); // STV_DEFAULT
        syms.extend_from_slice(&shndx.to_le_bytes());
        syms.extend_from_slice(&[0; 16]); // value, size
    }
    let symtab = elf.find(".symtab");
    elf.grow(symtab, &syms);
    elf.finish()
}

/// 40,000 undefined symbols whose names are different tails of one 1 MB
/// string (issue 12: the dry run copied each, multi-GiB).
pub fn tails_of_one_long_name() -> Vec<u8> {
    let mut text = vec![b't'; 1 << 20];
    text.push(0);
    global_symbols(40_000, &text, |i| i, false)
}

/// 40,000 global symbols (undefined, or `defined` in `.text`: exports)
/// with distinct names of about `len` bytes each, all within the name
/// limit: about the most name bytes a payload under 2 MiB can make the
/// loader copy (a dry run keeps every unresolved name, a payload every
/// export's). The string is cut by a NUL every
/// `len + 1` bytes into pieces ending with their number, and each name is
/// a tail of one piece (so no two are equal).
pub fn many_long_distinct_names(len: usize, defined: bool) -> Vec<u8> {
    let pieces = (1 << 20) / (len + 1);
    let text: Vec<u8> = (0..pieces)
        .flat_map(|p| {
            let mut piece = vec![b'x'; len - 8];
            piece.extend_from_slice(format!("{p:08}").as_bytes());
            piece.push(0);
            piece
        })
        .collect();
    let name_at = move |i| (i % pieces) * (len + 1) + (i / pieces) % len;
    global_symbols(40_000, &text, name_at, defined)
}
