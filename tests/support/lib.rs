//! Shared helpers of the end-to-end tests: start the real `tollgate` binary
//! on a free port with its own state and cache directories, talk to it over
//! TLS, build reviews.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tollgate_testkit::requests::{self, RequestBuilder};

pub mod binary;
pub mod cluster;
pub mod corpus;
pub mod guarded;
pub mod kubectl;
pub mod populate;
pub mod snapshot;
pub mod verdict;

pub use binary::{target_tmp, tollgate_bin};

/// How long a server may take to compile its policies and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A server process under test; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Everything printed on stdout up to "listening" (the banner).
    pub banner: String,
    pub dir: PathBuf,
    ca: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// How to start a server.
pub struct Launch {
    /// Owned unless the test keeps the directory across servers.
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    args: Vec<String>,
    ca: Option<PathBuf>,
}

impl Default for Launch {
    fn default() -> Self {
        Self::new()
    }
}

impl Launch {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        Self {
            dir: tmp.path().to_path_buf(),
            tmp: Some(tmp),
            args: Vec::new(),
            ca: None,
        }
    }

    /// A server using `dir` (which the test keeps) for its state and cache.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            tmp: None,
            dir: dir.to_path_buf(),
            args: Vec::new(),
            ca: None,
        }
    }

    /// The directory holding state, cache, logs and any test files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Writes the hostile test guests to `guests.wasm` (and their ABI v2
    /// build to `guests-v2.wasm`) and `yaml` to `policies.yaml` in the test
    /// directory, and serves them.
    pub fn policies(self, yaml: &str) -> Self {
        write_guests(self.dir());
        let path = self.dir().join("policies.yaml");
        std::fs::write(&path, yaml).expect("write policies");
        self.arg("--policies").arg(path.display().to_string())
    }

    /// Serves `cert`/`key` and trusts `ca` instead of the development CA.
    pub fn tls(mut self, cert: &Path, key: &Path, ca: &Path) -> Self {
        self.ca = Some(ca.to_path_buf());
        self.arg("--cert")
            .arg(cert.display().to_string())
            .arg("--key")
            .arg(key.display().to_string())
    }

    /// Trusts `ca` (a file the test may rewrite) instead of the development
    /// CA, for a server whose certificate comes from elsewhere.
    pub fn trust(mut self, ca: &Path) -> Self {
        self.ca = Some(ca.to_path_buf());
        self
    }

    /// Compiled modules go to a cache shared by the servers of this test
    /// target (entries are written atomically), so only the first server
    /// pays for compiling the built-in pack.
    pub fn shared_module_cache(self) -> Self {
        let dir = target_tmp().join("tollgate-module-cache");
        // Entries are authenticated with a key kept apart from the cache;
        // the servers sharing the cache share the key too.
        let key = target_tmp().join("tollgate-module-cache-key");
        self.arg("--cache-dir")
            .arg(dir.display().to_string())
            .arg("--cache-key-dir")
            .arg(key.display().to_string())
    }

    /// Runs the command to completion instead of serving: for command
    /// lines that must fail. Gives up after [`START_TIMEOUT`].
    pub fn run_to_exit(self) -> std::process::Output {
        let mut child = command(&self.dir, &self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tollgate");
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                panic!("tollgate {:?} did not exit", self.args);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("output")
    }

    pub fn start(self) -> Server {
        let dir = self.dir.clone();
        let ca = self
            .ca
            .clone()
            .unwrap_or_else(|| dir.join("state/tollgate/ca.pem"));
        let (child, addr, banner) = spawn(&dir, &self.args);
        Server {
            child,
            addr,
            banner,
            dir,
            ca,
            _tmp: self.tmp,
        }
    }
}

/// Writes the test guests to `dir/guests.wasm` (ABI v1) and
/// `dir/guests-v2.wasm` (the same rules, ABI v2); returns the first.
pub fn write_guests(dir: &Path) -> PathBuf {
    let path = dir.join("guests.wasm");
    std::fs::write(&path, tollgate_test_artifacts::TEST_GUESTS).expect("write guests");
    let v2 = dir.join("guests-v2.wasm");
    std::fs::write(&v2, tollgate_test_artifacts::TEST_GUESTS_V2).expect("write v2 guests");
    path
}

/// `tollgate ARGS --listen 127.0.0.1:0` with its state and cache under
/// `dir` (the listen flag goes last so that ARGS may start with a
/// subcommand such as `serve`).
fn command(dir: &Path, args: &[String]) -> Command {
    let mut command = Command::new(tollgate_bin());
    command
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("RUST_LOG", "tollgate=debug,info");
    command
}

fn spawn(dir: &Path, args: &[String]) -> (Child, SocketAddr, String) {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stderr.log"))
        .expect("log file");
    let mut child = command(dir, args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start tollgate");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut banner = String::new();
    loop {
        let left = START_TIMEOUT.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                banner.push_str(&line);
                banner.push('\n');
                if let Some(addr) = line.strip_prefix("tollgate: listening on https://") {
                    // The rest of the banner follows immediately.
                    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                        banner.push_str(&line);
                        banner.push('\n');
                    }
                    return (child, addr.parse().expect("address"), banner);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("tollgate did not start ({status:?}); stdout:\n{banner}\nstderr:\n{log}");
            }
        }
    }
}

impl Server {
    /// Starts `tollgate` with `args` and its development certificate.
    pub fn start(args: &[&str]) -> Self {
        args.iter().fold(Launch::new(), |l, a| l.arg(*a)).start()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).expect("CA file")
    }

    /// A client trusting this server's CA; `configure` picks protocols.
    pub fn client_with(
        &self,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> reqwest::Client {
        client_trusting(&self.ca_pem(), configure)
    }

    pub fn client(&self) -> reqwest::Client {
        self.client_with(|b| b)
    }

    /// POSTs raw bytes; returns the status and body text.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
        let response = self
            .client()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    /// POSTs a review and returns the answering AdmissionReview (asserting
    /// HTTP 200).
    pub async fn review(&self, path: &str, review: &Value) -> Value {
        review_with(&self.client(), &self.url(path), review).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client()
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    pub async fn metrics(&self) -> String {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        text
    }

    /// The server's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Stops the server (SIGSTOP) until the guard drops (SIGCONT): a
    /// server that has fallen behind its clients, as under load.
    pub fn stopped(&self) -> Stopped<'_> {
        self.signal("-STOP");
        Stopped(self)
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "tollgate did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stopped server; continues (SIGCONT) when dropped.
pub struct Stopped<'a>(&'a Server);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.signal("-CONT");
    }
}

/// A client trusting only `ca_pem`.
pub fn client_trusting(
    ca_pem: &[u8],
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem).expect("CA");
    configure(
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(60)),
    )
    .build()
    .expect("client")
}

/// A client that accepts any certificate: for servers whose CA the test
/// does not know yet (a self-managed certificate before its Secret exists).
pub fn insecure_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// The leaf certificate (DER) `addr` presents, whoever signed it.
pub async fn presented_certificate(addr: SocketAddr) -> Vec<u8> {
    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// Records nothing, checks nothing: the test compares the DER itself.
    #[derive(Debug)]
    struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let certificates = tls.get_ref().1.peer_certificates().expect("a certificate");
    certificates[0].to_vec()
}

/// POSTs `review` with `client` and returns the answer (asserting HTTP 200).
pub async fn review_with(client: &reqwest::Client, url: &str, review: &Value) -> Value {
    let response = client.post(url).json(review).send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"))
}

/// An AdmissionReview (v1) of `operation` on `object` of kind `gvk`.
pub fn review(uid: &str, gvk: (&str, &str, &str), operation: &str, object: Value) -> Value {
    let (object, old_object) = if operation == "DELETE" {
        (Value::Null, object)
    } else {
        (object, Value::Null)
    };
    review_of(uid, gvk, operation, object, old_object)
}

/// An AdmissionReview (v1) of `operation` with both objects given (`Null`
/// where the operation has none); name and namespace come from whichever
/// object is present.
pub fn review_of(
    uid: &str,
    gvk: (&str, &str, &str),
    operation: &str,
    object: Value,
    old_object: Value,
) -> Value {
    let (group, version, kind) = gvk;
    let present = |v: &Value| (!v.is_null()).then(|| v.clone());
    RequestBuilder::new(
        requests::operation(operation),
        present(&old_object).as_ref(),
        present(&object).as_ref(),
    )
    .with_uid(uid)
    .with_kind(group, version, kind)
    .review()
}

/// The resource name of a kind, as the API server sends it.
pub use tollgate_testkit::requests::plural;

/// A small namespaced object.
pub fn object(api_version: &str, kind: &str, name: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "demo"}},
    })
}

/// The `response` of an answer, after checking its envelope echoes `request`.
pub fn response<'a>(request: &Value, answer: &'a Value) -> &'a Value {
    assert_eq!(answer["apiVersion"], request["apiVersion"], "{answer}");
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    assert_eq!(
        answer["response"]["uid"], request["request"]["uid"],
        "{answer}"
    );
    &answer["response"]
}

/// The decoded JSONPatch of a response, checking `patchType`.
pub fn patch_of(response: &Value) -> Option<Value> {
    let patch = response.get("patch")?.as_str()?;
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is JSON"))
}

/// Applies `patch` to the request's object, asserting it applies cleanly.
pub fn apply_patch(request: &Value, patch: &Value) -> Value {
    let mut object = request["request"]["object"].clone();
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).expect("RFC 6902 patch");
    json_patch::patch(&mut object, &ops).expect("the patch applies to request.object");
    object
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A metric's value in a Prometheus text exposition (`line_prefix` is the
/// name with its labels), or 0 when absent.
pub fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A raw TLS connection (ALPN `http/1.1`) for speaking HTTP by hand: slow
/// and malformed clients.
pub async fn raw_tls(server: &Server) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    raw_tls_with(server, b"http/1.1").await
}

/// A raw TLS connection offering only the ALPN protocol `alpn`.
pub async fn raw_tls_with(
    server: &Server,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    tls_handshake(server, alpn, tcp)
        .await
        .expect("TLS handshake")
}

/// The client's side of a TLS handshake with `server` on `tcp`.
pub async fn tls_handshake(
    server: &Server,
    alpn: &[u8],
    tcp: tokio::net::TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(&server.ca_pem()).expect("CA PEM");
    roots.add(ca).expect("CA");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = ServerName::try_from("localhost").expect("name");
    connector.connect(name, tcp).await
}

/// Raises this process's soft open-files limit to its hard limit (a test
/// holding a thousand connections needs as many descriptors) and returns
/// the soft limit in force.
pub fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    );
    // `None` is unlimited (RLIM_INFINITY).
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The resident set size of process `pid`, in bytes (`VmRSS`).
pub fn resident_bytes(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

/// The anonymous part of [`resident_bytes`] (`RssAnon`): what the process
/// allocated, without the pages of its executable (which are far larger
/// in a debug build than in the release one).
pub fn anonymous_resident_bytes(pid: u32) -> u64 {
    status_bytes(pid, "RssAnon")
}

/// A `kB` field of `/proc/PID/status`, in bytes; 0 once the process is gone.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
