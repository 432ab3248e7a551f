//! `load` + `Engine::check` on an in-memory target: the shipped example
//! hypervisor image (`examples/hypervisor/hv`) with the fuzzer's payload,
//! so that symbol resolution against a real image, the arenas and the
//! engine's checks are reached (seed it with the example's `fix*.o`).
//!
//! A payload that checks is applied and reverted (the image must come back
//! byte for byte), then loaded a second time on top of itself: stacked
//! payloads resolve against the first one's exports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_loader::engine::Engine;
use xsplice_loader::image::ImageTarget;
use xsplice_loader::LoadOptions;

/// The example image, built by `examples/hypervisor/build.sh`.
static HV: &[u8] = include_bytes!("../../examples/hypervisor/hv");

fuzz_target!(|data: &[u8]| {
    let target = ImageTarget::new(HV.to_vec()).expect("the example image loads");
    let mut engine = Engine::new(target, LoadOptions::default());
    let Ok(id) = engine.load("fuzz", data) else {
        return;
    };
    if engine.check(id).is_err() {
        return;
    }
    let before = engine.target().bytes().to_vec();
    if engine.apply(id).is_ok() {
        engine.revert(id).expect("an applied payload reverts");
        assert!(
            engine.target().bytes() == &before[..],
            "revert restores the image"
        );
    }
    if let Ok(second) = engine.load("fuzz-stacked", data) {
        let _ = engine.check(second);
    }
});
