//! Why an engine action failed.

use alloc::string::String;
use alloc::vec::Vec;

use xsplice_abi::RecordIndex;

use super::{PayloadId, State};
use xsplice_abi::sections::HookPoint;

use crate::ledger::{Identity, LedgerError};
use crate::patch::PatchError;
use crate::{Addr, LoadError, TargetError};

/// Why an engine action failed. After any error the target's code is as it
/// was before the action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The payload did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// No payload has this id.
    #[error("{0} does not exist")]
    NoSuchPayload(PayloadId),
    /// The action is not allowed in the payload's state.
    #[error("{id} is {state:?}: cannot {action}")]
    WrongState {
        /// Payload.
        id: PayloadId,
        /// Its state.
        state: State,
        /// The refused action.
        action: &'static str,
    },
    /// Only the most recently applied payload can be reverted.
    #[error("{id} is not the top of the applied stack ({top} is)")]
    NotTop {
        /// Payload.
        id: PayloadId,
        /// The top.
        top: PayloadId,
    },
    /// The patch bytes for a record cannot be made.
    #[error("{record} `{name}`: {problem}")]
    Patch {
        /// Record.
        record: RecordIndex,
        /// Function name.
        name: String,
        /// What is wrong.
        problem: PatchError,
    },
    /// The bytes at the site differ from the record's EXPECT bytes.
    #[error("{record} `{name}`: bytes at {site} are {found:02x?}, expected {expected:02x?}")]
    ExpectMismatch {
        /// Record.
        record: RecordIndex,
        /// Function name.
        name: String,
        /// Site.
        site: Addr,
        /// Expected bytes.
        expected: Vec<u8>,
        /// Bytes found.
        found: Vec<u8>,
    },
    /// Two records, or this record and an applied payload, patch
    /// overlapping bytes.
    #[error("{record} `{name}`: site {site} overlaps a patch of {other} ({other_record})")]
    SiteConflict {
        /// Record.
        record: RecordIndex,
        /// Function name.
        name: String,
        /// Site.
        site: Addr,
        /// The payload already patching there (possibly this one).
        other: PayloadId,
        /// Its record.
        other_record: RecordIndex,
    },
    /// The payload depends on a build-id that is not below it.
    #[error("depends on build-id {}, but {what} has {}", hex(.wanted), .found.as_deref().map_or_else(|| String::from("none"), hex))]
    Dependency {
        /// The build-id the payload was built against.
        wanted: Vec<u8>,
        /// What is below it: the image or a payload.
        what: &'static str,
        /// That one's build-id.
        found: Option<Vec<u8>>,
    },
    /// A hook returned non-zero; the payload stays in its previous state.
    #[error("{point:?} hook {index} at {addr} returned {ret}")]
    HookFailed {
        /// Hook point.
        point: HookPoint,
        /// Index in its section.
        index: usize,
        /// Address.
        addr: Addr,
        /// Return value.
        ret: i32,
    },
    /// The target failed.
    #[error("target: {0}")]
    Target(#[from] TargetError),
    /// The same payload (by build-id, else by SHA-256) is already applied.
    #[error("{id} is already applied as `{applied}` ({identity})")]
    AlreadyApplied {
        /// The payload refused.
        id: PayloadId,
        /// The name of the applied copy.
        applied: String,
        /// The identity they share.
        identity: Identity,
    },
    /// The ledger the target keeps cannot be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The target's bytes at a site differ from what its ledger says was
    /// written there: something else changed the target.
    #[error("ledger entry `{name}`: site {site} of `{function}` holds {found:02x?}, the ledger wrote {written:02x?}")]
    LedgerMismatch {
        /// The ledger entry.
        name: String,
        /// Its function.
        function: String,
        /// The site.
        site: Addr,
        /// Bytes the ledger says were written.
        written: Vec<u8>,
        /// Bytes found.
        found: Vec<u8>,
    },
    /// The payload was restored from the ledger: its loaded form is not in
    /// this run (only [`Engine::entry`](super::Engine::entry) describes it).
    #[error("{0} was applied by an earlier run: its payload is not loaded here")]
    Restored(PayloadId),
}

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
