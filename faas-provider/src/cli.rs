//! The `faas-provider` command line: `serve` (the default), `up` (everything on one
//! machine) and `simulate`.

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
    /// Run everything on this machine: the provider plus in-process workers on CPU
    /// devices, on 127.0.0.1:8080 (see docs/dataplane.md).
    Up(crate::up::UpArgs),
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
    fn up_takes_its_flags_with_the_documented_defaults() {
        let cli = Cli::try_parse_from(["faas-provider", "up"]).unwrap();
        let Command::Up(args) = cli.command() else { panic!("not up") };
        assert_eq!((args.port, args.workers, args.devices_per_worker), (8080, 2, 2));
        assert_eq!((args.device_memory.as_str(), args.backend.as_str()), ("2GiB", "candle"));
        let cli = Cli::try_parse_from(["faas-provider", "up", "--port", "0", "--backend", "emulated"]).unwrap();
        assert!(matches!(cli.command(), Command::Up(a) if a.port == 0 && a.backend == "emulated"));
    }

    #[test]
    fn an_unknown_subcommand_is_an_error() {
        assert!(Cli::try_parse_from(["faas-provider", "frobnicate"]).is_err());
    }
}
