//! The command line's error: one message (printed as `error: ...`) and
//! optional hints (`hint: ...`), and the hints for the library errors.

use std::path::Path;

use xsplice_loader::engine::EngineError;
use xsplice_loader::image::ImageError;
use xsplice_loader::signature::SignatureError;
use xsplice_loader::{
    HeaderProblem, LoadError, NoteProblem, RecordProblem, RelocProblem, SectionProblem,
    SymbolProblem,
};

/// A failed command: exit status 1.
#[derive(Debug)]
pub(crate) struct CliError {
    /// What went wrong and where, on one line.
    pub message: String,
    /// What to try, one line each.
    pub hints: Vec<String>,
    /// Text to print on stdout before the error (e.g. `check --json`).
    pub stdout: Option<String>,
}

impl CliError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hints: Vec::new(),
            stdout: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

/// A payload that failed to load.
pub(crate) fn load_error(path: &Path, e: &LoadError, image: Option<&Path>) -> CliError {
    let err = CliError::new(format!("{}: {e}", path.display()));
    let hint = match e {
        LoadError::Header(HeaderProblem::NotElf) => Some(
            "a payload is an ELF64 relocatable object, as built by `gcc -c` (see spec/SPEC.md)"
                .to_string(),
        ),
        LoadError::Header(HeaderProblem::NotRelocatable(_)) => Some(
            "a payload is a relocatable object (`gcc -c`); an executable to patch goes to --image"
                .to_string(),
        ),
        LoadError::MissingSection(s) if *s == xsplice_abi::sections::FUNCS => {
            Some(if lto_object(path) {
                "the object was built with -flto: it holds gcc's intermediate code \
                 (`.gnu.lto_*` sections), not the records and machine code; build the payload \
                 with -fno-lto (or -ffat-lto-objects)"
                    .to_string()
            } else {
                "a payload holds its records in `.xsplice.funcs` (see spec/SPEC.md)".to_string()
            })
        }
        LoadError::Note(NoteProblem::Count(0)) => Some(
            "the ABI note is namesz 8 (\"XSPLICE\" and its NUL), descsz 24, type 1, then the \
             name and the descriptor, each padded to 4 bytes (spec/SPEC.md section 6)"
                .to_string(),
        ),
        LoadError::Note(NoteProblem::MissingForVersion(_)) => Some(
            "v2 and v3 payloads need the ABI note `.note.xsplice` (see spec/SPEC.md)".to_string(),
        ),
        LoadError::Record {
            name,
            problem: problem @ (RecordProblem::Unresolved | RecordProblem::NoSuchLocal(_)),
            ..
        } => Some(match image {
            Some(img) => unresolved_hint(img, name, Some(problem)),
            None => "pass --image IMAGE to resolve symbols against an image".to_string(),
        }),
        LoadError::Symbol {
            name,
            problem: SymbolProblem::Unresolved,
            ..
        } if name == "__tls_get_addr" => Some(TLS_HINT.to_string()),
        LoadError::Relocation {
            rtype,
            problem: RelocProblem::Unsupported(_),
            ..
        } if ["TPOFF", "TLS", "DTPMOD"].iter().any(|t| rtype.contains(t)) => {
            Some(TLS_HINT.to_string())
        }
        LoadError::Symbol {
            name,
            problem: SymbolProblem::Unresolved,
            ..
        } => Some(match image {
            Some(img) => unresolved_hint(img, name, None),
            None => "pass --image IMAGE to resolve symbols against an image".to_string(),
        }),
        LoadError::Relocation {
            problem: RelocProblem::PointerLeavesSection { .. },
            ..
        } => Some(
            "a record or hook pointer must point inside the section of the symbol it is \
             relocated against (spec/SPEC.md, section 3): name the string or function \
             itself, not a neighbour plus an offset"
                .to_string(),
        ),
        LoadError::Relocation {
            problem: RelocProblem::Overflow { .. } | RelocProblem::AbsoluteInPositionIndependent,
            ..
        } if image.is_none() => Some(format!(
                "without --image the payload is laid out at dry-run addresses and undefined \
                 symbols resolve to {}; pass --image IMAGE to use real addresses",
            xsplice_loader::PLACEHOLDER
        )),
        LoadError::Signature(SignatureError::Unsigned) => Some(
            "sign it with `xsplice sign --key KEY PAYLOAD -o OUT` (see spec/SPEC.md, section 15)"
                .to_string(),
        ),
        LoadError::Signature(SignatureError::UnknownKey { .. }) => Some(
            "pass the signer's public key with --trusted-key PUB if you trust it".to_string(),
        ),
        LoadError::Relocation {
            rtype,
            problem: RelocProblem::AbsoluteInPositionIndependent,
            ..
        } => Some(absolute_hint(rtype).to_string()),
        LoadError::Arch {
            problem: xsplice_loader::ArchProblem::NotHonoured,
            ..
        } => Some(
            "an offline image and a process patched by PID (--pid) apply alternatives but \
             have no fault or trap handler to register exception tables and bug frames with \
             (spec/SPEC.md section 17.6): build the payload without them"
                .to_string(),
        ),
        LoadError::TooLarge { .. } => Some("raise the limit with --max-size BYTES".to_string()),
        LoadError::Header(HeaderProblem::TooManySections(_)) => {
            Some("raise the limit with --max-sections N".to_string())
        }
        LoadError::Section {
            problem: SectionProblem::AllocLimit(_),
            ..
        } => Some("raise the limit with --max-alloc BYTES".to_string()),
        LoadError::Section {
            problem: SectionProblem::NameTooLong(_),
            ..
        }
        | LoadError::Symbol {
            problem: SymbolProblem::NameTooLong(_),
            ..
        } => Some("raise the limit with --max-name BYTES".to_string()),
        LoadError::Target(_) if image.is_some() => Some(
            "the image's arenas (`.xsplice.arena.text`, `.rodata`, `.data`) are missing or too small"
                .to_string(),
        ),
        _ => None,
    };
    match hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

/// A payload using thread-local storage: what gcc emits for `__thread`.
const TLS_HINT: &str = "thread-local variables (`__thread`, `_Thread_local`) are not supported \
     in payloads: a loaded payload cannot add a TLS block to threads that already run; keep \
     the state in a plain global, or in the image";

/// Why `name` did not resolve in the executable `img`, from its symbol
/// table: a name the executable imports from a shared library, or defines
/// only as several static symbols, is not simply missing. `record` is the
/// record's problem when a record's function did not resolve (else an
/// undefined symbol of the payload did not).
fn unresolved_hint(img: &Path, name: &str, record: Option<&RecordProblem>) -> String {
    let presence = crate::files::read(img, crate::files::IMAGE_LIMIT, "image")
        .ok()
        .and_then(|bytes| xsplice_loader::image::ImageTarget::new(bytes).ok())
        .map(|t| t.symbol_presence(name))
        .unwrap_or_default();
    let img = img.display();
    let n = presence.locals;
    match record {
        Some(RecordProblem::NoSuchLocal(_)) if n > 0 => format!(
            "`{img}` has {n} local (static) definition{} of `{name}`: sympos counts them \
             from 1 to {n}, in symbol-table order",
            if n == 1 { "" } else { "s" }
        ),
        Some(RecordProblem::NoSuchLocal(_)) if presence.global => {
            format!("`{name}` is a global symbol of `{img}`: name it with sympos 0 (no SYMPOS)")
        }
        Some(_) if n > 1 => format!(
            "`{img}` has {n} local (static) definitions of `{name}` and no global one: \
             pick one with SYMPOS (a v3 record, incompat bit 2, sympos 1 to {n})"
        ),
        _ if presence.imported => format!(
            "`{img}` imports `{name}` from a shared library and has no PLT entry that calls \
             it (a variable, or a function of an executable built with -fno-plt), so its \
             address is only known at run time: a payload reaches shared-library functions \
             through the executable's PLT entries only (link the image statically, or reach \
             it through a function the image defines)"
        ),
        None if name == "__stack_chk_fail" => format!(
            "the payload was built with a stack protector (`-fstack-protector*`, some \
             distributions' default) and `{img}` neither defines `__stack_chk_fail` nor calls \
             it through a PLT entry: build the payload with -fno-stack-protector"
        ),
        _ => format!(
            "`{img}` does not define it in its .symtab: was the payload built for this image?"
        ),
    }
}

/// Whether the payload file is a gcc LTO object (its section names start
/// with `.gnu.lto_`): only read to explain a refusal.
fn lto_object(path: &Path) -> bool {
    crate::files::read(path, crate::files::payload_limit(), "payload")
        .is_ok_and(|b| b.windows(9).any(|w| w == b".gnu.lto_"))
}

/// What to rebuild when a payload holds an absolute address and the image
/// is position-independent, by architecture (told by the type's name).
fn absolute_hint(rtype: &str) -> &'static str {
    if rtype.starts_with("AARCH64_") {
        "on AArch64, -fno-pic, -fpic, -fPIC and -fpie code reaches symbols PC-relatively \
         (the loader relaxes GOT loads); absolute addresses come from -mcmodel=large \
         literal pools and pointers in initialised data: rebuild the payload without them, \
         or the image with -no-pie"
    } else {
        "rebuild the payload with -fpic or -fpie (the loader turns its GOT loads into \
         PC-relative forms) and without pointers in initialised data, or the image with -no-pie"
    }
}

/// A payload that loaded but failed a check, apply or replace.
pub(crate) fn engine_error(path: &Path, e: &EngineError, image: Option<&Path>) -> CliError {
    if let EngineError::Load(l) = e {
        return load_error(path, l, image);
    }
    let err = CliError::new(format!("{}: {e}", path.display()));
    match e {
        EngineError::Dependency { .. } => err.hint(
            "the payload was built against another image or payload (`.xsplice.depends`); \
             rebuild it against this one, apply the payloads in the order they were built, \
             or pass --replace to apply the last one directly on the image",
        ),
        EngineError::ExpectMismatch { .. } => err.hint(
            "the image's code at the patch site differs from what the payload was built against",
        ),
        EngineError::SiteConflict { .. } => {
            err.hint("use --replace to revert the earlier payloads before applying the last one")
        }
        EngineError::AlreadyApplied { .. } => err.hint(
            "`xsplice list` shows what is applied; revert it first to apply it again",
        ),
        EngineError::NotTop { .. } => {
            err.hint("only the top of the stack can be reverted: revert the payloads above it first, or use --all")
        }
        _ => err,
    }
}

/// An image that cannot be used.
pub(crate) fn image_error(path: &Path, e: &ImageError) -> CliError {
    let err = CliError::new(format!("{}: {e}", path.display()));
    match e {
        ImageError::Arena { name, .. } => {
            let err = err.hint(
                "an image for offline patching reserves `.xsplice.arena.text` (AX), \
                 `.xsplice.arena.rodata` (A) and `.xsplice.arena.data` (WA), PROGBITS",
            );
            if *name == xsplice_abi::sections::ARENA_TEXT {
                // What an outsider writing C meets: gcc gives a variable's
                // section the data flags `aw`, whatever its name.
                err.hint(
                    "gcc marks a C array placed in a section `WA`, never executable: reserve the \
                     text arena in assembly, with a top-level `__asm__` of the lines \
                     `.pushsection .xsplice.arena.text,\"ax\",@progbits`, `.balign 4096`, \
                     `.zero 65536` and `.popsection`",
                )
            } else {
                err
            }
        }
        _ => err,
    }
}
