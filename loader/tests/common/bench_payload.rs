//! The many-record payloads of the loader's benches (and of the writer
//! test that proves they load), built with the payload writer.

use xsplice_abi::RecordVersion;
use xsplice_loader::write::{OldTarget, Patch, PayloadBuilder};

/// `endbr64`, which the PATCH_OFFSET + EXPECT records expect at +4.
pub const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// The name of the `i`-th patched function.
pub fn func_name(i: usize) -> String {
    format!("xsplice_bench_{i:04}")
}

/// A payload of `version` with `n` records built from `input` (the
/// gcc-built `build_input.obj`): plain replacements, a NOP record in ten
/// from v2 on, a PATCH_OFFSET + EXPECT record in seven in v3.
pub fn many(input: &[u8], version: RecordVersion, n: usize) -> Vec<u8> {
    let mut b = PayloadBuilder::from_object(input).expect("build_input.obj");
    b.version(version);
    for i in 0..n {
        let old = OldTarget::Name(func_name(i));
        let patch = if version >= RecordVersion::V2 && i % 10 == 9 {
            Patch::nop(old, 3, 16)
        } else if version == RecordVersion::V3 && i % 7 == 6 {
            Patch {
                patch_offset: 4,
                expect: Some(ENDBR64.to_vec()),
                ..Patch::replace(old, "xsplice_new_scale", 16)
            }
        } else {
            Patch::replace(old, "xsplice_new_answer", 16)
        };
        b.patch(patch);
    }
    b.build().expect("payload")
}
