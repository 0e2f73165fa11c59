//! The `lookup` host call: allow-list refusals reach the guest and the log;
//! granted queries are served from the cluster context.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{REQUEST, sandbox, single};
use tollgate_context::{Answer, ClusterContext, EmptyContext, LookupError, LookupQuery};
use tollgate_host::{PolicySet, Verdict};

const GRANT: &str =
    "  context: [{apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system]}]\n";

fn peek<C: ClusterContext + 'static>(query: &str, context: &Arc<C>) -> (Verdict, String) {
    let context: Arc<dyn ClusterContext> = context.clone();
    let sandbox = sandbox();
    let set = single(&sandbox, "peek", &format!("{GRANT}  settings: {query}\n"));
    with_logs(|| evaluate(&set, &context))
}

fn evaluate(set: &PolicySet, context: &Arc<dyn ClusterContext>) -> Verdict {
    set.policies()[0]
        .evaluate(REQUEST, Instant::now() + Duration::from_secs(1), context)
        .unwrap()
}

/// Runs `f` with tracing captured on this thread.
fn with_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    (result, logs)
}

#[test]
fn a_query_outside_the_allow_list_is_refused_and_logged() {
    let (verdict, logs) = peek(
        "{apiVersion: v1, kind: Secret, namespace: kube-system}",
        &Arc::new(EmptyContext),
    );
    assert!(!verdict.allowed);
    let message = verdict.message.unwrap();
    assert!(
        message.contains("peek-policy may not read v1 Secret"),
        "{message}"
    );
    assert!(
        logs.contains("WARN") && logs.contains("lookup refused"),
        "{logs}"
    );
    assert!(
        logs.contains("peek-policy") && logs.contains("Secret"),
        "{logs}"
    );
}

#[test]
fn a_namespace_outside_the_grant_is_refused() {
    let (verdict, _) = peek(
        "{apiVersion: apps/v1, kind: ReplicaSet, namespace: default}",
        &Arc::new(EmptyContext),
    );
    assert!(verdict.message.unwrap().contains("in namespace default"));
    let (verdict, _) = peek(
        "{apiVersion: apps/v1, kind: ReplicaSet}",
        &Arc::new(EmptyContext),
    );
    assert!(
        !verdict.allowed,
        "an all-namespace list needs an all-namespace grant"
    );
}

/// A context holding one ReplicaSet, recording the queries it serves.
#[derive(Default)]
struct OneReplicaSet(Mutex<Vec<LookupQuery>>);

impl ClusterContext for OneReplicaSet {
    fn lookup(&self, query: &LookupQuery) -> Result<Answer, LookupError> {
        self.0.lock().unwrap().push(query.clone());
        Ok(Answer::from(&br#"[{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"rs","namespace":"kube-system"}}]"#[..]))
    }
}

#[test]
fn a_granted_query_is_served_from_the_context() {
    let context = Arc::new(OneReplicaSet::default());
    let (verdict, logs) = peek(
        "{apiVersion: apps/v1, kind: ReplicaSet, namespace: kube-system, name: rs}",
        &context,
    );
    assert!(verdict.allowed, "{verdict:?}");
    let answer: serde_json::Value = serde_json::from_str(&verdict.warnings[0]).unwrap();
    assert_eq!(answer["objects"][0]["metadata"]["name"], "rs");
    assert_eq!(
        context.0.lock().unwrap().as_slice(),
        [LookupQuery::get(
            "apps/v1",
            "ReplicaSet",
            Some("kube-system"),
            "rs"
        )]
    );
    assert!(!logs.contains("refused"), "{logs}");
}

struct Unavailable;

impl ClusterContext for Unavailable {
    fn lookup(&self, _: &LookupQuery) -> Result<Answer, LookupError> {
        Err(LookupError::Unavailable("cache not synced".into()))
    }
}

#[test]
fn context_failures_are_answered_as_errors() {
    let (verdict, _) = peek(
        "{apiVersion: apps/v1, kind: ReplicaSet, namespace: kube-system}",
        &Arc::new(Unavailable),
    );
    let message = verdict.message.unwrap();
    assert!(message.contains("cache not synced"), "{message}");
}

#[test]
fn a_malformed_query_is_answered_as_an_error() {
    let (verdict, _) = peek(
        "{apiVersion: apps/v1, colour: blue}",
        &Arc::new(EmptyContext),
    );
    let message = verdict.message.unwrap();
    assert!(message.contains("malformed lookup query"), "{message}");
}

#[test]
fn lookups_are_subject_to_the_deadline() {
    let sandbox = sandbox();
    let set = single(
        &sandbox,
        "peek",
        &format!(
            "{GRANT}  settings: {{apiVersion: apps/v1, kind: ReplicaSet, namespace: kube-system}}\n"
        ),
    );
    let context: Arc<dyn ClusterContext> = Arc::new(OneReplicaSet::default());
    let err = set.policies()[0]
        .evaluate(REQUEST, Instant::now(), &context)
        .unwrap_err();
    assert!(
        matches!(err, tollgate_host::EvalError::Unfinished),
        "{err:?}"
    );
}

/// A v2 bundle of two `peek` policies with different grants: `rs-reader`
/// (member 0, ReplicaSets in kube-system) and `pod-reader` (member 1, Pods),
/// each looking up what its settings say (the raw test guest forwards its
/// settings as the query, `"rule"` member included).
fn bundled_peeks(
    rs_query: &str,
    pod_query: &str,
    context: &Arc<OneReplicaSet>,
) -> (tollgate_host::Decision, String) {
    let context: Arc<dyn ClusterContext> = context.clone();
    let sandbox = sandbox();
    let yaml = format!(
        "- id: rs-reader\n  module: builtin:guests-v2\n  rule: peek\n{GRANT}  settings: {rs_query}\n\
         - id: pod-reader\n  module: builtin:guests-v2\n  rule: peek\n  context: [{{apiVersion: v1, kind: Pod}}]\n  settings: {pod_query}\n"
    );
    let set = common::load(&sandbox, &yaml).unwrap();
    let body = common::body(&common::request_of("apps", "Deployment", "CREATE", None));
    let review = common::review(&body);
    with_logs(|| {
        set.judge(
            &review,
            tollgate_host::Endpoint::Validate,
            Instant::now() + Duration::from_secs(1),
            &context,
        )
    })
}

const RS: &str = "apiVersion: apps/v1, kind: ReplicaSet, namespace: kube-system, name: rs";
const POD: &str = "apiVersion: v1, kind: Pod, namespace: kube-system";

#[test]
fn each_member_of_a_bundle_reads_exactly_its_own_grant() {
    let context = Arc::new(OneReplicaSet::default());
    let (decision, logs) = bundled_peeks(
        &format!("{{{RS}, rule: 0}}"),
        &format!("{{{POD}, rule: 1}}"),
        &context,
    );
    assert!(decision.allowed(), "{decision:?}");
    assert!(decision.warnings[0].starts_with("rs-reader: {\"objects\":"));
    assert!(decision.warnings[1].starts_with("pod-reader: {\"objects\":"));
    assert!(!logs.contains("refused"), "{logs}");
    // The context sees the queries without the member index.
    assert!(context.0.lock().unwrap().iter().all(|q| q.rule.is_none()));

    // Swapped: each asks for the other's grant, and is refused by its own.
    let (decision, logs) = bundled_peeks(
        &format!("{{{POD}, rule: 0}}"),
        &format!("{{{RS}, rule: 1}}"),
        &context,
    );
    let denial = decision.denial.unwrap();
    assert!(
        denial.contains(
            r#"rs-reader: {"error":"policy rs-reader may not read v1 Pod in namespace kube-system"#
        ),
        "{denial}"
    );
    assert!(
        denial.contains("policy pod-reader may not read apps/v1 ReplicaSet"),
        "{denial}"
    );
    assert!(
        logs.contains("lookup refused") && logs.contains("policy=rs-reader"),
        "{logs}"
    );
}

#[test]
fn a_bundle_lookup_without_a_member_or_out_of_range_is_refused() {
    let context = Arc::new(OneReplicaSet::default());
    let (decision, logs) = bundled_peeks(
        &format!("{{{RS}}}"),
        &format!("{{{POD}, rule: 2}}"),
        &context,
    );
    let denial = decision.denial.unwrap();
    assert!(
        denial.contains("an ABI v2 lookup must name the asking rule"),
        "{denial}"
    );
    assert!(
        denial.contains("rule index 2 is outside the bundle of 2 (policies rs-reader, pod-reader)"),
        "{denial}"
    );
    assert!(logs.contains("lookup refused"), "{logs}");
    assert!(context.0.lock().unwrap().is_empty());
}
