//! `vestnik`: the command line over the crates — `demo` runs the whole story, `serve` runs the
//! gateway, `simulate` compares the strategies in numbers, `bench` measures the gateway.

mod bench;
mod demo;
mod serve;
mod simulate;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: allocation was 15 % of the CPU profile of `vestnik bench`
/// scenario (b), and mimalloc's thread-local free lists cut that share (docs/benchmarks.md).
/// `.cargo/config.toml` builds it to commit arena memory lazily, which keeps peak RSS low.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The whole story: gateway, insurer and clinic on this machine, claims flowing (start here).
    Demo(demo::DemoArgs),
    /// Run the gateway: management API, delivery workers, metrics.
    Serve(serve::ServeArgs),
    /// Polling vs long polling vs on-view vs webhooks on the same claims workload, in numbers.
    Simulate(simulate::SimulateArgs),
    /// Measure the gateway end to end with a built-in receiver (accepted/delivered per second, latency).
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Simulate(args) => simulate::run(args),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
    }
}
