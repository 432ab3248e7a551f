//! `--cpu-features`: the CPU a payload's alternatives are chosen for.

use clap::Args;
use xsplice_loader::{Arch, CpuFeatures};

use crate::error::CliError;

/// The CPU features patched code will run with.
#[derive(Debug, Args)]
pub(crate) struct CpuArgs {
    /// CPU features for payload alternatives: a comma-separated list of names (x86-64: POPCNT, SSE4_2, AVX, AVX2, BMI1, BMI2, ERMS, FSRM, AVX512F, ADX; AArch64: ATOMICS, CRC32, SHA2, SVE) or numbers, or `native` (this machine's); default: none, so the original code stays.
    #[arg(long, value_name = "LIST|native")]
    pub cpu_features: Option<String>,
}

impl CpuArgs {
    /// The features for a payload or image of `arch`.
    pub fn resolve(&self, arch: Arch) -> Result<CpuFeatures, CliError> {
        match self.cpu_features.as_deref() {
            None => Ok(CpuFeatures::NONE),
            Some("native") => Ok(CpuFeatures::native(arch)),
            Some(list) => CpuFeatures::parse(arch, list).map_err(|name| {
                CliError::new(format!("--cpu-features: unknown {arch} feature `{name}`"))
                    .hint("give names from SPEC.md section 17.4, numbers, or `native`")
            }),
        }
    }
}
