//! `tollgate`: parses the command line and hands it to the subcommand:
//! `serve` (the default) to the admission server, the others to the tools.

#![forbid(unsafe_code)]

use std::time::Duration;

mod cli;
mod logging;

use clap::Parser;
use tollgate_server::Runtime;
use tollgate_tools::{audit, cases, check, manifests, rbac, scaffold};

use crate::cli::{Args, Command};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format, args.log_default());
    let serve = match args.into_command() {
        Command::Serve(serve) => *serve,
        Command::Rbac(rbac) => {
            print!("{}", rbac::render(&rbac)?);
            return Ok(());
        }
        Command::Manifests(manifests) => return manifests::run(&manifests),
        Command::Sleep { duration } => {
            std::thread::sleep(duration);
            return Ok(());
        }
        Command::Test(test) => {
            let tally = cases::run(&test, &mut std::io::stdout(), &mut std::io::stderr());
            std::process::exit(tally.exit_code());
        }
        Command::Check(check) => std::process::exit(check::run(&check)),
        Command::Audit(audit) => std::process::exit(audit::run(&audit)),
        Command::New(new) => {
            print!("{}", scaffold::write(&new)?);
            return Ok(());
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async { Runtime::build(serve).await?.run().await });
    // An evaluation still running on a blocking thread ends at its CPU
    // deadline; do not wait for it after the last answer was sent.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
