//! `vestnik`: the command line over the crates — `serve` runs the gateway.

mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vestnik",
    version,
    about = "Webhooks, sent reliably and received safely"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: management API, delivery workers, metrics.
    Serve(serve::ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
    }
}
