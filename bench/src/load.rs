//! The closed-loop load generator: N keep-alive connections, each posting
//! the same review back to back for a fixed time, every answer checked
//! (status 200, the review's uid echoed), latencies in an HDR histogram.
//!
//! It runs on one thread of the bench process; its own CPU time per review
//! is reported next to the servers' so a reader can see it is not the
//! bottleneck.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use serde::Deserialize;

use crate::client::{Connection, Endpoint};

/// What to post, where.
#[derive(Clone)]
pub struct Target {
    pub endpoint: Endpoint,
    /// Path and query.
    pub path: String,
    pub body: Bytes,
    /// Every answer must echo it.
    pub uid: String,
}

/// Requests that did not produce a correct answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Errors {
    /// Connect, TLS or HTTP failures (the connection is replaced).
    pub connection: u64,
    /// Answers with a status other than 200.
    pub status: u64,
    /// 200 answers that are not an AdmissionReview response with the uid.
    pub answer: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connection + self.status + self.answer
    }

    fn add(&mut self, other: Errors) {
        self.connection += other.connection;
        self.status += other.status;
        self.answer += other.answer;
    }
}

/// One run against one server.
#[derive(Debug, Clone)]
pub struct Run {
    /// Correct answers.
    pub reviews: u64,
    pub allowed: u64,
    pub elapsed: Duration,
    /// Latency of the correct answers, in µs.
    pub latency: Histogram<u64>,
    pub errors: Errors,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.reviews as f64 / self.elapsed.as_secs_f64()
    }

    pub fn quantile_us(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }
}

/// Pause after a failed connect, so a dead server is not hammered.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// Drives `connections` connections for `duration`. The connections are
/// opened before the clock starts, so TLS handshakes are not counted.
pub async fn run(target: &Target, connections: usize, duration: Duration) -> Run {
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(target.endpoint.connect().await.ok());
    }
    let started = Instant::now();
    let end = started + duration;
    let slots = opened.into_iter().map(|c| slot(target, c, end));
    let results = futures::future::join_all(slots).await;
    let elapsed = started.elapsed();
    let mut total = Run {
        reviews: 0,
        allowed: 0,
        elapsed,
        latency: new_histogram(),
        errors: Errors::default(),
    };
    for r in results {
        total.reviews += r.reviews;
        total.allowed += r.allowed;
        total.errors.add(r.errors);
        // Both histograms have the same bounds; adding cannot fail.
        let _ = total.latency.add(&r.latency);
    }
    total
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// One connection's loop: post, check, repeat until `end`.
async fn slot(target: &Target, mut conn: Option<Connection>, end: Instant) -> Run {
    let mut run = Run {
        reviews: 0,
        allowed: 0,
        elapsed: Duration::ZERO,
        latency: new_histogram(),
        errors: Errors::default(),
    };
    while Instant::now() < end {
        let Some(c) = conn.as_mut() else {
            match target.endpoint.connect().await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    run.errors.connection += 1;
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
            }
            continue;
        };
        let sent = Instant::now();
        match c
            .send(Method::POST, &target.path, target.body.clone())
            .await
        {
            Err(_) => {
                run.errors.connection += 1;
                conn = None;
            }
            Ok((status, _)) if status != StatusCode::OK => run.errors.status += 1,
            Ok((_, answer)) => match verdict(&answer, &target.uid) {
                Some(allowed) => {
                    run.latency
                        .saturating_record(sent.elapsed().as_micros() as u64);
                    run.reviews += 1;
                    run.allowed += u64::from(allowed);
                }
                None => run.errors.answer += 1,
            },
        }
    }
    run
}

#[derive(Deserialize)]
struct Answer {
    response: AnswerResponse,
}

#[derive(Deserialize)]
struct AnswerResponse {
    uid: String,
    allowed: bool,
}

/// `allowed` of an AdmissionReview answer to the review `uid`; `None` if
/// the answer is not one.
pub fn verdict(answer: &[u8], uid: &str) -> Option<bool> {
    let a: Answer = serde_json::from_slice(answer).ok()?;
    (a.response.uid == uid).then_some(a.response.allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Endpoint;

    const REVIEW: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-7","object":{}}}"#;

    fn target(endpoint: Endpoint, path: &str, body: &'static [u8], uid: &str) -> Target {
        Target {
            endpoint,
            path: path.into(),
            body: Bytes::from_static(body),
            uid: uid.into(),
        }
    }

    #[tokio::test]
    async fn the_floor_under_load_and_every_kind_of_error() {
        let dir = tempfile::tempdir().unwrap();
        let floor = crate::testing::floor(dir.path()).await;
        let quick = Duration::from_millis(200);

        let good = run(
            &target(floor.clone(), "/validate?timeout=10s", REVIEW, "u-7"),
            3,
            quick,
        )
        .await;
        assert!(good.reviews > 0);
        assert_eq!(
            (good.allowed, good.errors),
            (good.reviews, Errors::default())
        );
        assert_eq!(good.latency.len(), good.reviews);
        assert!(good.rate() > 0.0 && good.quantile_us(0.99) >= good.quantile_us(0.5));

        let wrong_uid = run(&target(floor.clone(), "/validate", REVIEW, "u-8"), 2, quick).await;
        assert_eq!(wrong_uid.reviews, 0);
        assert!(wrong_uid.errors.answer > 0);
        assert_eq!(wrong_uid.errors.total(), wrong_uid.errors.answer);

        let not_json = run(&target(floor.clone(), "/validate", b"{", "u-7"), 2, quick).await;
        assert!(not_json.errors.status > 0 && not_json.reviews == 0);
        let no_route = run(&target(floor, "/nowhere", REVIEW, "u-7"), 1, quick).await;
        assert!(no_route.errors.status > 0 && no_route.reviews == 0);
    }

    #[tokio::test]
    async fn a_dead_server_counts_connection_errors_and_ends_on_time() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::testing::certificate(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let dead = run(
            &target(
                Endpoint::local(port, &ca).unwrap(),
                "/validate",
                REVIEW,
                "u-7",
            ),
            2,
            Duration::from_millis(150),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(dead.reviews, 0);
        assert!(dead.errors.connection >= 2);
    }

    #[test]
    fn answers_are_checked() {
        let ok = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":false,"status":{"code":403}}}"#;
        assert_eq!(verdict(ok, "u"), Some(false));
        assert_eq!(verdict(ok, "other"), None);
        assert_eq!(verdict(br#"{"response":{"uid":"u"}}"#, "u"), None);
        assert_eq!(verdict(b"ok\n", "u"), None);
    }
}
