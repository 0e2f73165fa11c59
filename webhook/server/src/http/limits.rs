//! Connection-level limits: every open connection is registered with its
//! activity, so that a connection that sends nothing (before its first
//! request or between requests) is closed, a slow header is cut off, and
//! at the connection cap the connection idle the longest makes room for a
//! new one. Idle connections cost a file descriptor and TLS buffers each;
//! without these bounds a client opening thousands of them and sending
//! nothing exhausts the process (issue 10).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::{ConnectionClosed, Metrics};

/// The connection limits (command-line flags).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub handshake_timeout: Duration,
    /// From the end of the handshake to a first request's complete
    /// headers, and from a request's first byte to its complete headers.
    pub header_read_timeout: Duration,
    /// No request in flight and nothing received for this long.
    pub idle_timeout: Duration,
    pub max_connections: u32,
}

/// "Never" in the nanosecond timestamps of [`Activity`].
const NONE: u64 = u64::MAX;

/// What a connection speaks, in [`Activity::phase`].
const HANDSHAKE: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

/// What a connection is doing, readable without a lock.
pub(super) struct Activity {
    base: Instant,
    /// Requests being answered (HTTP/2: streams).
    in_flight: AtomicU32,
    /// Requests answered so far.
    answered: AtomicU64,
    /// Since when nothing has been in flight (ns after `base`); the end of
    /// the handshake before a first request.
    idle_since: AtomicU64,
    /// When the server last wrote during the handshake (ns after `base`).
    handshake_written: AtomicU64,
    /// When the first byte of the next request arrived while idle; `NONE`
    /// when none did.
    reading_since: AtomicU64,
    /// Woken on every change of state (and to shed the connection).
    wake: Notify,
    /// Closed at the cap to make room for a new connection.
    shed: AtomicBool,
    /// `HANDSHAKE`, `HTTP1` or `HTTP2`. Only HTTP/1 reads start a request
    /// (an HTTP/2 client sends window updates and pings between requests);
    /// only handshake writes extend the handshake's deadline.
    phase: AtomicU8,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicU32::new(0),
            answered: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            handshake_written: AtomicU64::new(0),
            reading_since: AtomicU64::new(NONE),
            wake: Notify::new(),
            shed: AtomicBool::new(false),
            phase: AtomicU8::new(HANDSHAKE),
        }
    }

    /// The handshake is done and chose HTTP/2 or HTTP/1. A first request's
    /// header timeout counts from now: the handshake had its own.
    pub(super) fn handshaken(&self, h2: bool) {
        self.idle_since.store(self.now(), Ordering::Release);
        self.phase
            .store(if h2 { HTTP2 } else { HTTP1 }, Ordering::Release);
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn at(&self, nanos: u64) -> Instant {
        self.base + Duration::from_nanos(nanos)
    }

    /// Bytes of an HTTP/1 request arrived from the client.
    fn received(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.reading_since.load(Ordering::Acquire) == NONE
            && self
                .reading_since
                .compare_exchange(NONE, self.now(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.wake.notify_one();
        }
    }

    /// Bytes went out; during the handshake that is a flight the client
    /// must answer.
    fn written(&self, polled: &Poll<std::io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0)
            && self.phase.load(Ordering::Relaxed) == HANDSHAKE
        {
            self.handshake_written.store(self.now(), Ordering::Release);
        }
    }

    /// A request's headers are complete; returns when the request began
    /// (its first byte, or the connection's start for a first request,
    /// which a client sends right after its handshake): the start of its
    /// deadline.
    pub(super) fn request_started(&self) -> Instant {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let reading = self.reading_since.swap(NONE, Ordering::AcqRel);
        if self.answered.load(Ordering::Acquire) == 0 {
            return self.base;
        }
        match reading {
            NONE => Instant::now(),
            nanos => self.at(nanos),
        }
    }

    /// A request was answered.
    pub(super) fn request_finished(&self) {
        self.answered.fetch_add(1, Ordering::AcqRel);
        self.idle_since.store(self.now(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Idle since when, if idle: nothing in flight and no request begun.
    fn idle(&self) -> Option<Instant> {
        let quiet = self.in_flight.load(Ordering::Acquire) == 0
            && self.reading_since.load(Ordering::Acquire) == NONE;
        quiet.then(|| self.at(self.idle_since.load(Ordering::Acquire)))
    }

    /// The next limit this connection can run into, and when; `None` while
    /// a request is in flight (its own deadline bounds it).
    fn next_limit(&self, limits: &ConnectionLimits) -> Option<(Instant, ConnectionClosed)> {
        if self.phase.load(Ordering::Acquire) == HANDSHAKE {
            // `timeout` after accept, or after the server's last handshake
            // flight if later: the client gets the whole timeout to answer
            // each flight, and a server late in sending one (under load)
            // does not count against it. Two or three flights bound it.
            let written = self.handshake_written.load(Ordering::Acquire);
            return Some((
                self.at(written) + limits.handshake_timeout,
                ConnectionClosed::HandshakeTimeout,
            ));
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(match self.reading_since.load(Ordering::Acquire) {
            NONE if self.answered.load(Ordering::Acquire) == 0 => (
                self.at(self.idle_since.load(Ordering::Acquire)) + limits.header_read_timeout,
                ConnectionClosed::HeaderTimeout,
            ),
            NONE => (
                self.at(self.idle_since.load(Ordering::Acquire)) + limits.idle_timeout,
                ConnectionClosed::IdleTimeout,
            ),
            since => (
                self.at(since) + limits.header_read_timeout,
                ConnectionClosed::HeaderTimeout,
            ),
        })
    }

    /// Resolves when the connection must be closed, with the reason. A
    /// limit on the client's slowness does not apply while bytes it sent
    /// wait unread ([`Unread`]): then the server is the one behind. Poll
    /// it after the connection (`biased`), so that what has arrived is
    /// consumed first.
    pub(super) async fn expired(
        &self,
        limits: &ConnectionLimits,
        unread: Unread,
    ) -> ConnectionClosed {
        loop {
            if self.shed.load(Ordering::Acquire) {
                return ConnectionClosed::Shed;
            }
            let now = Instant::now();
            let next = match self.next_limit(limits) {
                Some((when, _)) if when > now => Some(when),
                // Bytes unread: the server is behind, not the client.
                Some(_) if unread.pending() => Some(now + UNREAD_RECHECK),
                Some((_, reason)) => return reason,
                None => None,
            };
            // Any change of state wakes this up to look again (a later
            // handshake flight needs none: it only moves the deadline on).
            let woken = self.wake.notified();
            match next {
                Some(when) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(when) => {}
                        _ = woken => {}
                    }
                }
                None => woken.await,
            }
        }
    }
}

/// How soon a limit is looked at again when it passed with bytes unread.
const UNREAD_RECHECK: Duration = Duration::from_millis(20);

/// Whether a connection's client has sent bytes the server has not read.
/// Asked of the kernel: tokio learns that a socket is readable only at its
/// driver's next turn, which a busy (or stopped) server reaches late,
/// possibly after a timer that fired at the same time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unread(RawFd);

impl Unread {
    /// The socket must stay open while this is asked: `connection::serve`
    /// polls its limits only beside the connection that owns it.
    pub(super) fn of(stream: &tokio::net::TcpStream) -> Self {
        Self(stream.as_raw_fd())
    }

    #[allow(unsafe_code)]
    pub(super) fn pending(self) -> bool {
        // SAFETY: the descriptor stays open while this is asked (see `of`).
        // The stream itself cannot be borrowed here: it has moved into the
        // TLS stack, and holding a duplicate would double the descriptors.
        let fd = unsafe { BorrowedFd::borrow_raw(self.0) };
        rustix::io::ioctl_fionread(fd).is_ok_and(|bytes| bytes > 0)
    }
}

/// Every open connection.
pub(super) struct Registry {
    limits: ConnectionLimits,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next: AtomicU64,
    metrics: Arc<Metrics>,
}

/// A registered connection; unregisters when dropped.
pub(super) struct Registered {
    id: u64,
    registry: Arc<Registry>,
    pub activity: Arc<Activity>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let removed = self.registry.lock().remove(&self.id).is_some();
        if removed {
            self.registry.metrics.connections_open(-1);
        }
    }
}

impl Registry {
    pub(super) fn new(limits: ConnectionLimits, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.connection_limit(limits.max_connections);
        Arc::new(Self {
            limits,
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            metrics,
        })
    }

    pub(super) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection; at the cap, sheds the connection idle
    /// the longest, or refuses (`None`) when every one is busy.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Registered> {
        let mut open = self.lock();
        if open.len() >= self.limits.max_connections as usize {
            let oldest = open
                .iter()
                .filter_map(|(id, a)| Some((a.idle()?, *id)))
                .min()
                .map(|(_, id)| id);
            let Some(id) = oldest else {
                drop(open);
                self.metrics.connection_refused();
                return None;
            };
            let shed = open.remove(&id).expect("listed");
            shed.shed.store(true, Ordering::Release);
            shed.wake.notify_one();
            self.metrics.connections_open(-1);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        open.insert(id, activity.clone());
        drop(open);
        self.metrics.connections_open(1);
        Some(Registered {
            id,
            registry: self.clone(),
            activity,
        })
    }
}

/// A stream that tells its connection's [`Activity`] when bytes arrive.
pub(super) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(super) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.phase.load(Ordering::Relaxed) == HTTP1 {
            self.activity.received();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.written(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.written(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Raises the soft open-files limit to the hard one (thousands of
/// connections need as many descriptors; many distributions start
/// processes at 1,024) and returns the soft limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` is unlimited (RLIM_INFINITY).
    let current = limit.current.unwrap_or(u64::MAX);
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    if current < maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(maximum);
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::{Activity, ConnectionLimits, Unread};
    use crate::metrics::ConnectionClosed;
    use std::task::Poll;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMITS: ConnectionLimits = ConnectionLimits {
        handshake_timeout: Duration::from_secs(10),
        header_read_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(60),
        max_connections: 1,
    };

    #[test]
    fn each_handshake_flight_gives_the_client_the_whole_timeout_and_the_header_clock_starts_after()
    {
        let activity = Activity::new();
        let accepted = activity.base;
        let limit = activity.next_limit(&LIMITS);
        assert_eq!(
            limit,
            Some((
                accepted + LIMITS.handshake_timeout,
                ConnectionClosed::HandshakeTimeout
            ))
        );
        std::thread::sleep(Duration::from_millis(5));
        activity.written(&Poll::Ready(Ok(0)));
        assert_eq!(activity.next_limit(&LIMITS), limit, "nothing was sent");
        activity.written(&Poll::Ready(Ok(100)));
        let (flight, reason) = activity.next_limit(&LIMITS).unwrap();
        assert_eq!(reason, ConnectionClosed::HandshakeTimeout);
        assert!(flight >= accepted + LIMITS.handshake_timeout + Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(5));
        activity.handshaken(false);
        let (first_request, reason) = activity.next_limit(&LIMITS).unwrap();
        assert_eq!(reason, ConnectionClosed::HeaderTimeout);
        assert!(first_request >= accepted + LIMITS.header_read_timeout + Duration::from_millis(10));
        activity.written(&Poll::Ready(Ok(100)));
        assert_eq!(
            activity.next_limit(&LIMITS),
            Some((first_request, reason)),
            "a response is no flight"
        );
    }

    #[tokio::test]
    async fn unread_is_what_the_client_sent_and_the_server_has_not_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let unread = Unread::of(&server);
        assert!(!unread.pending(), "nothing sent yet");
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        server.readable().await.unwrap();
        assert!(unread.pending(), "sent and not read");
        let mut read = [0; 64];
        let n = server.read(&mut read).await.unwrap();
        assert_eq!(n, 16);
        assert!(!unread.pending(), "all of it read");
    }
}
