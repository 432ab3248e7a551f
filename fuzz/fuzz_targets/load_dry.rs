//! The whole `load` as a dry run (what `xsplice check` does without an
//! image), with default options and with the options of a known
//! position-independent x86-64 target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_loader::{Arch, DryRun, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let mut dry = DryRun::default();
    if let Ok(payload) = dry.load(data, &LoadOptions::default()) {
        let _ = dry.unresolved().count();
        for r in &payload.records {
            assert_eq!(
                r.site.0,
                r.old_addr.0.wrapping_add(u64::from(r.func.patch_offset))
            );
        }
        let pie = LoadOptions {
            arch: Some(Arch::X86_64),
            position_independent: true,
            ..LoadOptions::default()
        };
        let _ = DryRun::default().load(data, &pie);
    }
});
