//! `tollgate-bench`: Tollgate measured against the floor webhook (the
//! cheapest possible webhook, served by this binary's `floor` subcommand)
//! and, with `--against`, against any other engine, on identical work: the
//! same captured reviews, the same load generator, the same run.
//!
//! The machine is shared and noisy, so absolute numbers mean little: the
//! servers run side by side and are measured in alternating rounds, and
//! every figure is also given as a ratio to the floor's of the same round.

#![forbid(unsafe_code)]

mod body;
mod cli;
mod client;
mod floor;
mod load;
mod measure;
mod probe;
mod procfs;
mod report;
mod scenarios;
mod servers;
mod snapshot;
#[cfg(test)]
mod testing;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    // A thousand connections need as many descriptors (the soft limit is
    // often 1,024). Best effort: at the old limit the large scenarios
    // report their errors.
    tollgate_tests::raise_open_files_limit();
    match cli.command {
        Some(cli::Command::Floor(args)) => floor::serve(&args),
        // One thread drives the load, so the servers keep the other cores.
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(scenarios::run(cli.run)),
    }
}
