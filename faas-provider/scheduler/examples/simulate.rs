//! Runs the simulator without the provider binary:
//! `cargo run --release -p locus-scheduler --example simulate -- --wss 35 --seeds 1`.

use clap::Parser;
use locus_scheduler::sim::{self, SimArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    sim::run(&cli.args, &mut std::io::stdout().lock())
}
