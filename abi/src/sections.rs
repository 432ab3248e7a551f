//! Section names of the payload format and of offline images.
//!
//! These names are part of the wire format: outside tools rely on them.

/// The patch-function records.
pub const FUNCS: &str = ".xsplice.funcs";
/// The ABI note (one ELF note, name [`crate::NOTE_NAME`], type [`crate::NOTE_TYPE`]).
pub const NOTE: &str = ".note.xsplice";
/// A GNU build-id note naming the image or payload this payload was built against.
pub const DEPENDS: &str = ".xsplice.depends";
/// The payload's own GNU build-id note.
pub const BUILD_ID: &str = ".note.gnu.build-id";
/// Vendor extension entries (see [`crate::vendor`]).
pub const VENDOR: &str = ".xsplice.vendor";
/// Exception-table entries (format 3.1, incompat ARCH; see [`crate::arch`]).
pub const EX_TABLE: &str = ".xsplice.ex_table";
/// Alternative-instruction entries (format 3.1, incompat ARCH).
pub const ALTINSTRUCTIONS: &str = ".xsplice.altinstructions";
/// The replacement code the alternative entries point at (alloc + exec).
pub const ALTINSTR_REPLACEMENT: &str = ".xsplice.altinstr_replacement";
/// Bug-frame entries (format 3.1, incompat ARCH).
pub const BUG_FRAMES: &str = ".xsplice.bug_frames";
/// Offline image arena for payload code (alloc + exec).
pub const ARENA_TEXT: &str = ".xsplice.arena.text";
/// Offline image arena for payload read-only data (alloc).
pub const ARENA_RODATA: &str = ".xsplice.arena.rodata";
/// Offline image arena for payload writable data (alloc + write).
pub const ARENA_DATA: &str = ".xsplice.arena.data";

/// The points at which payload hooks run. Each has a section holding an
/// array of relocated u64 pointers to `int fn(void)` (0 = success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub enum HookPoint {
    /// After the payload is loaded.
    Load,
    /// Before the payload is unloaded.
    Unload,
    /// Before apply, outside the stop-the-world section; failure aborts.
    PreApply,
    /// At apply, after the jumps are written.
    Apply,
    /// After apply.
    PostApply,
    /// Before revert; failure aborts.
    PreRevert,
    /// At revert, after the original bytes are restored.
    Revert,
    /// After revert.
    PostRevert,
}

impl HookPoint {
    /// Every hook point, in the order of the payload life cycle.
    pub const ALL: [HookPoint; 8] = [
        HookPoint::Load,
        HookPoint::PreApply,
        HookPoint::Apply,
        HookPoint::PostApply,
        HookPoint::PreRevert,
        HookPoint::Revert,
        HookPoint::PostRevert,
        HookPoint::Unload,
    ];

    /// The section holding this point's hooks.
    pub const fn section(self) -> &'static str {
        match self {
            HookPoint::Load => ".xsplice.hooks.load",
            HookPoint::Unload => ".xsplice.hooks.unload",
            HookPoint::PreApply => ".xsplice.hooks.preapply",
            HookPoint::Apply => ".xsplice.hooks.apply",
            HookPoint::PostApply => ".xsplice.hooks.postapply",
            HookPoint::PreRevert => ".xsplice.hooks.prerevert",
            HookPoint::Revert => ".xsplice.hooks.revert",
            HookPoint::PostRevert => ".xsplice.hooks.postrevert",
        }
    }

    /// The hook point whose section is `name`.
    ///
    /// ```
    /// use xsplice_abi::sections::HookPoint;
    /// assert_eq!(HookPoint::from_section(".xsplice.hooks.preapply"), Some(HookPoint::PreApply));
    /// assert_eq!(HookPoint::from_section(".xsplice.hooks.bogus"), None);
    /// ```
    pub fn from_section(name: &str) -> Option<HookPoint> {
        Self::ALL.into_iter().find(|h| h.section() == name)
    }
}

/// Name of the GNU build-id note that `.xsplice.depends` and
/// `.note.gnu.build-id` hold (namesz 4, NUL included).
pub const BUILD_ID_NOTE_NAME: &[u8; 4] = b"GNU\0";

/// Type of the GNU build-id note (`NT_GNU_BUILD_ID`).
pub const BUILD_ID_NOTE_TYPE: u32 = 3;

/// Bytes written at an x86-64 patch site: `e9 rel32` (`jmp rel32`, ±2 GiB).
pub const PATCH_SIZE_X86_64: usize = 5;

/// Bytes written at an AArch64 patch site: one `b imm26` (±128 MiB).
pub const PATCH_SIZE_AARCH64: usize = 4;
