//! `faas-provider simulate`: the discrete-event simulator over the scheduler.

use clap::Args;

/// Command-line arguments of `faas-provider simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Policies to compare: a comma list of `lb`, `lalb`, `lalb-o3`, `locus`, or `all`.
    #[arg(long, default_value = "all")]
    pub policy: String,
}

/// Runs the simulation described by `args` and writes its report to `out`.
pub fn run(args: &SimArgs, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(out, "simulator not built yet (policy {})", args.policy)
}
