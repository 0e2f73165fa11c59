//! R9 on scenario (c)'s cluster, as written for `--cluster-snapshot` and
//! loaded by the host's store: the namespaces the host computes
//! (`oneOf` and `except`) are those the guest computed before, prepared as
//! the bench runs it and with every kind of unprepared namespace added;
//! and the guest receives a few bytes instead of the thousands of names.

use std::cell::Cell;
use std::path::Path;

use serde_json::Value;
use tollgate_calico::rules::r09_v1_networkpolicy_semantics::{
    SemanticsSettings, v1_networkpolicy_semantics,
};
use tollgate_calico::unprepared::{Unprepared, from_host, in_guest, unprepared};
use tollgate_context::{ClusterContext, SnapshotContext};
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError, Objects, Request, Verdict};

use crate::body::{Body, CALICO_NODE_V1_SEMANTICS};

/// The host's store as the `lookup` host call serves it, counting the
/// bytes it answers.
struct Host {
    context: SnapshotContext,
    answered: Cell<usize>,
}

impl Cluster for Host {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        let answer = self
            .context
            .lookup(query)
            .map_err(|e| LookupError::Refused(e.to_string()))?;
        self.answered.set(self.answered.get() + answer.len());
        Ok(Objects::from_json(answer.to_vec()))
    }
}

/// A host without `oneOf` and `except`: R9 computes in the guest.
struct Older<'c>(&'c dyn Cluster);

impl Cluster for Older<'_> {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        if query.except.is_some() || !query.one_of.is_empty() {
            return Err(LookupError::Refused("unknown field `oneOf`".to_owned()));
        }
        self.0.lookup(query)
    }
}

fn load(dir: &Path) -> Host {
    Host {
        context: SnapshotContext::load(dir).unwrap(),
        answered: Cell::new(0),
    }
}

/// R9's verdict on scenario (c)'s review.
fn verdict(cluster: &dyn Cluster) -> Verdict {
    let body = Body::parse(CALICO_NODE_V1_SEMANTICS).unwrap();
    let review: Value = serde_json::from_slice(&body.bytes).unwrap();
    let request = review["request"].to_string();
    let request = Request::parse(request.as_bytes()).unwrap();
    v1_networkpolicy_semantics(&request, &SemanticsSettings::default(), cluster)
}

/// Both ways agree on `host`; returns the guest's answer.
fn assert_same(host: &Host) -> Unprepared {
    let before = in_guest(host).unwrap();
    assert_eq!(from_host(host), Ok(Some(before.clone())));
    assert_eq!(unprepared(host), Ok(before.clone()));
    assert_eq!(verdict(host), verdict(&Older(host)));
    before
}

#[test]
fn r9_answers_alike_on_the_large_cluster_prepared_and_not() {
    let dir = tempfile::tempdir().unwrap();
    super::write(dir.path()).unwrap();
    let host = load(dir.path());
    let none = Unprepared {
        to_clean: Vec::new(),
        to_isolate: Vec::new(),
    };
    assert_eq!(assert_same(&host), none);
    assert!(verdict(&host).allowed);
    // What crosses into the guest: the host's few values against every
    // namespace name, three times over.
    host.answered.set(0);
    from_host(&host).unwrap();
    let small = host.answered.get();
    host.answered.set(0);
    in_guest(&host).unwrap();
    let whole = host.answered.get();
    assert!(
        small < 200 && whole > 100_000,
        "{small} bytes against {whole}"
    );

    let variety = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": tollgate_testkit::objects::r9_variety()});
    std::fs::write(dir.path().join("variety.json"), variety.to_string()).unwrap();
    let host = load(dir.path());
    let found = assert_same(&host);
    assert_eq!((found.to_clean.len(), found.to_isolate.len()), (16, 15));
    let denied = verdict(&host);
    assert!(!denied.allowed);
    assert!(
        denied
            .message
            .as_deref()
            .is_some_and(|m| m.contains("r9-clean-00") && m.contains("r9-isolate-00")),
        "{denied:?}"
    );
}
