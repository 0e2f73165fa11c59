use std::time::Duration;

use clap::Parser;
use tollgate::cli::{Args, Command};
use tollgate::runtime::Runtime;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tollgate::logging::init(args.log_format, args.log_default());
    let serve = match args.into_command() {
        Command::Serve(serve) => *serve,
        Command::Rbac(rbac) => {
            print!("{}", tollgate::rbac::render(&rbac)?);
            return Ok(());
        }
        Command::Manifests(manifests) => return tollgate::manifests::run(&manifests),
        Command::Sleep { duration } => {
            std::thread::sleep(duration);
            return Ok(());
        }
        Command::Test(test) => {
            let tally = tollgate::cases::run(&test, &mut std::io::stdout(), &mut std::io::stderr());
            std::process::exit(tally.exit_code());
        }
        Command::Check(check) => std::process::exit(tollgate::check::run(&check)),
        Command::Audit(audit) => std::process::exit(tollgate::audit::run(&audit)),
        Command::New(new) => {
            print!("{}", tollgate::scaffold::write(&new)?);
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
