//! Prometheus metrics, exposed in text format on `/metrics`.
//!
//! One recording path per event ([`Metrics::evaluated`] for every policy
//! evaluation) so counters, histograms and failure causes never disagree.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tollgate_certs::CertMetrics;
use tollgate_host::{Endpoint, FailureCause, Mode, SandboxStats};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    endpoint: &'static str,
    policy: String,
    verdict: &'static str,
    mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    policy: String,
    cause: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

fn policy_labels(policy: &str) -> PolicyLabels {
    PolicyLabels {
        policy: policy.to_owned(),
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latencies from 25 µs to about 1.6 s: a policy answers in microseconds;
/// the top buckets catch deadlines.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(25e-6, 2.0, 17))
}

/// Every metric Tollgate exports.
pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    evaluation: HistogramFamily<PolicyLabels>,
    failures: Family<FailureLabels, Counter>,
    /// Per endpoint, indexed by [`endpoint_index`]: pre-resolved so the
    /// no-match path touches no map.
    unmatched: [Counter; 2],
    review_duration: [Histogram; 2],
    invalid: [Counter; 2],
    reloads: Family<ResultLabels, Counter>,
    certificates: CertMetrics,
    policies_loaded: Gauge,
    queue_depth: Gauge,
    queue_wait: Histogram,
    queue_expired: Counter,
    slots: Gauge,
    policy_in_flight: Family<PolicyLabels, Gauge>,
    policy_slots: Family<PolicyLabels, Gauge>,
    breaker_state: Family<PolicyLabels, Gauge>,
    breaker_opened: Family<PolicyLabels, Counter>,
    connections_open: Gauge,
    connections_max: Gauge,
    connections_closed: Family<ReasonLabels, Counter>,
    connections_rejected: Family<ReasonLabels, Counter>,
    requests_rejected: Family<ReasonLabels, Counter>,
    clients_refused: Family<ReasonLabels, Counter>,
}

/// Why the server closed a connection itself (`tollgate_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionClosed {
    /// The TLS handshake did not finish within `--handshake-timeout`.
    HandshakeTimeout,
    /// Request headers (or a first request) did not arrive within
    /// `--header-read-timeout`.
    HeaderTimeout,
    /// Nothing in flight for `--idle-timeout`.
    IdleTimeout,
    /// Idle the longest when a new connection arrived at `--max-connections`.
    Shed,
}

impl ConnectionClosed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HandshakeTimeout => "handshake_timeout",
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Shed => "shed_oldest_idle",
        }
    }

    const ALL: [Self; 4] = [
        Self::HandshakeTimeout,
        Self::HeaderTimeout,
        Self::IdleTimeout,
        Self::Shed,
    ];
}

/// Why a request was refused before any policy saw it at a limit
/// (`tollgate_requests_rejected_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRejected {
    /// Larger than `--max-body-bytes` (413).
    BodyTooLarge,
    /// Not arrived within `--body-read-timeout` or the review deadline (408).
    BodyTimeout,
    /// `--max-queued-reviews` already waiting (failure verdicts, cause overload).
    QueueFull,
}

impl RequestRejected {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::QueueFull => "queue_full",
        }
    }

    const ALL: [Self; 3] = [Self::BodyTooLarge, Self::BodyTimeout, Self::QueueFull];
}

/// Why a handshake on `--listen` was refused for its client certificate
/// (`tollgate_client_certificates_refused_total`, with `--client-ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRefused {
    /// The client sent no certificate.
    NoCertificate,
    /// Not signed by the `--client-ca` (another CA's, or self-signed).
    UnknownCa,
    /// From the CA, but naming none of `--client-name`.
    NameNotAllowed,
    /// Otherwise unacceptable: expired, not for client auth, malformed.
    Invalid,
}

impl ClientRefused {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::UnknownCa => "unknown_ca",
            Self::NameNotAllowed => "name_not_allowed",
            Self::Invalid => "invalid",
        }
    }

    const ALL: [Self; 4] = [
        Self::NoCertificate,
        Self::UnknownCa,
        Self::NameNotAllowed,
        Self::Invalid,
    ];
}

/// A policy's circuit breaker, as the `tollgate_policy_breaker_state` gauge
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

const ENDPOINTS: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

fn endpoint_index(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Validate => 0,
        Endpoint::Mutate => 1,
    }
}

pub fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Warn => "warn",
        Mode::Audit => "audit",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `tollgate_modules_loaded_total{origin}`: the sandbox keeps one counter
/// per origin; exposing each through its own labelled sub-registry wrote the
/// family three times (three HELP and TYPE lines for one name), which strict
/// parsers reject. This collector writes it once, with three series.
#[derive(Debug)]
struct ModulesLoaded(SandboxStats);

impl Collector for ModulesLoaded {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "modules_loaded",
            "Policy modules loaded, by where their compiled code came from",
            None,
            MetricType::Counter,
        )?;
        let stats = &self.0;
        for (origin, counter) in [
            ("compiled", &stats.compiled),
            ("disk-cache", &stats.from_disk_cache),
            ("memory", &stats.from_memory),
        ] {
            counter.encode(family.encode_family(&[("origin", origin)])?)?;
        }
        Ok(())
    }
}

/// `tollgate_module_cache_rejected_total{reason}`: compiled-module cache
/// entries not loaded because they failed their authentication, and loads
/// that skipped a cache directory another user can write.
#[derive(Debug)]
struct CacheRejected(SandboxStats);

impl Collector for CacheRejected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "module_cache_rejected",
            "Compiled-module cache entries not loaded (the module was compiled again), by reason (unauthenticated, unsafe_directory)",
            None,
            MetricType::Counter,
        )?;
        let stats = &self.0;
        for (reason, counter) in [
            ("unauthenticated", &stats.cache_unauthenticated),
            ("unsafe_directory", &stats.cache_unsafe_directory),
        ] {
            counter.encode(family.encode_family(&[("reason", reason)])?)?;
        }
        Ok(())
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("tollgate");
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "reviews",
            "Policy evaluations by endpoint, policy, verdict (allow, deny, warn, patch, failure) and mode",
            reviews.clone(),
        );
        let evaluation: HistogramFamily<PolicyLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "evaluation_duration_seconds",
            "Time to evaluate one policy on one review",
            evaluation.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "policy_failures",
            "Evaluations that produced no verdict, by cause (deadline, memory, trap, output)",
            failures.clone(),
        );
        let per_endpoint_counter = Family::<EndpointLabels, Counter>::default();
        let per_endpoint_duration: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(latency_histogram);
        let invalid_family = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "unmatched_reviews",
            "Reviews that entered no policy",
            per_endpoint_counter.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Time from a review's arrival to its answer",
            per_endpoint_duration.clone(),
        );
        registry.register(
            "invalid_reviews",
            "Requests that were not a usable AdmissionReview",
            invalid_family.clone(),
        );
        let labels = |e: Endpoint| EndpointLabels {
            endpoint: e.as_str(),
        };
        let unmatched = ENDPOINTS.map(|e| per_endpoint_counter.get_or_create(&labels(e)).clone());
        let review_duration =
            ENDPOINTS.map(|e| per_endpoint_duration.get_or_create(&labels(e)).clone());
        let invalid = ENDPOINTS.map(|e| invalid_family.get_or_create(&labels(e)).clone());
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reloads",
            "Policy configuration reloads by result (ok, error)",
            reloads.clone(),
        );
        let certificates = CertMetrics::default();
        certificates.register(registry);
        // Both results exist from the start, so `rate()` alerts see a zero.
        for result in ["ok", "error"] {
            drop(reloads.get_or_create(&ResultLabels { result }));
        }
        let policies_loaded = Gauge::default();
        registry.register(
            "policies_loaded",
            "Policies in the set currently serving",
            policies_loaded.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "evaluation_queue_depth",
            "Reviews waiting for an evaluation slot (all slots busy)",
            queue_depth.clone(),
        );
        let queue_wait = latency_histogram();
        registry.register(
            "evaluation_queue_wait_seconds",
            "Time a matched review waited for an evaluation slot",
            queue_wait.clone(),
        );
        let queue_expired = Counter::default();
        registry.register(
            "evaluation_queue_expired",
            "Reviews whose deadline passed while they waited for a slot (answered with their policies' failure verdicts)",
            queue_expired.clone(),
        );
        let slots = Gauge::default();
        registry.register(
            "evaluation_slots",
            "Evaluations that may hold a Wasm instance at once",
            slots.clone(),
        );
        let policy_in_flight = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "policy_evaluations_in_flight",
            "Evaluations of each policy holding one of its concurrency slots",
            policy_in_flight.clone(),
        );
        let policy_slots = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "policy_evaluation_slots",
            "Concurrency slots of each policy (its share of the instance pool; reviews beyond it wait, then fail with cause overload)",
            policy_slots.clone(),
        );
        let breaker_state = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "policy_breaker_state",
            "Circuit breaker of each policy: 0 closed, 1 open (failing fast with cause breaker), 2 half-open (probing)",
            breaker_state.clone(),
        );
        let breaker_opened = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "policy_breaker_opened",
            "Times each policy's circuit breaker opened",
            breaker_opened.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "TLS connections open (handshaking included)",
            connections_open.clone(),
        );
        let connections_max = Gauge::default();
        registry.register(
            "connections_max",
            "The connection cap (--max-connections, lowered to fit the open-files limit)",
            connections_max.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the server closed at a limit, by reason (handshake_timeout, header_timeout, idle_timeout, shed_oldest_idle)",
            connections_closed.clone(),
        );
        let connections_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_rejected",
            "New connections closed unserved, by reason (limit: at --max-connections with none idle)",
            connections_rejected.clone(),
        );
        let requests_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "requests_rejected",
            "Requests refused at a limit, by reason (body_too_large, body_timeout, queue_full)",
            requests_rejected.clone(),
        );
        let clients_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "client_certificates_refused",
            "TLS handshakes refused for the client certificate (--client-ca), by reason (no_certificate, unknown_ca, name_not_allowed, invalid)",
            clients_refused.clone(),
        );
        // Every reason exists from the start, so `rate()` alerts see a zero.
        for reason in ClientRefused::ALL {
            drop(clients_refused.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            }));
        }
        for reason in ConnectionClosed::ALL {
            drop(connections_closed.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            }));
        }
        drop(connections_rejected.get_or_create(&ReasonLabels { reason: "limit" }));
        for reason in RequestRejected::ALL {
            drop(requests_rejected.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            }));
        }
        Self {
            clients_refused,
            connections_open,
            connections_max,
            connections_closed,
            connections_rejected,
            requests_rejected,
            registry: root,
            reviews,
            evaluation,
            failures,
            unmatched,
            review_duration,
            invalid,
            reloads,
            certificates,
            policies_loaded,
            queue_depth,
            queue_wait,
            queue_expired,
            slots,
            policy_in_flight,
            policy_slots,
            breaker_state,
            breaker_opened,
        }
    }

    /// Records one policy evaluation.
    pub fn evaluated(
        &self,
        endpoint: Endpoint,
        policy: &str,
        mode: Mode,
        verdict: &'static str,
        failure: Option<FailureCause>,
        elapsed: Duration,
    ) {
        self.reviews
            .get_or_create(&ReviewLabels {
                endpoint: endpoint.as_str(),
                policy: policy.to_owned(),
                verdict,
                mode: mode_label(mode),
            })
            .inc();
        self.evaluation
            .get_or_create(&PolicyLabels {
                policy: policy.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
        if let Some(cause) = failure {
            self.failures
                .get_or_create(&FailureLabels {
                    policy: policy.to_owned(),
                    cause: cause.as_str(),
                })
                .inc();
        }
    }

    /// Records a review answered, `matched` whether it entered any policy.
    pub fn answered(&self, endpoint: Endpoint, matched: bool, elapsed: Duration) {
        let i = endpoint_index(endpoint);
        if !matched {
            self.unmatched[i].inc();
        }
        self.review_duration[i].observe(elapsed.as_secs_f64());
    }

    /// Records a request refused before any policy could see it.
    pub fn invalid(&self, endpoint: Endpoint) {
        self.invalid[endpoint_index(endpoint)].inc();
    }

    /// Records a policy reload; `loaded` is the new set's size on success.
    pub fn reloaded(&self, loaded: Option<usize>) {
        let result = if loaded.is_some() { "ok" } else { "error" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        if let Some(n) = loaded {
            self.policies_loaded.set(n as i64);
        }
    }

    /// Sets the size of the initial policy set.
    pub fn loaded(&self, policies: usize) {
        self.policies_loaded.set(policies as i64);
    }

    /// The serving certificate's series, for `tollgate_certs`.
    pub fn certificates(&self) -> &CertMetrics {
        &self.certificates
    }

    /// Records a review leaving the evaluation queue, admitted or not.
    pub fn queue_waited(&self, waited: Duration, admitted: bool) {
        self.queue_wait.observe(waited.as_secs_f64());
        if !admitted {
            self.queue_expired.inc();
        }
    }

    /// A review joins (`1`) or leaves (`-1`) the evaluation queue.
    pub fn queue_depth(&self, change: i64) {
        self.queue_depth.inc_by(change);
    }

    /// One more (`1`) or one fewer (`-1`) evaluation of `policy` in flight.
    pub fn policy_in_flight(&self, policy: &str, change: i64) {
        self.policy_in_flight
            .get_or_create(&policy_labels(policy))
            .inc_by(change);
    }

    pub fn policy_slots(&self, policy: &str, slots: u32) {
        self.policy_slots
            .get_or_create(&policy_labels(policy))
            .set(i64::from(slots));
    }

    /// A policy's breaker changed state.
    pub fn breaker(&self, policy: &str, state: BreakerState) {
        let labels = policy_labels(policy);
        if state == BreakerState::Open {
            self.breaker_opened.get_or_create(&labels).inc();
        }
        self.breaker_state.get_or_create(&labels).set(state as i64);
    }

    /// One more (`1`) or one fewer (`-1`) connection open.
    pub fn connections_open(&self, change: i64) {
        self.connections_open.inc_by(change);
    }

    pub fn connection_limit(&self, max: u32) {
        self.connections_max.set(i64::from(max));
    }

    pub fn connection_closed(&self, reason: ConnectionClosed) {
        self.connections_closed
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A new connection was closed unserved: the cap was reached and no
    /// connection was idle.
    pub fn connection_refused(&self) {
        self.connections_rejected
            .get_or_create(&ReasonLabels { reason: "limit" })
            .inc();
    }

    pub fn request_rejected(&self, reason: RequestRejected) {
        self.requests_rejected
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn client_refused(&self, reason: ClientRefused) {
        self.clients_refused
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn evaluation_slots(&self, slots: u32) {
        self.slots.set(i64::from(slots));
    }

    /// Registers the sandbox's counters: instances started, modules loaded
    /// by origin.
    pub fn register_sandbox(&mut self, stats: &SandboxStats) {
        let registry = self.registry.sub_registry_with_prefix("tollgate");
        registry.register(
            "wasm_instances",
            "Wasm instances started: one per v1 rule or v2 bundle evaluated, one per load-time call",
            stats.instances.clone(),
        );
        registry.register(
            "guest_cpu_waits",
            "Times a policy guest waited for a turn on a CPU (--running-guests were running, or it gave its turn to another policy at a tick)",
            stats.cpu_waits.clone(),
        );
        registry.register(
            "evaluations_handed_off",
            "Reviews whose evaluation moved from the request's thread to an evaluation thread (a guest ran a whole epoch tick, or its policy is known to run long)",
            stats.handed_off.clone(),
        );
        registry.register_collector(Box::new(ModulesLoaded(stats.clone())));
        registry.register_collector(Box::new(CacheRejected(stats.clone())));
    }

    /// Registers the cluster-context caches' metrics (they carry their own
    /// `tollgate_context_` names).
    pub fn register_context(&mut self) -> tollgate_context::ContextMetrics {
        tollgate_context::ContextMetrics::register(&mut self.registry)
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_sandbox_counters() {
        let mut m = Metrics::new();
        let stats = SandboxStats::default();
        m.register_sandbox(&stats);
        stats.instances.inc_by(3);
        stats.from_disk_cache.inc();
        let text = m.encode();
        for line in [
            "tollgate_wasm_instances_total 3",
            r#"tollgate_modules_loaded_total{origin="disk-cache"} 1"#,
            r#"tollgate_modules_loaded_total{origin="compiled"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    /// The text format's rules as strict parsers (Prometheus' own) apply
    /// them: one HELP and one TYPE per family, before its samples; a
    /// family's samples together; no series twice.
    fn assert_strict_exposition(text: &str) {
        use std::collections::HashSet;
        let (mut help, mut types, mut series, mut closed) = (
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
        );
        let mut current: Option<String> = None;
        for line in text.lines().filter(|l| !l.is_empty() && *l != "# EOF") {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default().to_owned();
                assert!(help.insert(name.clone()), "second HELP for {name}");
                if let Some(done) = current.replace(name) {
                    closed.insert(done);
                }
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(types.insert(name.to_owned()), "second TYPE for {name}");
                assert_eq!(
                    current.as_deref(),
                    Some(name),
                    "TYPE {name} away from its HELP"
                );
            } else {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = current.as_deref().expect("a sample before any HELP");
                assert!(
                    name.starts_with(family) && !closed.contains(family),
                    "sample {name} outside its family {family}"
                );
                let key = line.rsplit_once(' ').map_or(line, |(k, _)| k);
                assert!(series.insert(key.to_owned()), "series twice: {key}");
            }
        }
    }

    #[test]
    fn the_whole_exposition_parses_strictly() {
        let mut m = Metrics::new();
        let stats = SandboxStats::default();
        m.register_sandbox(&stats);
        let _context = m.register_context();
        stats.compiled.inc();
        stats.cache_unauthenticated.inc();
        m.client_refused(ClientRefused::UnknownCa);
        m.evaluated(
            Endpoint::Validate,
            "p1",
            Mode::Enforce,
            "deny",
            None,
            Duration::from_millis(1),
        );
        let text = m.encode();
        assert_strict_exposition(&text);
        assert_eq!(
            text.matches("# HELP tollgate_modules_loaded ").count(),
            1,
            "{text}"
        );
        for line in [
            r#"tollgate_modules_loaded_total{origin="compiled"} 1"#,
            r#"tollgate_module_cache_rejected_total{reason="unauthenticated"} 1"#,
            r#"tollgate_module_cache_rejected_total{reason="unsafe_directory"} 0"#,
            r#"tollgate_client_certificates_refused_total{reason="unknown_ca"} 1"#,
            r#"tollgate_client_certificates_refused_total{reason="no_certificate"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn the_strict_check_catches_a_family_written_twice() {
        let twice = "# HELP a_total x\n# TYPE a_total counter\na_total{o=\"1\"} 1\n\
                     # HELP a_total x\n# TYPE a_total counter\na_total{o=\"2\"} 1\n";
        let caught = std::panic::catch_unwind(|| assert_strict_exposition(twice));
        assert!(caught.is_err());
        assert_strict_exposition("# HELP a_total x\n# TYPE a_total counter\na_total{o=\"1\"} 1\n");
    }

    #[test]
    fn exposes_reviews_failures_and_reloads() {
        let m = Metrics::new();
        let ms = Duration::from_millis(1);
        m.evaluated(Endpoint::Mutate, "p1", Mode::Warn, "warn", None, ms);
        m.evaluated(
            Endpoint::Validate,
            "p2",
            Mode::Enforce,
            "failure",
            Some(FailureCause::Deadline),
            ms,
        );
        m.answered(Endpoint::Validate, false, ms);
        m.reloaded(None);
        m.reloaded(Some(3));
        m.evaluation_slots(8);
        m.queue_depth(1);
        m.queue_waited(Duration::from_millis(5), false);
        let text = m.encode();
        for line in [
            r#"tollgate_reviews_total{endpoint="mutate",policy="p1",verdict="warn",mode="warn"} 1"#,
            r#"tollgate_policy_failures_total{policy="p2",cause="deadline"} 1"#,
            r#"tollgate_unmatched_reviews_total{endpoint="validate"} 1"#,
            r#"tollgate_reloads_total{result="error"} 1"#,
            r#"tollgate_reloads_total{result="ok"} 1"#,
            "tollgate_policies_loaded 3",
            r#"tollgate_evaluation_duration_seconds_count{policy="p2"} 1"#,
            "tollgate_evaluation_slots 8",
            "tollgate_evaluation_queue_depth 1",
            "tollgate_evaluation_queue_wait_seconds_count 1",
            "tollgate_evaluation_queue_expired_total 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
