//! Issue 10's server findings through the real binary: idle TLS
//! connections are closed (handshake timeout, nothing sent before the
//! first request or between requests, slow headers), the connection cap
//! sheds the oldest idle connection, the open-files limit is raised, every
//! limit is counted in /metrics, and a shutdown grace shorter than an
//! evaluation still answers the review in flight.

use tollgate_tests as support;

use std::time::{Duration, Instant};

use support::{
    Launch, Server, metric, object, raw_tls, raw_tls_with, response, review, tls_handshake,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const POLICIES: &str = r#"
- id: allowed
  module: guests.wasm
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
- id: slow
  module: guests.wasm
  rule: spin
  cpuBudget: 20s
  match: {kinds: [{kind: Slow}]}
"#;

fn server(flags: &[&str]) -> Server {
    flags
        .iter()
        .fold(Launch::new().policies(POLICIES), |l, f| l.arg(*f))
        .start()
}

/// How long until the server closes `stream` (reads to EOF or an error),
/// at most `limit`; `None` if it stayed open.
async fn closed_after(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

async fn metric_of(server: &Server, name: &str) -> f64 {
    metric(&server.metrics().await, name)
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_handshake_is_closed() {
    let server = server(&["--handshake-timeout", "1s"]);
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Half a ClientHello's record header, then nothing.
    tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let closed = closed_after(&mut tcp, Duration::from_secs(10)).await;
    let closed = closed.expect("the stalled handshake is still open after 10 s");
    assert!(closed < Duration::from_secs(4), "{closed:?}");
    let name = r#"tollgate_connections_closed_total{reason="handshake_timeout"}"#;
    assert_eq!(metric_of(&server, name).await, 1.0);
}

#[tokio::test]
async fn a_tls_connection_that_sends_nothing_is_closed_http1_and_h2() {
    let server = server(&["--header-read-timeout", "1s", "--idle-timeout", "30s"]);
    let mut h1 = raw_tls(&server).await;
    let mut h2 = raw_tls_with(&server, b"h2").await;
    // An HTTP/2 client that sent its preface and settings but no request.
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    h2.flush().await.unwrap();
    for (name, stream) in [("http/1.1", &mut h1), ("h2", &mut h2)] {
        let closed = closed_after(stream, Duration::from_secs(10)).await;
        let closed = closed.unwrap_or_else(|| panic!("{name}: still open after 10 s"));
        assert!(closed < Duration::from_secs(4), "{name}: {closed:?}");
    }
    let name = r#"tollgate_connections_closed_total{reason="header_timeout"}"#;
    assert_eq!(metric_of(&server, name).await, 2.0);
}

#[tokio::test]
async fn a_slow_header_after_a_kept_alive_request_is_cut_off() {
    let server = server(&["--header-read-timeout", "1s", "--idle-timeout", "30s"]);
    let mut conn = raw_tls(&server).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0; 1024];
    let n = conn.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    // The next request's headers trickle and stop.
    conn.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    conn.flush().await.unwrap();
    let closed = closed_after(&mut conn, Duration::from_secs(10)).await;
    let closed = closed.expect("the slow header is still open after 10 s");
    assert!(closed < Duration::from_secs(4), "{closed:?}");
}

#[tokio::test]
async fn a_server_that_fell_behind_does_not_cut_off_clients_that_did_not() {
    // The finding: under 1,500 connections at once the server reached some
    // requests after the header timeout and reset them; their clients had
    // sent everything at once. Stopping the server stands in for its lag.
    let server = server(&["--handshake-timeout", "1s", "--header-read-timeout", "1s"]);
    let lag = Duration::from_millis(2500);
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut answer = vec![0; 1024];

    // The ClientHello waits unread past the handshake timeout.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // accepted
    let stopped = server.stopped();
    let handshake = tls_handshake(&server, b"http/1.1", tcp);
    tokio::pin!(handshake);
    tokio::select! {
        _ = &mut handshake => panic!("a stopped server finished a handshake"),
        () = tokio::time::sleep(lag) => {}
    }
    drop(stopped);
    let mut first = handshake.await.unwrap_or_else(|e| {
        panic!(
            "the handshake once the server caught up: {e}\n{}",
            server.logs()
        )
    });

    // Requests wait unread past the header timeout: first requests on
    // fresh connections, and a second one on a kept-alive connection.
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(raw_tls(&server).await);
    }
    for round in 0..2 {
        let stopped = server.stopped();
        for conn in std::iter::once(&mut first).chain(&mut others) {
            conn.write_all(request).await.unwrap();
        }
        tokio::time::sleep(lag).await;
        drop(stopped);
        for (i, conn) in std::iter::once(&mut first).chain(&mut others).enumerate() {
            let n = conn.read(&mut answer).await.unwrap_or(0);
            assert!(
                answer[..n].starts_with(b"HTTP/1.1 200"),
                "round {round}, connection {i}: {:?}",
                String::from_utf8_lossy(&answer[..n])
            );
        }
    }
    for reason in ["handshake_timeout", "header_timeout"] {
        let name = format!(r#"tollgate_connections_closed_total{{reason="{reason}"}}"#);
        assert_eq!(metric_of(&server, &name).await, 0.0, "{reason}");
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_and_a_busy_one_is_not() {
    let server = server(&["--idle-timeout", "1500ms", "--header-read-timeout", "10s"]);
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut idle = raw_tls(&server).await;
    let mut busy = raw_tls(&server).await;
    let mut answer = vec![0; 1024];
    for conn in [&mut idle, &mut busy] {
        conn.write_all(request).await.unwrap();
        let n = conn.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    }
    // `busy` sends a request every 500 ms for 3 s: never idle 1.5 s.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        busy.write_all(request).await.unwrap();
        let n = busy.read(&mut answer).await.unwrap();
        assert!(
            answer[..n].starts_with(b"HTTP/1.1 200"),
            "the busy connection was closed after {:?}",
            started.elapsed()
        );
    }
    let closed = closed_after(&mut idle, Duration::from_millis(100)).await;
    assert!(
        closed.is_some(),
        "the idle connection is still open after 3 s"
    );
    let name = r#"tollgate_connections_closed_total{reason="idle_timeout"}"#;
    assert_eq!(metric_of(&server, name).await, 1.0);
}

#[tokio::test]
async fn at_the_connection_cap_the_oldest_idle_connection_is_shed() {
    let server = server(&["--max-connections", "4", "--header-read-timeout", "30s"]);
    // Four connections that handshake and send nothing, oldest first.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(raw_tls(&server).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A fifth is served; the oldest idle one made room.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    let oldest = closed_after(&mut idle[0], Duration::from_secs(5)).await;
    assert!(oldest.is_some(), "the oldest idle connection is still open");
    for (i, conn) in idle.iter_mut().enumerate().skip(2) {
        let closed = closed_after(conn, Duration::from_millis(200)).await;
        assert!(closed.is_none(), "connection {i} was closed too");
    }
    let metrics = server.metrics().await;
    assert!(
        metric(
            &metrics,
            r#"tollgate_connections_closed_total{reason="shed_oldest_idle"}"#
        ) >= 1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "tollgate_connections_max"), 4.0);
    assert_eq!(
        metric(
            &metrics,
            r#"tollgate_connections_rejected_total{reason="limit"}"#
        ),
        0.0
    );
}

#[tokio::test]
async fn at_the_cap_with_every_connection_busy_a_new_one_is_refused_and_counted() {
    let server = server(&["--max-connections", "2"]);
    let client = server.client_with(|b| b.http1_only());
    let slow = review(
        "busy",
        ("example.com", "v1", "Slow"),
        "CREATE",
        object("example.com/v1", "Slow", "s"),
    );
    let url = server.url("/validate?timeout=3s");
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, slow) = (client.clone(), url.clone(), slow.clone());
            tokio::spawn(async move { support::review_with(&client, &url, &slow).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut refused = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let closed = closed_after(&mut refused, Duration::from_secs(2)).await;
    assert!(
        closed.is_some(),
        "a third connection was kept at a cap of 2"
    );
    for answer in busy {
        let answer = answer.await.unwrap();
        assert_eq!(response(&slow, &answer)["allowed"], false, "{answer}");
    }
    let name = r#"tollgate_connections_rejected_total{reason="limit"}"#;
    assert!(metric_of(&server, name).await >= 1.0);
}

#[tokio::test]
async fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
    let server = server(&[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files  SOFT  HARD  files"
    assert_eq!(fields[3], fields[4], "{line}");
    // And the connection cap fits it.
    let max = metric_of(&server, "tollgate_connections_max").await;
    let hard: f64 = fields[4].parse().unwrap_or(f64::INFINITY);
    assert!(max >= 1.0 && max <= hard, "{max} vs {line}");
}

#[tokio::test]
async fn a_body_limit_and_a_body_read_timeout_are_counted() {
    let server = server(&["--max-body-bytes", "1024", "--body-read-timeout", "500ms"]);
    let (status, _) = server.post("/validate", vec![b' '; 4096]).await;
    assert_eq!(status, 413);
    let mut slow = raw_tls(&server).await;
    slow.write_all(
        b"POST /validate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("an answer before the review deadline")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body read timeout"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let metrics = server.metrics().await;
    for reason in ["body_too_large", "body_timeout"] {
        let name = format!(r#"tollgate_requests_rejected_total{{reason="{reason}"}}"#);
        assert_eq!(metric(&metrics, &name), 1.0, "{name}");
    }
}

#[tokio::test]
async fn a_shutdown_grace_shorter_than_the_evaluation_still_answers_it() {
    let mut server = server(&["--shutdown-grace", "1500ms"]);
    let client = server.client();
    let slow = review(
        "grace-1",
        ("example.com", "v1", "Slow"),
        "CREATE",
        object("example.com/v1", "Slow", "s"),
    );
    let url = server.url("/validate?timeout=20s");
    let in_flight = {
        let (client, url, slow) = (client.clone(), url.clone(), slow.clone());
        tokio::spawn(async move { support::review_with(&client, &url, &slow).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    server.terminate();
    let answer = in_flight.await.unwrap();
    let answered = signalled.elapsed();
    let message = response(&slow, &answer)["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with("slow: policy failed (deadline)") && message.contains("shutting down"),
        "{message}"
    );
    assert!(
        answered < Duration::from_millis(1500),
        "answered {answered:?} after SIGTERM"
    );
    let status = server.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", server.logs());
}
