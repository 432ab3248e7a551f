//! The resource limits of every command that loads payloads: the loader's
//! bounds on untrusted input, raised (or lowered) from the command line.

use clap::Args;
use xsplice_loader::LoadOptions;

use crate::error::CliError;
use crate::sign::TrustArgs;

/// `--max-size`, `--max-alloc`, `--max-sections`, `--max-name`: flatten
/// this into a command's arguments and [`LimitArgs::apply`] it to its
/// [`LoadOptions`]. The defaults are the loader's; an error caused by a
/// limit names the flag that raises it.
#[derive(Debug, Clone, Args)]
pub(crate) struct LimitArgs {
    /// Largest payload file accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = LoadOptions::default().max_size)]
    pub max_size: usize,
    /// Largest total of a payload's loaded sections (NOBITS included), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = LoadOptions::default().max_alloc)]
    pub max_alloc: usize,
    /// Largest number of sections in a payload.
    #[arg(long, value_name = "N", default_value_t = LoadOptions::default().max_sections)]
    pub max_sections: usize,
    /// Longest section or symbol name in a payload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = LoadOptions::default().max_name)]
    pub max_name: usize,
}

impl LimitArgs {
    /// Sets the limits in `opts`.
    pub fn apply(&self, opts: LoadOptions) -> LoadOptions {
        LoadOptions {
            max_size: self.max_size,
            max_alloc: self.max_alloc,
            max_sections: self.max_sections,
            max_name: self.max_name,
            ..opts
        }
    }
}

/// Everything that decides how payloads are loaded: the signature flags
/// and the limits, as every loading command takes them.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Signature verification.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Limits on untrusted input.
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl LoadArgs {
    /// The loader options these flags ask for.
    pub fn options(&self) -> Result<LoadOptions, CliError> {
        Ok(self.limits.apply(self.trust.load_options()?))
    }
}
