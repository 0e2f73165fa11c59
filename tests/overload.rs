//! Overload degrades (issue 10 item 3) through the real binary: a thousand
//! connections at once, far more matched reviews than Wasm instances, are
//! all answered — the real verdict when the deadline allows, the failure
//! verdict at the deadline when it does not — never a 5xx, a reset or an
//! instantiation error, while `/healthz` and `/readyz` keep answering; and
//! answers come before `?timeout=` while guests spin on every core; and
//! 1,500 connections each in the middle of a 20 KB review keep resident
//! memory under 128 MiB.

use tollgate_tests as support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Launch, Server, object, review};
use tokio::task::JoinSet;

const POLICIES: &str = r#"
- id: labelled
  module: guests.wasm
  rule: deny
  match: {kinds: [{kind: Secret}]}
- id: fine
  module: guests.wasm
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
- id: spinner
  module: guests.wasm
  rule: spin
  cpuBudget: 20s
  match: {kinds: [{kind: Slow}]}
"#;

/// The two tests each load both cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raises the open-files limit for `connections` (a client and a server
/// end each, and some to spare), or fails the test saying why.
fn enough_open_files(connections: usize) {
    let files = support::raise_open_files_limit();
    let needed = 2 * connections as u64 + 100;
    assert!(
        files >= needed,
        "this test needs {needed} open files, the hard limit is {files}"
    );
}

/// What one review got, and how long it took from the client's send.
struct Answered {
    uid: String,
    status: u16,
    body: String,
    took: Duration,
}

async fn post(client: &reqwest::Client, url: &str, uid: &str, body: Value) -> Answered {
    let started = Instant::now();
    let sent = client.post(url).json(&body).send().await;
    let response = sent.unwrap_or_else(|e| panic!("{uid}: the request failed: {e:?}"));
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{uid}: the answer was cut off: {e:?}"));
    Answered {
        uid: uid.to_owned(),
        status,
        body,
        took: started.elapsed(),
    }
}

/// The `response` of an answer, checking it is a 200 AdmissionReview with
/// its own uid.
fn judged(answer: &Answered) -> Value {
    assert_eq!(answer.status, 200, "{}: {}", answer.uid, answer.body);
    let review: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", answer.uid, answer.body));
    assert_eq!(
        review["response"]["uid"],
        answer.uid.as_str(),
        "{}",
        answer.body
    );
    review["response"].clone()
}

fn kind_review(uid: &str, kind: &str) -> Value {
    let group = if kind == "Slow" { "example.com" } else { "" };
    let version = if kind == "Slow" {
        "example.com/v1"
    } else {
        "v1"
    };
    review(
        uid,
        (group, "v1", kind),
        "CREATE",
        object(version, kind, uid),
    )
}

/// Probes `/healthz` and `/readyz` every 100 ms on fresh connections until
/// `stop`; returns the slowest answer.
async fn probe(server: Arc<Server>, stop: Arc<tokio::sync::Notify>) -> (usize, Duration) {
    let mut worst = Duration::ZERO;
    let mut count = 0;
    loop {
        for path in ["/healthz", "/readyz"] {
            // A fresh client: a kubelet probe opens its own connection.
            let client = server.client_with(|b| b.timeout(Duration::from_secs(30)));
            let started = Instant::now();
            let response = client.get(server.url(path)).send().await;
            let response = response.unwrap_or_else(|e| panic!("{path} failed under load: {e:?}"));
            assert_eq!(response.status(), 200, "{path}");
            worst = worst.max(started.elapsed());
            count += 1;
        }
        tokio::select! {
            _ = stop.notified() => return (count, worst),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_at_once_are_all_answered_and_probes_keep_answering() {
    const CONNECTIONS: usize = 1000;
    let _serial = SERIAL.lock().await;
    enough_open_files(CONNECTIONS);
    let server = Arc::new(Launch::new().policies(POLICIES).start());
    // HTTP/1 without reuse: every review opens a connection of its own.
    let client = server.client_with(|b| {
        b.http1_only()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
    });
    let stop = Arc::new(tokio::sync::Notify::new());
    let probes = tokio::spawn(probe(server.clone(), stop.clone()));
    let url = server.url("/validate?timeout=10s");
    let mut reviews = JoinSet::new();
    let started = Instant::now();
    for i in 0..CONNECTIONS {
        let (client, url) = (client.clone(), url.clone());
        let kind = if i % 2 == 0 { "Secret" } else { "ConfigMap" };
        let uid = format!("overload-{i}");
        reviews.spawn(async move {
            let body = kind_review(&uid, kind);
            (kind, post(&client, &url, &uid, body).await)
        });
    }
    let (mut real, mut deadline) = (0, 0);
    let mut worst = Duration::ZERO;
    while let Some(done) = reviews.join_next().await {
        let (kind, answer) = done.unwrap();
        let response = judged(&answer);
        worst = worst.max(answer.took);
        let message = response["status"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("instance") && !message.contains("(trap)"),
            "{}: {message}",
            answer.uid
        );
        if message.contains("policy failed (deadline)")
            || message.contains("policy failed (overload)")
        {
            assert_eq!(response["allowed"], false, "{}", answer.body);
            deadline += 1;
        } else if kind == "Secret" {
            assert_eq!(response["allowed"], false, "{}", answer.body);
            assert!(message.starts_with("labelled: "), "{message}");
            real += 1;
        } else {
            assert_eq!(response["allowed"], true, "{}", answer.body);
            real += 1;
        }
        assert!(
            answer.took < Duration::from_secs(10),
            "{}: {:?}",
            answer.uid,
            answer.took
        );
    }
    let elapsed = started.elapsed();
    stop.notify_one();
    let (probed, slowest_probe) = probes.await.unwrap();
    eprintln!(
        "{CONNECTIONS} connections: {real} real verdicts, {deadline} failure verdicts in {elapsed:?} \
         (slowest {worst:?}); {probed} probes, slowest {slowest_probe:?}"
    );
    assert_eq!(real + deadline, CONNECTIONS);
    assert!(probed >= 2, "the probes ran");
    // Timing is the next test's concern (this one's client measures its own
    // thousand handshakes on shared cores too); here nothing may hang.
    assert!(worst < Duration::from_secs(30), "{worst:?}");
    assert!(slowest_probe < Duration::from_secs(30), "{slowest_probe:?}");
    let metrics = server.metrics().await;
    assert_eq!(
        support::metric(
            &metrics,
            r#"tollgate_connections_rejected_total{reason="limit"}"#
        ),
        0.0
    );
    for cause in ["pool", "trap"] {
        for policy in ["labelled", "fine"] {
            let name =
                format!(r#"tollgate_policy_failures_total{{policy="{policy}",cause="{cause}"}}"#);
            assert_eq!(support::metric(&metrics, &name), 0.0, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_come_before_the_timeout_while_guests_spin_on_every_core() {
    let _serial = SERIAL.lock().await;
    support::raise_open_files_limit();
    let server = Launch::new().policies(POLICIES).start();
    // Each review on a connection of its own, opened (handshake done)
    // before the clock starts, as the API server's kept-alive pool does.
    let warm = || async {
        let client = server.client_with(|b| b.http1_only().timeout(Duration::from_secs(30)));
        let warmed = client.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(warmed.status(), 200);
        // Read to the end, so the connection goes back to the pool.
        warmed.text().await.unwrap();
        client
    };
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(warm().await);
    }
    let mut spinners = Vec::new();
    for _ in 0..100 {
        spinners.push(warm().await);
    }
    let mut spinning = JoinSet::new();
    for (i, client) in spinners.into_iter().enumerate() {
        let url = server.url("/validate?timeout=5s");
        spinning.spawn(async move {
            let uid = format!("spin-{i}");
            post(&client, &url, &uid, kind_review(&uid, "Slow")).await
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut healthy = JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let url = server.url("/validate?timeout=2s");
        healthy.spawn(async move {
            let uid = format!("healthy-{i}");
            post(&client, &url, &uid, kind_review(&uid, "ConfigMap")).await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut worst_healthy, mut real) = (Duration::ZERO, 0);
    while let Some(answer) = healthy.join_next().await {
        let answer = answer.unwrap();
        let response = judged(&answer);
        // The real verdict, or (cores saturated past the deadline) the
        // failure verdict at the deadline: never late, never an error.
        let message = response["status"]["message"].as_str().unwrap_or_default();
        if response["allowed"] == true {
            real += 1;
        } else {
            assert!(
                message.starts_with("fine: policy failed (deadline)"),
                "{}",
                answer.body
            );
        }
        worst_healthy = worst_healthy.max(answer.took);
    }
    let mut worst_spinning = Duration::ZERO;
    while let Some(answer) = spinning.join_next().await {
        let answer = answer.unwrap();
        let response = judged(&answer);
        let message = response["status"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("spinner: policy failed ("), "{message}");
        worst_spinning = worst_spinning.max(answer.took);
    }
    eprintln!(
        "slowest answers: healthy (2s) {worst_healthy:?} ({real} of 50 real verdicts), \
         spinning (5s) {worst_spinning:?}"
    );
    // The API server gives up at its timeout: the answer must come first.
    assert!(worst_healthy < Duration::from_secs(2), "{worst_healthy:?}");
    // Answered at the spinners' own deadline (4.75 s, the 5% margin),
    // before the API server gives up at 5 s: guests take turns on as many
    // running slots as there are cores, so the spinners cannot starve the
    // async workers that read the requests and answer at the deadline
    // (with every spinner on the CPUs, answers came up to 0.5 s late).
    assert!(
        worst_spinning < Duration::from_secs(5),
        "{worst_spinning:?}"
    );
}

/// The captured calico-node DaemonSet UPDATE (20.5 KB), which the built-in
/// pack allows after six policies.
const LARGE_REVIEW: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/reviews/02-upgrade-v2.4-to-v2.5-kdd--validate--update-daemonset-calico-node.json"
));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_in_the_middle_of_large_reviews_keep_memory_bounded() {
    // The finding: 1,500 connections levelled at 207-219 MB. Most of it
    // was per-connection buffering (hyper grew each read buffer to a whole
    // body and kept it reserved while the review was served).
    const CONNECTIONS: usize = 1500;
    const ROUNDS: usize = 3;
    const BOUND: u64 = 128 << 20;
    let _serial = SERIAL.lock().await;
    enough_open_files(CONNECTIONS);
    // Memory is this test's concern, not time: the test's own client
    // shares the two cores, so allow the API server's longest timeout for
    // the headers as for the body. With the default 10 s, a loaded CI run
    // closed 459 fresh connections whose first request this client had not
    // begun 10 s after their handshakes (`header_timeout`, the server
    // rightly refusing an idle new connection); the client retried most on
    // new connections, and one raced the close.
    let server = Arc::new(
        Launch::new()
            .arg("--header-read-timeout")
            .arg("30s")
            .arg("--body-read-timeout")
            .arg("30s")
            .start(),
    );
    let pid = server.pid();
    // One pool: a connection per concurrent review, kept alive between
    // rounds, as the API server's client keeps them.
    let client = server.client_with(|b| {
        b.http1_only()
            .pool_max_idle_per_host(CONNECTIONS)
            .timeout(Duration::from_secs(60))
    });
    let template: Value = serde_json::from_str(LARGE_REVIEW).unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            loop {
                peak = peak.max(support::anonymous_resident_bytes(pid));
                tokio::select! {
                    _ = stop.notified() => return peak,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        })
    };
    let url = server.url("/validate?timeout=30s");
    let (mut real, mut failed) = (0, 0);
    for round in 0..ROUNDS {
        let mut reviews = JoinSet::new();
        for i in 0..CONNECTIONS {
            let (client, url) = (client.clone(), url.clone());
            let uid = format!("large-{round}-{i}");
            let mut body = template.clone();
            body["request"]["uid"] = Value::from(uid.as_str());
            reviews.spawn(async move { post(&client, &url, &uid, body).await });
        }
        while let Some(answer) = reviews.join_next().await {
            let answer = match answer {
                Ok(answer) => answer,
                // Say which of the server's limits closed the connection
                // (each close is counted by reason), and what it logged.
                Err(failed) => {
                    let metrics = server.metrics().await;
                    let closes: Vec<&str> = metrics
                        .lines()
                        .filter(|l| l.starts_with("tollgate_connections_closed_total"))
                        .collect();
                    panic!(
                        "{failed}\nconnections the server closed: {closes:?}\n{}",
                        server.log_errors()
                    )
                }
            };
            let response = judged(&answer);
            if response["allowed"] == true {
                real += 1;
            } else {
                // Saturated past the deadline: the failure verdict, on time.
                let message = response["status"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("policy failed (deadline)"),
                    "{}",
                    answer.body
                );
                failed += 1;
            }
        }
    }
    stop.notify_one();
    let peak = sampler.await.unwrap();
    eprintln!(
        "{CONNECTIONS} connections x {ROUNDS} rounds of 20.5 KB reviews: {real} allowed, \
         {failed} failure verdicts; peak anonymous RSS {} MiB",
        peak >> 20
    );
    assert_eq!(real + failed, CONNECTIONS * ROUNDS);
    assert!(peak > 0, "the sampler read the server's memory");
    assert!(peak < BOUND, "peak anonymous RSS {} MiB", peak >> 20);
}
