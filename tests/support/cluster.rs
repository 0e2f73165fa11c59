//! A real Kubernetes control plane for the cluster suites: etcd and
//! kube-apiserver (v1.28) started on free loopback ports with certificates
//! made here, the way `envtest` and kube-rs's cluster tests do it.
//!
//! The binaries come from outside the repository: `KUBE_APISERVER` and
//! `ETCD` name them (the workplace's `tools/kube/install` prints both; any
//! kube-apiserver ≥ 1.28 and etcd 3.x will do). Tests that need them are
//! `#[ignore = "needs KUBE_APISERVER and ETCD"]`; run with `--ignored`, a
//! missing binary is a failure, never a skip.
//!
//! There is no kube-proxy and no node: webhooks are registered by `url` to a
//! Tollgate on 127.0.0.1, and pods are stored but never run. Both processes
//! are killed when the [`Cluster`] is dropped (a panicking test included).
//!
//! The fault suites stop and restart either process with its own command
//! line ([`Cluster::stop_apiserver`], [`Cluster::start_apiserver`],
//! [`Cluster::restore_empty_etcd`]): the same address, certificates and
//! flags, so clients see one server go away and come back.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

/// How long the API server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running etcd + kube-apiserver; stopped on drop.
pub struct Cluster {
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The admin kubeconfig (`system:masters`).
    pub kubeconfig: PathBuf,
    /// A CA the tests may sign webhook serving certificates with.
    pub ca: TestCa,
    /// The admin's client certificate and key (PEM), for [`Cluster::api`].
    admin_identity: Vec<u8>,
    apiserver: Process,
    etcd: Process,
    /// etcd's `--data-dir`, wiped by [`Cluster::restore_empty_etcd`].
    etcd_data: PathBuf,
    _tmp: tempfile::TempDir,
}

/// A child process kept with its command line, so that it can be started
/// again exactly as before (a restart must not move the address clients
/// know, nor change the flags under test).
struct Process {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// Its stderr; every start appends, so one file tells the whole story.
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn new(name: &'static str, program: PathBuf, args: Vec<String>, log: PathBuf) -> Self {
        Self {
            name,
            program,
            args,
            log,
            child: None,
        }
    }

    /// Starts it (it must not be running); `note` goes to the log first,
    /// marking where a restart begins.
    fn spawn(&mut self, note: Option<&str>) {
        use std::io::Write;
        assert!(self.child.is_none(), "{} is already running", self.name);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        if let Some(note) = note {
            writeln!(log, "=== {note}").expect("write log");
        }
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// Kills it (SIGKILL: a crash, not a graceful shutdown) and reaps it.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How it exited, if it was started and is no longer running.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok()?
    }
}

/// A certificate authority made for one cluster.
pub struct TestCa {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A PEM certificate and its key, written to files.
pub struct ServingPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names` (DNS names or IP addresses) with `usage`, and
    /// optionally an organisation (the API server reads it as a group).
    fn leaf(
        &self,
        common_name: &str,
        organisation: Option<&str>,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let mut params = CertificateParams::new(Vec::new()).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some(o) = organisation {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("DNS name")),
            })
            .collect();
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        (cert.pem(), key.serialize_pem())
    }

    /// A serving certificate for a webhook on 127.0.0.1 / localhost, written
    /// to `dir/<name>.crt` and `dir/<name>.key`.
    pub fn serving_pair(&self, dir: &Path, name: &str) -> ServingPair {
        let (cert, key) = self.leaf(
            name,
            None,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let pair = ServingPair {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&pair.cert, cert).expect("write certificate");
        std::fs::write(&pair.key, key).expect("write key");
        pair
    }
}

/// The path in environment variable `var`, which must name an executable.
fn binary(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: this test needs a real kube-apiserver and etcd \
             (run the workplace's tools/kube/install and export what it prints)"
        )
    });
    assert!(path.is_file(), "{var}={} is not a file", path.display());
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl TestCa {
    /// A client certificate for `common_name` (clientAuth), written to
    /// `dir/<file>.crt` and `dir/<file>.key`.
    pub fn client_pair(&self, dir: &Path, file: &str, common_name: &str) -> ServingPair {
        let (cert, key) = self.leaf(common_name, None, &[], ExtendedKeyUsagePurpose::ClientAuth);
        let pair = ServingPair {
            cert: dir.join(format!("{file}.crt")),
            key: dir.join(format!("{file}.key")),
        };
        std::fs::write(&pair.cert, cert).expect("write certificate");
        std::fs::write(&pair.key, key).expect("write key");
        pair
    }
}

impl Cluster {
    /// Starts etcd and kube-apiserver and waits until `/readyz` answers.
    pub fn start() -> Self {
        Self::start_with(|_, _| Vec::new())
    }

    /// [`Cluster::start`] with more kube-apiserver flags: `extra` gets the
    /// cluster's directory and CA before the API server starts (to write
    /// the files its flags name) and returns the flags. The directory also
    /// holds `apiserver-client.crt`/`.key` (CN `kube-apiserver`, from the
    /// cluster's CA): a client certificate the API server can present to
    /// webhooks, as `tools/kube/up` writes.
    pub fn start_with(extra: impl FnOnce(&Path, &TestCa) -> Vec<String>) -> Self {
        let (kube_apiserver, etcd_bin) = (binary("KUBE_APISERVER"), binary("ETCD"));
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let ca = TestCa::new("tollgate-test-cluster-ca");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let ca_crt = write("ca.crt", &ca.cert_pem);
        let (cert, key) = ca.leaf(
            "kube-apiserver",
            None,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (apiserver_crt, apiserver_key) =
            (write("apiserver.crt", &cert), write("apiserver.key", &key));
        let (cert, key) = ca.leaf(
            "admin",
            Some("system:masters"),
            &["admin"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let admin_identity = format!("{cert}{key}").into_bytes();
        let (admin_crt, admin_key) = (write("admin.crt", &cert), write("admin.key", &key));
        // Service-account tokens are signed with a key of their own.
        let sa = KeyPair::generate().expect("service-account key");
        let sa_key = write("sa.key", &sa.serialize_pem());
        let sa_pub = write("sa.pub", &sa.public_key_pem());

        ca.client_pair(&dir, "apiserver-client", "kube-apiserver");
        let extra_args = extra(&dir, &ca);
        let (client_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let etcd_data = dir.join("etcd");
        let etcd = Process::new(
            "etcd",
            etcd_bin,
            vec![
                "--name=tollgate-test".into(),
                format!("--data-dir={}", etcd_data.display()),
                format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=tollgate-test=http://127.0.0.1:{peer_port}"),
                "--log-level=warn".into(),
            ],
            dir.join("etcd.log"),
        );
        let mut apiserver_args = vec![
            format!("--etcd-servers=http://127.0.0.1:{client_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", apiserver_crt.display()),
            format!("--tls-private-key-file={}", apiserver_key.display()),
            format!("--client-ca-file={}", ca_crt.display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--endpoint-reconciler-type=none".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
        ];
        apiserver_args.extend(extra_args);
        let apiserver = Process::new(
            "kube-apiserver",
            kube_apiserver,
            apiserver_args,
            dir.join("apiserver.log"),
        );
        let url = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = write(
            "kubeconfig",
            &format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters: [{{name: test, cluster: {{server: \"{url}\", certificate-authority: \"{ca}\"}}}}]\n\
                 users: [{{name: admin, user: {{client-certificate: \"{crt}\", client-key: \"{key}\"}}}}]\n\
                 contexts: [{{name: test, context: {{cluster: test, user: admin}}}}]\n\
                 current-context: test\n",
                ca = ca_crt.display(),
                crt = admin_crt.display(),
                key = admin_key.display(),
            ),
        );
        let mut cluster = Self {
            dir,
            url,
            kubeconfig,
            ca,
            admin_identity,
            apiserver,
            etcd,
            etcd_data,
            _tmp: tmp,
        };
        cluster.etcd.spawn(None);
        cluster.apiserver.spawn(None);
        cluster.wait_ready();
        cluster
    }

    /// Kills kube-apiserver (SIGKILL, as a crash or an OOM kill would) and
    /// waits for it to exit; etcd keeps running. Watches and requests to
    /// [`Cluster::url`] fail from here on.
    pub fn stop_apiserver(&mut self) {
        self.apiserver.stop();
    }

    /// Starts kube-apiserver again with the same flags on the same port
    /// (its log is appended to) and waits until `/readyz` answers.
    pub fn start_apiserver(&mut self) {
        self.apiserver
            .spawn(Some("kube-apiserver restarted by the test"));
        self.wait_ready();
    }

    /// What restoring an empty etcd backup does to the API server's
    /// clients: both processes stop, etcd's data is wiped, and both start
    /// again with their flags, the API server bootstrapping a new, empty
    /// cluster on the same address. Its resourceVersions start over, far
    /// below those clients last saw. The admin kubeconfig keeps working
    /// (`system:masters` needs no stored RBAC). Returns once `/readyz`
    /// answers.
    pub fn restore_empty_etcd(&mut self) {
        self.apiserver.stop();
        self.etcd.stop();
        std::fs::remove_dir_all(&self.etcd_data)
            .unwrap_or_else(|e| panic!("cannot remove {}: {e}", self.etcd_data.display()));
        self.etcd
            .spawn(Some("etcd restarted by the test with an empty data dir"));
        self.start_apiserver();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            let ready = self.kubectl(&["get", "--raw", "/readyz"]);
            if ready.status.success() {
                return;
            }
            let exited = [&mut self.apiserver, &mut self.etcd]
                .into_iter()
                .find_map(|p| Some((p.name, p.exited()?)));
            if let Some((name, status)) = exited {
                panic!(
                    "{name} exited ({status}):\n{}\n{}",
                    self.log_errors(),
                    self.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "kube-apiserver not ready within {READY_TIMEOUT:?}:\n{}\n{}",
                    self.log_errors(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last lines of both logs, for failure messages.
    pub fn log_tail(&self) -> String {
        ["apiserver.log", "etcd.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("--- {name}\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A kubeconfig for the user `name` (a client certificate with that
    /// common name and no groups): what RBAC grants a service account of
    /// that name (`system:serviceaccount:NS:SA`) is what this user may do.
    pub fn kubeconfig_for(&self, name: &str) -> PathBuf {
        let (cert, key) = self
            .ca
            .leaf(name, None, &[], ExtendedKeyUsagePurpose::ClientAuth);
        let file = name.replace(':', "_");
        let crt = self.dir.join(format!("{file}.crt"));
        let key_path = self.dir.join(format!("{file}.key"));
        std::fs::write(&crt, cert).expect("write certificate");
        std::fs::write(&key_path, key).expect("write key");
        let path = self.dir.join(format!("{file}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters: [{{name: test, cluster: {{server: \"{url}\", certificate-authority: \"{ca}\"}}}}]\n\
                 users: [{{name: user, user: {{client-certificate: \"{crt}\", client-key: \"{key}\"}}}}]\n\
                 contexts: [{{name: test, context: {{cluster: test, user: user}}}}]\n\
                 current-context: test\n",
                url = self.url,
                ca = self.dir.join("ca.crt").display(),
                crt = crt.display(),
                key = key_path.display(),
            ),
        )
        .expect("write kubeconfig");
        path
    }

    /// An HTTP client authenticated as the admin, for API calls in tight
    /// loops (`kubectl` costs a process per call).
    pub fn api(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca.cert_pem.as_bytes()).expect("CA"),
            )
            .identity(reqwest::Identity::from_pem(&self.admin_identity).expect("admin identity"))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("API client")
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The object at `path` (JSON), or `None` when it does not exist.
    pub async fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        let response = self
            .api()
            .get(self.api_url(path))
            .send()
            .await
            .expect("GET");
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        Some(response.json().await.expect("JSON"))
    }

    /// `kubectl --kubeconfig <admin> ARGS`, run to completion.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    /// `kubectl ARGS` with `input` on stdin (for `apply -f -`).
    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        let mut child =
            Command::new(std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into()))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .stdin(if input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run kubectl (install it or set KUBECTL)");
        if let Some(input) = input {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// `kubectl ARGS`, which must succeed; returns its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of `yaml`, which must succeed.
    pub fn apply(&self, yaml: &str) -> String {
        let out = self.kubectl_with_input(&["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "kubectl apply failed:\n{}\n--- input\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.apiserver.stop();
        self.etcd.stop();
    }
}
