//! `ImageTarget::new` on arbitrary images (seed it with the example
//! `examples/hypervisor/hv`), then what `check --image` asks of one: the
//! symbol table, the arenas and the file with its ledger.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_loader::image::ImageTarget;
use xsplice_loader::{Allocator, RegionKind, SymbolSource};

fuzz_target!(|data: &[u8]| {
    let Ok(mut image) = ImageTarget::new(data.to_vec()) else {
        return;
    };
    let _ = image.arch();
    let _ = image.arena_usage().count();
    for name in ["hv_sum", "main", "", "xsplice_text_arena"] {
        let _ = image.lookup(name);
        let _ = image.lookup_local(name, 1);
        let _ = image.lookup_local(name, u32::MAX);
    }
    for kind in [RegionKind::Text, RegionKind::ReadOnly, RegionKind::Data] {
        let _ = image.allocate(kind, 64, 16);
        let _ = image.allocate(kind, u64::MAX, 1 << 63);
    }
    let _ = image.to_file();
});
