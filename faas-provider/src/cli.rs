//! The `faas-provider` command line: `serve` (the default) and `simulate`; `up` joins
//! them when the data plane lands.

use clap::{Parser, Subcommand};
use locus_scheduler::sim::SimArgs;

/// Locus: a drop-in OpenFaaS provider for ML inference on GPUs.
#[derive(Debug, Parser)]
#[command(name = "faas-provider", version, about)]
pub struct Cli {
    /// What to run; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
// Parsed once per process: the size of `SimArgs` next to a unit variant is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OpenFaaS provider API (configured by environment: see docs/provider.md).
    Serve,
    /// Run the discrete-event simulator over the scheduler and print its report.
    Simulate(SimArgs),
    /// One replica of a container function (run by the process runtime, not by hand).
    #[command(hide = true)]
    Watchdog,
}

impl Cli {
    /// The subcommand to run, `serve` by default.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Serve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["faas-provider"]).unwrap();
        assert!(matches!(cli.command(), Command::Serve));
    }

    #[test]
    fn simulate_is_a_subcommand_with_the_simulator_arguments() {
        let cli = Cli::try_parse_from(["faas-provider", "simulate"]).unwrap();
        assert!(matches!(cli.command(), Command::Simulate(_)));
        assert!(Cli::try_parse_from(["faas-provider", "simulate", "--no-such-flag"]).is_err());
    }

    #[test]
    fn an_unknown_subcommand_is_an_error() {
        assert!(Cli::try_parse_from(["faas-provider", "frobnicate"]).is_err());
    }
}
