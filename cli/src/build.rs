//! `xsplice build`: a payload from an object file of replacement functions,
//! through `xsplice_loader::write::PayloadBuilder`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Args;
use xsplice_abi::RecordVersion;
use xsplice_loader::engine::{Engine, Target as _};
use xsplice_loader::image::ImageTarget;
use xsplice_loader::write::{NewCode, OldTarget, Patch, PayloadBuilder, WriteError};
use xsplice_loader::{Addr, LoadOptions, SymbolSource as _};

use crate::error::{engine_error, CliError};
use crate::{files, load, Output, Verbosity};

/// `xsplice build`.
#[derive(Debug, Args)]
#[command(
    after_help = "PATCH is `OLD=NEW[,key=value...]`: OLD is the function to patch (resolved \
by name in the target), NEW the replacement function's symbol in OBJECT. For a NOP record give \
`OLD,nop=N` (no NEW). Keys: nop=N (NOP out N bytes), offset=N (PATCH_OFFSET), sympos=N (SYMPOS), \
expect=HEX or expect=image:N (EXPECT; image:N reads N bytes at the site from --image), \
old-size=N (default with --image: the symbol's size), new-size=N (default: NEW's st_size), \
by=name|symbol (old_addr 0 and resolved by name, the default; or relocated against an \
undefined symbol). Numbers are decimal or 0x-hex.\n\n\
Example: xsplice build fix.obj -o fix.o --patch hv_sum=fix_hv_sum --image hv --depends-image"
)]
pub(crate) struct BuildArgs {
    /// The relocatable object (`gcc -c`) holding the replacement functions.
    object: PathBuf,
    /// Where to write the payload.
    #[arg(short, long, value_name = "PAYLOAD")]
    output: PathBuf,
    /// Record version to write (1, 2 or 3).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=3))]
    record_version: u16,
    /// One record (repeat for more); see below.
    #[arg(long = "patch", value_name = "PATCH", required = true, value_parser = PatchSpec::from_str)]
    patches: Vec<PatchSpec>,
    /// The image the payload is for: default old sizes, `expect=image:N`, and a final check that it would apply.
    #[arg(long, value_name = "IMAGE")]
    image: Option<PathBuf>,
    /// Build-id (hex) of the image or payload this one is built against (`.xsplice.depends`).
    #[arg(long, value_name = "HEX", value_parser = Hex::parse, conflicts_with = "depends_image")]
    depends: Option<Hex>,
    /// Depend on the build-id of --image.
    #[arg(long, requires = "image")]
    depends_image: bool,
    /// The payload's own build-id (hex, `.note.gnu.build-id`).
    #[arg(long, value_name = "HEX", value_parser = Hex::parse)]
    build_id: Option<Hex>,
    /// Allow PAYLOAD to be OBJECT itself.
    #[arg(long)]
    force: bool,
    /// Sign the payload with this private key (PEM PKCS#8, see `xsplice keygen`).
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
}

/// Bytes given in hex on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hex(Vec<u8>);

impl Hex {
    fn parse(s: &str) -> Result<Hex, String> {
        parse_hex(s).map(Hex)
    }
}

/// Expected bytes of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ExpectSpec {
    /// Given bytes.
    Bytes(Vec<u8>),
    /// Read this many bytes from the image at the site.
    Image(usize),
}

/// One `--patch` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatchSpec {
    old: String,
    new: Option<String>,
    nop: Option<u64>,
    offset: u32,
    sympos: u32,
    expect: Option<ExpectSpec>,
    old_size: Option<u64>,
    new_size: Option<u64>,
    by_symbol: bool,
}

fn parse_num<T: TryFrom<u64>>(key: &str, v: &str) -> Result<T, String> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse::<u64>(),
    }
    .map_err(|_| format!("`{key}={v}`: not a number"))?;
    T::try_from(n).map_err(|_| format!("`{key}={v}`: out of range"))
}

/// Parses lowercase or uppercase hex digits (an even number, at least one byte).
pub(crate) fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() % 2 != 0 {
        return Err(format!(
            "`{s}`: expected an even number of hex digits, at least 2"
        ));
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("`{s}`: not hex"))
        })
        .collect()
}

impl FromStr for PatchSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(',');
        let head = parts.next().unwrap_or_default();
        let (old, new) = match head.split_once('=') {
            Some((o, n)) => (o, Some(n).filter(|n| !n.is_empty())),
            None => (head, None),
        };
        if old.is_empty() {
            return Err(format!("`{s}`: expected OLD=NEW[,key=value...]"));
        }
        let mut spec = PatchSpec {
            old: old.to_string(),
            new: new.map(str::to_string),
            nop: None,
            offset: 0,
            sympos: 0,
            expect: None,
            old_size: None,
            new_size: None,
            by_symbol: false,
        };
        for part in parts {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected key=value"))?;
            match k {
                "nop" => spec.nop = Some(parse_num(k, v)?),
                "offset" => spec.offset = parse_num(k, v)?,
                "sympos" => spec.sympos = parse_num(k, v)?,
                "old-size" => spec.old_size = Some(parse_num(k, v)?),
                "new-size" => spec.new_size = Some(parse_num(k, v)?),
                "expect" => {
                    spec.expect = Some(match v.strip_prefix("image:") {
                        Some(n) => ExpectSpec::Image(parse_num(k, n)?),
                        None => ExpectSpec::Bytes(parse_hex(v)?),
                    })
                }
                "by" => {
                    spec.by_symbol = match v {
                        "name" => false,
                        "symbol" => true,
                        _ => return Err(format!("`{part}`: by=name or by=symbol")),
                    }
                }
                _ => {
                    return Err(format!(
                        "`{part}`: unknown key `{k}` (nop, offset, sympos, expect, old-size, new-size, by)"
                    ))
                }
            }
        }
        match (&spec.new, spec.nop) {
            (None, None) => Err(format!("`{s}`: give the replacement (OLD=NEW) or nop=N")),
            (Some(_), Some(_)) => Err(format!("`{s}`: a NOP record has no NEW function")),
            _ => Ok(spec),
        }
    }
}

/// Turns a spec into a writer patch, taking defaults from the image.
fn to_patch(
    i: usize,
    spec: &PatchSpec,
    image: Option<(&Path, &ImageTarget)>,
) -> Result<Patch, CliError> {
    let place = |msg: String| CliError::new(format!("--patch {} `{}`: {msg}", i, spec.old));
    let symbol = image.and_then(|(_, img)| {
        if spec.sympos != 0 {
            img.lookup_local(&spec.old, spec.sympos)
        } else {
            img.lookup(&spec.old)
        }
    });
    if let (Some((path, _)), None) = (image, symbol) {
        return Err(place(format!(
            "`{}` has no symbol `{}`{}",
            path.display(),
            spec.old,
            if spec.sympos != 0 {
                format!(" (local number {})", spec.sympos)
            } else {
                String::new()
            }
        )));
    }
    let old_size = match (spec.old_size, symbol) {
        (Some(n), _) => n,
        (None, Some(s)) if s.size != 0 => s.size,
        (None, Some(_)) => {
            return Err(place(
                "the image's symbol has size 0: give old-size=N".to_string(),
            ))
        }
        (None, None) => {
            return Err(place("give old-size=N".to_string())
                .hint("or pass --image IMAGE to take the size from the image's symbol"))
        }
    };
    let expect = match &spec.expect {
        None => None,
        Some(ExpectSpec::Bytes(b)) => Some(b.clone()),
        Some(ExpectSpec::Image(n)) => {
            let (Some((path, img)), Some(sym)) = (image, symbol) else {
                return Err(place("expect=image:N needs --image".to_string()));
            };
            if *n > xsplice_abi::EXPECT_MAX {
                return Err(place(format!(
                    "expect=image:{n}: at most {} bytes",
                    xsplice_abi::EXPECT_MAX
                )));
            }
            let site = sym
                .addr
                .checked_add(u64::from(spec.offset))
                .unwrap_or(Addr(u64::MAX));
            let mut buf = vec![0u8; *n];
            img.read(site, &mut buf).map_err(|e| {
                place(format!(
                    "cannot read {n} bytes at {site} in `{}`: {e}",
                    path.display()
                ))
            })?;
            Some(buf)
        }
    };
    let old = if spec.by_symbol {
        OldTarget::Symbol(spec.old.clone())
    } else {
        OldTarget::Name(spec.old.clone())
    };
    let new = match (&spec.new, spec.nop) {
        (_, Some(size)) => NewCode::Nop { size },
        (Some(symbol), None) => NewCode::Function {
            symbol: symbol.clone(),
            size: spec.new_size,
        },
        (None, None) => return Err(place("give OLD=NEW or nop=N".to_string())),
    };
    Ok(Patch {
        old,
        new,
        old_size,
        patch_offset: spec.offset,
        sympos: spec.sympos,
        expect,
        compat: xsplice_abi::Compat::empty(),
    })
}

fn write_error(object: &Path, e: &WriteError) -> CliError {
    let err = CliError::new(format!("{}: {e}", object.display()));
    match e {
        WriteError::SectionExists(s) if *s == xsplice_abi::sections::FUNCS => err.hint(
            "the input is already a payload: use `xsplice upgrade` to change its record version",
        ),
        WriteError::Record { .. } => {
            err.hint("a newer --record-version can express it (v3 has every feature)")
        }
        _ => err,
    }
}

/// Builds the payload, checks it (against the image when given), writes it.
pub(crate) fn run(a: &BuildArgs, v: Verbosity) -> Result<Output, CliError> {
    files::refuse_overwrite(&a.output, &[&a.object], a.force)?;
    let object = files::read(&a.object, files::IMAGE_LIMIT, "object")?;
    let image = match &a.image {
        Some(p) => Some((p.as_path(), load::open_image(p)?)),
        None => None,
    };
    let version = RecordVersion::from_number(a.record_version)
        .ok_or_else(|| CliError::new(format!("no record version {}", a.record_version)))?;
    let mut builder =
        PayloadBuilder::from_object(&object).map_err(|e| write_error(&a.object, &e))?;
    builder.version(version);
    for (i, spec) in a.patches.iter().enumerate() {
        builder.patch(to_patch(i, spec, image.as_ref().map(|(p, t)| (*p, t)))?);
    }
    if let Some(Hex(id)) = &a.build_id {
        builder.build_id(id.clone());
    }
    if let Some(Hex(id)) = &a.depends {
        builder.depends(id.clone());
    } else if a.depends_image {
        let (path, img) = image
            .as_ref()
            .ok_or_else(|| CliError::new("--depends-image needs --image"))?;
        let id = img
            .build_id()
            .ok_or_else(|| {
                CliError::new(format!(
                    "`{}` has no GNU build-id note to depend on",
                    path.display()
                ))
                .hint("link the image with -Wl,--build-id, or give --depends HEX")
            })?
            .to_vec();
        builder.depends(id);
    }
    let (payload, loaded) = builder
        .build_loaded()
        .map_err(|e| write_error(&a.object, &e))?;
    let mut out = Output::default();
    if let Some((path, img)) = image {
        let mut engine = Engine::new(img, LoadOptions::default());
        let err = |e| engine_error(&a.output, &e, Some(path));
        let id = engine
            .load(&files::display_name(&a.output), &payload)
            .map_err(err)?;
        engine.check(id).map_err(err)?;
        out.line(format!("checked: would apply to {}", path.display()));
    }
    let payload = match &a.sign {
        Some(key) => {
            let (signed, line) = crate::sign::sign_output(key, &a.output, &payload)?;
            out.line(line);
            signed
        }
        None => payload,
    };
    files::write(&a.output, &payload, 0o644)?;
    out.stdout.insert_str(
        0,
        &format!(
            "built {}: {} record{} ({}, format {})\n",
            a.output.display(),
            loaded.records.len(),
            if loaded.records.len() == 1 { "" } else { "s" },
            loaded.record_version,
            loaded.format
        ),
    );
    if v.verbose {
        for r in &loaded.records {
            out.line(format!(
                "  record {} {}: new_size {}, old_size {}, incompat {}",
                r.index.0, r.name, r.func.new_size, r.func.old_size, r.func.incompat
            ));
        }
    }
    for w in &loaded.warnings {
        out.warn(w.to_string());
    }
    if v.quiet {
        out.stdout.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_specs() {
        let p: PatchSpec = "hv_sum=fix_hv_sum,offset=4,expect=f30f1efa,old-size=0x4c"
            .parse()
            .unwrap();
        assert_eq!(p.old, "hv_sum");
        assert_eq!(p.new.as_deref(), Some("fix_hv_sum"));
        assert_eq!(p.offset, 4);
        assert_eq!(p.old_size, Some(76));
        assert_eq!(
            p.expect,
            Some(ExpectSpec::Bytes(vec![0xf3, 0x0f, 0x1e, 0xfa]))
        );
        let n: PatchSpec = "site,nop=3,expect=image:3".parse().unwrap();
        assert_eq!((n.nop, n.new), (Some(3), None));
        assert_eq!(n.expect, Some(ExpectSpec::Image(3)));
        for bad in [
            "",
            "=x",
            "a",
            "a=b,nop=3",
            "a=b,bogus=1",
            "a=b,offset=x",
            "a=b,offset=99999999999",
            "a=b,expect=abc",
            "a=b,by=what",
            "a=b,flag",
        ] {
            assert!(bad.parse::<PatchSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex("00ff").unwrap(), [0, 255]);
        assert_eq!(parse_hex("0xAB").unwrap(), [0xab]);
        assert!(parse_hex("").is_err());
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("é1").is_err());
    }
}
