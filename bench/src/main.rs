//! `tollgate-bench`: Tollgate's reviews/s and latency as a ratio to the floor
//! webhook (`../shared/tools/floor`), measured in the same run, with the same
//! load generator, on the same bodies.
//!
//! The machine is shared and noisy, so absolute numbers mean little: both
//! servers are started side by side and measured in alternating rounds, and
//! the median round of each is compared.

mod body;
mod load;
mod servers;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Measure Tollgate against the floor webhook on captured reviews")]
struct Args {
    /// Captured AdmissionReview files (their "query" member becomes the query string).
    #[arg(required = true)]
    reviews: Vec<PathBuf>,
    /// Endpoint to post to.
    #[arg(long, default_value = "validate")]
    endpoint: String,
    /// Tollgate policy configuration (default: the embedded built-in pack).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// The tollgate binary.
    #[arg(long, default_value = "target/release/tollgate")]
    tollgate: PathBuf,
    /// The floor source directory (built with cargo into target/floor).
    #[arg(long, default_value = "../shared/tools/floor")]
    floor: PathBuf,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds per server (alternating floor, tollgate, floor, ...).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let work = servers::WorkDir::new()?;
    let floor_bin = servers::build_floor(&args.floor)?;
    let tollgate = servers::start_tollgate(&args.tollgate, args.policies.as_deref(), &work).await?;
    let floor = servers::start_floor(&floor_bin, &work).await?;
    let tls = load::client_config(&work.ca_pem())?;
    let round = Duration::from_secs_f64(args.seconds);

    println!(
        "connections={} round={}s rounds={} endpoint=/{}",
        args.connections, args.seconds, args.rounds, args.endpoint
    );
    for path in &args.reviews {
        let body = body::CapturedReview::read(path)?;
        let target = |port| load::Target {
            port,
            path: format!("/{}{}", args.endpoint, body.query_suffix()),
            body: body.bytes.clone(),
            uid: body.uid.clone(),
        };
        let (f, t) = (target(floor.port), target(tollgate.port));
        // Warm both (TLS session setup, first compilation, caches).
        load::run(&f, &tls, args.connections, Duration::from_millis(500)).await?;
        load::run(&t, &tls, args.connections, Duration::from_millis(500)).await?;
        let mut floor_rounds = Vec::new();
        let mut tollgate_rounds = Vec::new();
        for _ in 0..args.rounds {
            floor_rounds.push(load::run(&f, &tls, args.connections, round).await?);
            tollgate_rounds.push(load::run(&t, &tls, args.connections, round).await?);
        }
        let f = load::Stats::median(floor_rounds);
        let t = load::Stats::median(tollgate_rounds);
        println!("\n{} ({} bytes)", path.display(), body.bytes.len());
        println!(
            "  {:<9} {:>10} {:>10} {:>10} {:>7}",
            "server", "reviews/s", "p50 µs", "p99 µs", "errors"
        );
        for (name, s) in [("floor", &f), ("tollgate", &t)] {
            println!(
                "  {:<9} {:>10.0} {:>10} {:>10} {:>7}",
                name, s.rate, s.p50_us, s.p99_us, s.errors
            );
        }
        println!(
            "  ratio to floor: throughput {:.2}x, p99 {:.2}x (floor p99 / tollgate p99; higher is better)",
            t.rate / f.rate,
            f.p99_us as f64 / t.p99_us.max(1) as f64
        );
    }
    drop(floor);
    drop(tollgate);
    Ok(())
}
