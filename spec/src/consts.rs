//! Wire-format numbers the specification states but the layout table of
//! `xsplice-abi` does not carry (they are about ELF or about patching, not
//! about record bytes). The generator writes them into the header; the
//! specification states them in prose.

/// Longest function name, in bytes, not counting the terminating NUL.
pub use xsplice_abi::NAME_MAX;

/// `sh_entsize` of a v1 section holding the seed's first draft
/// (`pad[64]`): the 40-byte prefix plus 64 bytes of padding. It is read by
/// the size rule: everything past the 64-byte v1 layout must be zero.
pub use xsplice_abi::V1_DRAFT as V1_DRAFT_SIZE;

/// Bytes written at a patch site, per architecture (from `xsplice-abi`).
pub use xsplice_abi::sections::{PATCH_SIZE_AARCH64, PATCH_SIZE_X86_64};

/// The GNU build-id note of `.xsplice.depends` (from `xsplice-abi`).
pub use xsplice_abi::sections::{
    BUILD_ID_NOTE_NAME as DEPENDS_NOTE_NAME, BUILD_ID_NOTE_TYPE as DEPENDS_NOTE_TYPE,
};

/// A section name of the format, with its C macro and a one-line summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionName {
    /// The section name, from [`xsplice_abi::sections`].
    pub name: &'static str,
    /// The C macro naming it in the generated header.
    pub c_macro: String,
    /// One-line summary of its contents.
    pub contents: &'static str,
}

/// Every section name of the format, payload sections first, then hooks in
/// life-cycle order, then offline-image arenas. The names come from
/// [`xsplice_abi::sections`]; only the summaries are written here.
pub fn sections() -> Vec<SectionName> {
    use xsplice_abi::sections as s;
    let fixed: [(&str, &str, &str); 12] = [
        (
            s::FUNCS,
            "FUNCS",
            "the patch-function records, all of one version and size",
        ),
        (
            s::NOTE,
            "NOTE",
            "the ABI note (name `XSPLICE`, type 1); required from format 2.0",
        ),
        (
            s::DEPENDS,
            "DEPENDS",
            "a GNU build-id note naming the image or payload this payload was built against",
        ),
        (
            s::BUILD_ID,
            "BUILD_ID",
            "the payload's own GNU build-id note",
        ),
        (s::VENDOR, "VENDOR", "vendor extension entries"),
        (
            s::EX_TABLE,
            "EX_TABLE",
            "exception-table entries, 8 bytes each (format 3.1, incompat ARCH)",
        ),
        (
            s::ALTINSTRUCTIONS,
            "ALTINSTRUCTIONS",
            "alternative-instruction entries, 12 bytes each (format 3.1, incompat ARCH)",
        ),
        (
            s::ALTINSTR_REPLACEMENT,
            "ALTINSTR_REPLACEMENT",
            "the replacement code alternatives point at (alloc + exec)",
        ),
        (
            s::BUG_FRAMES,
            "BUG_FRAMES",
            "bug-frame entries, 16 bytes each (format 3.1, incompat ARCH)",
        ),
        (
            s::ARENA_TEXT,
            "ARENA_TEXT",
            "offline image: arena for payload code (alloc + exec)",
        ),
        (
            s::ARENA_RODATA,
            "ARENA_RODATA",
            "offline image: arena for payload read-only data (alloc)",
        ),
        (
            s::ARENA_DATA,
            "ARENA_DATA",
            "offline image: arena for payload writable data (alloc + write)",
        ),
    ];
    let mut out: Vec<SectionName> = fixed
        .iter()
        .take(5)
        .map(|&(name, m, contents)| SectionName {
            name,
            c_macro: format!("XSPLICE_SEC_{m}"),
            contents,
        })
        .collect();
    for hook in xsplice_abi::sections::HookPoint::ALL {
        let name = hook.section();
        let point = name.rsplit('.').next().unwrap_or(name);
        out.push(SectionName {
            name,
            c_macro: format!("XSPLICE_SEC_HOOKS_{}", point.to_ascii_uppercase()),
            contents: hook_summary(hook),
        });
    }
    out.extend(
        fixed
            .iter()
            .skip(5)
            .map(|&(name, m, contents)| SectionName {
                name,
                c_macro: format!("XSPLICE_SEC_{m}"),
                contents,
            }),
    );
    out
}

fn hook_summary(hook: xsplice_abi::sections::HookPoint) -> &'static str {
    use xsplice_abi::sections::HookPoint as H;
    match hook {
        H::Load => "hooks run after the payload is loaded",
        H::PreApply => "hooks run before apply; a failure aborts the apply, nothing written",
        H::Apply => "hooks run after the patch sites are written",
        H::PostApply => "hooks run after apply completes",
        H::PreRevert => "hooks run before revert; a failure aborts the revert, nothing written",
        H::Revert => "hooks run after the original bytes are restored",
        H::PostRevert => "hooks run after revert completes",
        H::Unload => "hooks run before the payload is unloaded",
        _ => "hooks of a later format version",
    }
}
