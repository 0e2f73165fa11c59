use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = tollgate::cli::Args::parse();
    tollgate::logging::init(args.log_format);
    tollgate::cli::run(args)
}
