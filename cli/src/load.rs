//! Loading a payload the two ways `inspect` and `check` do: against nothing
//! (a dry run) or against an executable image through the engine.

use std::path::Path;

use xsplice_loader::engine::{Engine, PayloadId};
use xsplice_loader::image::ImageTarget;
use xsplice_loader::{DryRun, LoadOptions, LoadedPayload};

use crate::error::{engine_error, image_error, load_error, CliError};
use crate::files;

/// A payload loaded for `inspect` or `check`.
pub(crate) struct Loaded {
    /// The loaded payload.
    pub payload: LoadedPayload,
    /// Dry run: the names resolved to the placeholder. `None` with an image.
    pub unresolved: Option<Vec<String>>,
    /// With an image: the image path, its build-id and the engine holding
    /// the payload (loaded, not applied).
    pub image: Option<ImageLoad>,
}

/// The image side of a [`Loaded`].
pub(crate) struct ImageLoad {
    /// Path of the image.
    pub path: String,
    /// Its build-id.
    pub build_id: Option<Vec<u8>>,
    /// Names of the payloads its ledger says are applied, bottom first.
    pub applied: Vec<String>,
    /// The engine over the image, holding the payload.
    pub engine: Engine<ImageTarget>,
    /// The payload's id in the engine.
    pub id: PayloadId,
}

/// Loads `payload` against nothing: undefined symbols resolve to
/// [`xsplice_loader::PLACEHOLDER`] and regions get synthetic addresses.
pub(crate) fn dry(payload: &Path, opts: &LoadOptions) -> Result<Loaded, CliError> {
    let bytes = files::read(payload, opts.max_size as u64, "payload")?;
    let mut dry = DryRun::default();
    let loaded = dry
        .load(&bytes, opts)
        .map_err(|e| load_error(payload, &e, None))?;
    Ok(Loaded {
        payload: loaded,
        unresolved: Some(dry.unresolved().collect()),
        image: None,
    })
}

/// Opens an executable image for offline patching.
pub(crate) fn open_image(image: &Path) -> Result<ImageTarget, CliError> {
    let bytes = files::read(image, files::IMAGE_LIMIT, "image")?;
    ImageTarget::new(bytes).map_err(|e| image_error(image, &e))
}

/// An engine over an image, with the stack its ledger records restored.
pub(crate) fn open_engine(
    target: ImageTarget,
    image: &Path,
    opts: &LoadOptions,
) -> Result<Engine<ImageTarget>, CliError> {
    Engine::open(target, opts.clone()).map_err(|e| {
        CliError::new(format!("{}: {e}", image.display())).hint(
            "the image's ledger (what earlier runs applied) does not match the image; \
             start again from the unpatched image",
        )
    })
}

/// Loads `payload` into an engine over `image`, without applying it.
pub(crate) fn with_image(
    payload: &Path,
    image: &Path,
    opts: &LoadOptions,
) -> Result<Loaded, CliError> {
    let target = open_image(image)?;
    let build_id = xsplice_loader::engine::Target::build_id(&target).map(<[u8]>::to_vec);
    let bytes = files::read(payload, opts.max_size as u64, "payload")?;
    let mut engine = open_engine(target, image, opts)?;
    let applied = engine
        .applied()
        .iter()
        .filter_map(|id| engine.name(*id).ok().map(String::from))
        .collect();
    let id = engine
        .load(&files::display_name(payload), &bytes)
        .map_err(|e| engine_error(payload, &e, Some(image)))?;
    let loaded = engine
        .payload(id)
        .map_err(|e| engine_error(payload, &e, Some(image)))?
        .clone();
    Ok(Loaded {
        payload: loaded,
        unresolved: None,
        image: Some(ImageLoad {
            path: image.display().to_string(),
            build_id,
            applied,
            engine,
            id,
        }),
    })
}

/// Loads either way, with `opts` (the signature policy and trusted keys).
pub(crate) fn load(
    payload: &Path,
    image: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Loaded, CliError> {
    match image {
        Some(img) => with_image(payload, img, opts),
        None => dry(payload, opts),
    }
}
