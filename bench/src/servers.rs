//! The two servers under test, as child processes killed on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A scratch directory for the generated certificate and caches.
pub struct WorkDir {
    dir: tempfile::TempDir,
}

impl WorkDir {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The development CA Tollgate generates (and whose serving certificate
    /// the floor reuses, so both servers do the same TLS work).
    pub fn ca_pem(&self) -> PathBuf {
        self.state().join("ca.pem")
    }
}

pub struct Server {
    pub port: u16,
    _child: Child,
}

/// Builds the floor webhook with its own lock file into `target/floor`.
pub fn build_floor(source: &Path) -> anyhow::Result<PathBuf> {
    let target_dir = std::env::current_dir()?.join("target/floor");
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(source.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .context("run cargo to build the floor")?;
    if !status.success() {
        bail!("building the floor failed");
    }
    Ok(target_dir.join("release/floor"))
}

pub async fn start_tollgate(
    binary: &Path,
    policies: Option<&Path>,
    work: &WorkDir,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let mut cmd = Command::new(binary);
    cmd.arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(work.state())
        .arg("--cache-dir")
        .arg(work.dir.path().join("cache"))
        .env("RUST_LOG", "warn");
    if let Some(p) = policies {
        cmd.arg("--policies").arg(p);
    }
    let child = spawn(cmd, binary)?;
    wait_listening(port, &work.ca_pem()).await?;
    Ok(Server {
        port,
        _child: child,
    })
}

pub async fn start_floor(binary: &Path, work: &WorkDir) -> anyhow::Result<Server> {
    let port = free_port()?;
    let mut cmd = Command::new(binary);
    cmd.arg(format!("127.0.0.1:{port}"))
        .arg(work.state().join("tls.crt"))
        .arg(work.state().join("tls.key"));
    let child = spawn(cmd, binary)?;
    wait_listening(port, &work.ca_pem()).await?;
    Ok(Server {
        port,
        _child: child,
    })
}

fn spawn(mut cmd: Command, binary: &Path) -> anyhow::Result<Child> {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", binary.display()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until the server accepts a TLS handshake with the generated CA.
async fn wait_listening(port: u16, ca: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if ca.exists() && handshake(port, ca).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("server on port {port} did not come up within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a TLS handshake with the server succeeds.
async fn handshake(port: u16, ca: &Path) -> bool {
    let (Ok(tls), Ok(name)) = (
        crate::load::client_config(ca),
        rustls::pki_types::ServerName::try_from("localhost"),
    ) else {
        return false;
    };
    match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(tcp) => tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .is_ok(),
        Err(_) => false,
    }
}
