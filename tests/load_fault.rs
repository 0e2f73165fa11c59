//! The load-and-fault test (issue 10 item 2), bounded in count and time,
//! loopback only, through the real binary. At once:
//!
//! - ordinary reviews (a Secret gate that denies, ConfigMaps allowed) and
//!   reviews that hit hostile policies (infinite loop, memory growth,
//!   panic, garbage output) from many connections, HTTP/1 and HTTP/2;
//! - slow clients that connect and send nothing, or trickle headers;
//! - a policy-file reload every few hundred milliseconds, alternating two
//!   valid sets (whose Secret gates have different ids) and broken files
//!   (bad YAML, empty, a missing module);
//! - a certificate rotation by atomic rename;
//! - then SIGTERM mid-stream.
//!
//! Asserted: every review sent got an answer with its own uid and the
//! verdict of the set that answered it (never fail-open while a broken file
//! is on disk); ordinary reviews came before their deadline; hostile ones
//! got their failure verdict naming the policy and its cause; resident
//! memory stayed bounded; slow clients were cut off; the process exited 0
//! after answering everything it accepted.

use tollgate_tests as support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Launch, Server, metric, object, raw_tls, review};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// The hostile policies and what they fail with (`deadline` may also be
/// the breaker's or the share's doing once the spinner keeps failing).
const HOSTILE: &str = r#"
- id: spinner
  module: guests.wasm
  rule: spin
  cpuBudget: 300ms
  concurrency: 4
  match: {kinds: [{kind: Spin}]}
- id: grower
  module: guests.wasm
  rule: grow
  concurrency: 4
  match: {kinds: [{kind: Grow}]}
- id: panicker
  module: guests.wasm
  rule: panic
  match: {kinds: [{kind: Panic}]}
- id: garbler
  module: guests.wasm
  rule: garbage
  match: {kinds: [{kind: Garbage}]}
- id: fine
  module: guests.wasm
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
- id: lingerer
  module: guests.wasm
  rule: spin
  cpuBudget: 2s
  concurrency: 8
  breaker: {enabled: false}
  match: {kinds: [{kind: Linger}]}
"#;

fn valid_set(gate: &str) -> String {
    format!(
        "- id: {gate}\n  module: guests.wasm\n  rule: deny\n  match: {{kinds: [{{kind: Secret}}]}}\n{HOSTILE}"
    )
}

/// Broken configurations, each refused by a reload (the last set serves).
const BROKEN: [&str; 3] = [
    "- id: [unclosed\n",
    "",
    "- id: missing\n  module: no-such-module.wasm\n  rule: deny\n  match: {kinds: [{kind: Secret}]}\n",
];

/// The kinds sent, in rotation: ordinary ones more often.
const KINDS: [&str; 8] = [
    "Secret",
    "ConfigMap",
    "Spin",
    "Secret",
    "Grow",
    "ConfigMap",
    "Panic",
    "Garbage",
];

/// Writes `text` to `path` by atomic rename, as editors and kubelet do.
fn replace(path: &Path, text: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A CA and two leaves it signs for localhost.
struct Pki {
    ca: PathBuf,
    leaves: [(String, String); 2],
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "load-fault CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = || {
        let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let leaves = [leaf(), leaf()];
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    Pki { ca, leaves }
}

/// Whether `response` is what a serving set implies for `kind` (either
/// valid set: a Secret answer names the set's gate).
fn check(kind: &str, response: &Value) -> Result<(), String> {
    let allowed = response["allowed"].as_bool();
    let message = response["status"]["message"].as_str().unwrap_or_default();
    let ok = match kind {
        "Secret" => {
            allowed == Some(false)
                && (message.starts_with("gate-a: ") || message.starts_with("gate-b: "))
                && !message.contains("policy failed")
        }
        "ConfigMap" => allowed == Some(true),
        "Spin" => {
            allowed == Some(false)
                && ["deadline", "breaker", "overload"]
                    .iter()
                    .any(|c| message.starts_with(&format!("spinner: policy failed ({c})")))
        }
        "Grow" => {
            allowed == Some(false)
                && (message.starts_with("grower: policy failed (memory)")
                    || message.starts_with("grower: policy failed (overload)"))
        }
        "Panic" => allowed == Some(false) && message.starts_with("panicker: policy failed (trap)"),
        "Garbage" => {
            allowed == Some(false) && message.starts_with("garbler: policy failed (output)")
        }
        "Linger" => {
            allowed == Some(false) && message.starts_with("lingerer: policy failed (deadline)")
        }
        _ => unreachable!(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{kind}: {response}"))
    }
}

fn kind_review(uid: &str, kind: &str) -> Value {
    let (group, api_version) = match kind {
        "Secret" | "ConfigMap" => ("", "v1"),
        _ => ("example.com", "example.com/v1"),
    };
    review(
        uid,
        (group, "v1", kind),
        "CREATE",
        object(api_version, kind, uid),
    )
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    gate_a: AtomicU64,
    gate_b: AtomicU64,
    /// The slowest ordinary answer (µs).
    slowest_ordinary: AtomicU64,
}

/// One client connection sending reviews until `stop`.
async fn worker(
    id: usize,
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Result<(), String> {
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        let kind = KINDS[(id + n) % KINDS.len()];
        let uid = format!("w{id}-{n}");
        n += 1;
        tally.sent.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let response = client
            .post(&url)
            .json(&kind_review(&uid, kind))
            .send()
            .await
            .map_err(|e| format!("{uid} ({kind}): the request failed: {e:?}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{uid}: the answer was cut off: {e:?}"))?;
        let took = started.elapsed();
        if status != 200 {
            return Err(format!("{uid}: HTTP {status}: {text}"));
        }
        let answer: Value =
            serde_json::from_str(&text).map_err(|e| format!("{uid}: not JSON ({e}): {text}"))?;
        if answer["response"]["uid"] != uid.as_str() {
            return Err(format!("{uid}: answered with another uid: {text}"));
        }
        check(kind, &answer["response"])?;
        tally.answered.fetch_add(1, Ordering::AcqRel);
        let message = answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        if message.starts_with("gate-a: ") {
            tally.gate_a.fetch_add(1, Ordering::Relaxed);
        } else if message.starts_with("gate-b: ") {
            tally.gate_b.fetch_add(1, Ordering::Relaxed);
        }
        if matches!(kind, "Secret" | "ConfigMap") {
            // ?timeout=5s: the API server would have given up at 5 s.
            if took >= Duration::from_secs(5) {
                return Err(format!("{uid} ({kind}) answered after {took:?}"));
            }
            tally
                .slowest_ordinary
                .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Connects, finishes the handshake, sends nothing (or a header a byte at
/// a time) and reports whether the server closed it.
async fn slow_client(server: Arc<Server>, trickle: bool, stop: Arc<AtomicBool>) -> bool {
    let mut conn = raw_tls(&server).await;
    let header =
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n";
    let mut sent = 0;
    let mut buf = [0u8; 256];
    loop {
        if trickle && sent < header.len() && conn.write_all(&header[sent..=sent]).await.is_err() {
            return true;
        }
        sent += 1;
        match tokio::time::timeout(Duration::from_millis(400), conn.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) if stop.load(Ordering::Acquire) => return false,
            Err(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_with_hostile_policies_slow_clients_reloads_rotation_and_sigterm() {
    support::raise_open_files_limit();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    replace(&cert, pki.leaves[0].0.as_bytes());
    replace(&key, pki.leaves[0].1.as_bytes());
    let launch = Launch::new()
        .policies(&valid_set("gate-a"))
        .tls(&cert, &key, &pki.ca)
        .arg("--header-read-timeout")
        .arg("2s")
        .arg("--policy-memory-bytes")
        .arg("16777216");
    let policies = launch.dir().join("policies.yaml");
    let server_ref = Arc::new(launch.start());
    let pid = server_ref.pid();
    let first_leaf = support::presented_certificate(server_ref.addr).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = JoinSet::new();
    for id in 0..24 {
        let client = server_ref.client_with(|b| {
            let b = b.timeout(Duration::from_secs(30));
            if id % 2 == 0 { b.http1_only() } else { b }
        });
        let url = server_ref.url("/validate?timeout=5s");
        tasks.spawn(worker(id, client, url, stop.clone(), tally.clone()));
    }
    let mut slow = JoinSet::new();
    for i in 0..30 {
        slow.spawn(slow_client(server_ref.clone(), i % 3 == 0, stop.clone()));
    }

    // Reloads every 300 ms: valid B, broken, valid A, broken, ...; the
    // certificate rotates once, a few seconds in; memory is sampled.
    let started = Instant::now();
    let mut peak_rss = 0u64;
    let mut step = 0usize;
    let mut rotated = false;
    while started.elapsed() < Duration::from_secs(20) {
        let text = match step % 4 {
            0 => valid_set("gate-b"),
            2 => valid_set("gate-a"),
            _ => BROKEN[(step / 2) % BROKEN.len()].to_owned(),
        };
        replace(&policies, text.as_bytes());
        step += 1;
        if !rotated && started.elapsed() > Duration::from_secs(6) {
            replace(&key, pki.leaves[1].1.as_bytes());
            replace(&cert, pki.leaves[1].0.as_bytes());
            rotated = true;
        }
        peak_rss = peak_rss.max(support::resident_bytes(pid));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // End on a valid set.
    replace(&policies, valid_set("gate-a").as_bytes());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rotated_leaf = support::presented_certificate(server_ref.addr).await;
    assert_ne!(
        rotated_leaf, first_leaf,
        "the rotated certificate is not served"
    );
    let metrics = server_ref.metrics().await;

    // SIGTERM mid-stream: workers stop sending after their current review
    // (a review sent after the signal may be refused, which is not losing
    // an accepted one); those in flight must all be answered.
    stop.store(true, Ordering::Release);
    // And eight reviews certainly in flight: their guest spins for 2 s of CPU.
    let mut lingering = JoinSet::new();
    for i in 0..8 {
        let client = server_ref.client_with(|b| b.timeout(Duration::from_secs(30)));
        let url = server_ref.url("/validate?timeout=10s");
        lingering.spawn(async move {
            let uid = format!("linger-{i}");
            let answer = client
                .post(&url)
                .json(&kind_review(&uid, "Linger"))
                .send()
                .await;
            let answer = answer.map_err(|e| format!("{uid}: the request failed: {e:?}"))?;
            let text = answer
                .text()
                .await
                .map_err(|e| format!("{uid}: cut off: {e:?}"))?;
            let answer: Value =
                serde_json::from_str(&text).map_err(|e| format!("{uid}: {e}: {text}"))?;
            if answer["response"]["uid"] != uid.as_str() {
                return Err(format!("{uid}: answered with another uid: {text}"));
            }
            check("Linger", &answer["response"])
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server_ref.terminate();
    while let Some(done) = lingering.join_next().await {
        if let Err(error) = done.unwrap() {
            panic!("{error}\n{}", tail(&server_ref.logs()));
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(error) = done.unwrap() {
            panic!("{error}\n{}", tail(&server_ref.logs()));
        }
    }
    let mut closed = 0;
    while let Some(done) = slow.join_next().await {
        closed += usize::from(done.unwrap());
    }
    let mut server = Arc::into_inner(server_ref).expect("the only handle");
    let status = server.wait(Duration::from_secs(40));
    let exited = signalled.elapsed();

    let sent = tally.sent.load(Ordering::Acquire);
    let answered = tally.answered.load(Ordering::Acquire);
    let slowest = Duration::from_micros(tally.slowest_ordinary.load(Ordering::Relaxed));
    let reload = |r: &str| {
        metric(
            &metrics,
            &format!(r#"tollgate_reloads_total{{result="{r}"}}"#),
        )
    };
    eprintln!(
        "sent {sent}, answered {answered}; gate-a {}, gate-b {}; slowest ordinary {slowest:?}; \
         reloads ok {} error {}; peak RSS {} MiB; slow clients closed {closed}/30; exited {exited:?} after SIGTERM",
        tally.gate_a.load(Ordering::Relaxed),
        tally.gate_b.load(Ordering::Relaxed),
        reload("ok"),
        reload("error"),
        peak_rss >> 20,
    );
    assert!(status.success(), "{status:?}\n{}", tail(&server.logs()));
    assert_eq!(answered, sent, "every review sent was answered");
    assert!(sent >= 200, "only {sent} reviews in 20 s");
    assert!(tally.gate_a.load(Ordering::Relaxed) > 0 && tally.gate_b.load(Ordering::Relaxed) > 0);
    assert!(reload("ok") >= 10.0 && reload("error") >= 10.0, "{metrics}");
    assert_eq!(closed, 30, "slow clients still open");
    assert!(
        metric(
            &metrics,
            r#"tollgate_connections_closed_total{reason="header_timeout"}"#
        ) >= 30.0
    );
    // Sixteen grow evaluations at most (two shares of 4 hold up to 16 MiB
    // each, plus the bundles): far from unbounded.
    assert!(peak_rss < 512 << 20, "peak RSS {} MiB", peak_rss >> 20);
}

fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
