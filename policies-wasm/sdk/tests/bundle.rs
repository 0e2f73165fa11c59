//! Bundle evaluation (ABI v2) natively, through `rules()` exactly as the Wasm
//! export runs it: order, one verdict per entry, one parse per view, a rule
//! repeated with two settings, and every way the whole call fails.

use std::cell::Cell;

use serde::{Deserialize, Deserializer};
use serde_json::json;
use tollgate_sdk::{
    Cluster, EvalError, NoCluster, NoSettings, Object, Pod, Request, RequestError, RuleError,
    Settings, Verdict,
};

thread_local! {
    /// How often `Counted` was deserialized on this thread.
    static PARSES: Cell<usize> = const { Cell::new(0) };
}

fn parses() -> usize {
    PARSES.with(Cell::take)
}

/// The SDK's Pod view, counting its parses.
struct Counted<'a>(Pod<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Counted<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PARSES.with(|p| p.set(p.get() + 1));
        Pod::deserialize(d).map(Counted)
    }
}

fn privileged(req: &Request<'_, Counted<'_>>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
    let pod = req.object.as_ref().map(|c| &c.0);
    match pod.and_then(|p| {
        p.spec
            .all_containers()
            .find(|c| c.container.is_privileged())
    }) {
        Some(c) => Verdict::deny(format!("{} is privileged", c.container.name)),
        None => Verdict::allow(),
    }
}

fn host_network(req: &Request<'_, Counted<'_>>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
    match &req.object {
        Some(Counted(pod)) if pod.spec.host_network => Verdict::deny("hostNetwork"),
        _ => Verdict::allow(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelSettings {
    key: String,
}

impl Settings for LabelSettings {
    fn validate(&self) -> Result<(), String> {
        match self.key.is_empty() {
            true => Err("key must not be empty".into()),
            false => Ok(()),
        }
    }
}

/// Requires a label; read through the superset view, a second view type.
fn has_label(req: &Request<'_>, s: &LabelSettings, _: &dyn Cluster) -> Verdict {
    match req.object.as_ref().and_then(|o| o.label(&s.key)) {
        Some(_) => Verdict::allow(),
        None => Verdict::deny(format!("label {} is missing", s.key)),
    }
}

/// Reads the raw JSON only.
fn raw_size(req: &Request<'_, serde::de::IgnoredAny>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
    let size = req.raw_object().map_or(0, |o| o.get().len());
    Verdict::warn(format!("object is {size} bytes"))
}

/// Repairs a missing label.
fn add_team(req: &Request<'_, Counted<'_>>, _: &NoSettings, _: &dyn Cluster) -> Verdict {
    let labelled = req
        .object
        .as_ref()
        .is_some_and(|c| c.0.metadata.label("team").is_some());
    match labelled {
        true => Verdict::allow(),
        false => Verdict::repair(
            "no team",
            vec![tollgate_sdk::PatchOp::add(
                "/metadata/labels/team",
                json!("none"),
            )],
        ),
    }
}

fn peek(_: &Request<'_, Counted<'_>>, _: &NoSettings, cluster: &dyn Cluster) -> Verdict {
    let _ = cluster.get("v1", "ConfigMap", Some("apps"), "cfg");
    Verdict::allow()
}

tollgate_sdk::export_rules! {
    "privileged" => privileged,
    "host-network" => host_network,
    "has-label" => has_label,
    "raw-size" => raw_size,
    "add-team" (mutating) => add_team,
    "peek" => peek,
}

fn update() -> String {
    let pod = |privileged: bool| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"}},
               "spec": {"hostNetwork": true, "containers": [
                   {"name": "web", "image": "nginx:1", "securityContext": {"privileged": privileged}}]}})
    };
    json!({"uid": "7", "operation": "UPDATE", "namespace": "apps",
           "kind": {"group": "", "version": "v1", "kind": "Pod"},
           "object": pod(true), "oldObject": pod(false)})
    .to_string()
}

fn evaluate(request: &str, calls: serde_json::Value) -> Result<Vec<Verdict>, EvalError> {
    parses();
    rules()
        .evaluate(request.as_bytes(), calls.to_string().as_bytes(), &NoCluster)
        .map(|v| v.verdicts)
}

#[test]
fn one_verdict_per_entry_in_order_with_each_view_parsed_once() {
    let verdicts = evaluate(
        &update(),
        json!([
            {"rule": "has-label", "settings": {"key": "app"}},
            {"rule": "privileged", "settings": {}},
            {"rule": "raw-size"},
            {"rule": "host-network", "settings": null},
            {"rule": "has-label", "settings": {"key": "team"}},
            {"rule": "add-team"},
        ]),
    )
    .unwrap();
    // Three rules read `Counted`: object and oldObject parsed once each.
    assert_eq!(parses(), 2);
    let summary: Vec<(bool, Option<&str>)> = verdicts
        .iter()
        .map(|v| (v.allowed, v.message.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (true, None),
            (false, Some("web is privileged")),
            (true, None),
            (false, Some("hostNetwork")),
            (false, Some("label team is missing")),
            (false, Some("no team")),
        ]
    );
    assert!(verdicts[2].warnings[0].starts_with("object is "));
    assert!(verdicts[5].patch.is_some());
}

#[test]
fn rules_evaluated_alone_parse_their_view_each_time() {
    let request = update();
    parses();
    for name in ["privileged", "host-network", "add-team"] {
        let rule = rules().rule(name).unwrap();
        rule.evaluate(request.as_bytes(), b"{}", &NoCluster)
            .unwrap();
    }
    assert_eq!(parses(), 6, "the v1 way: every rule parses both objects");
}

#[test]
fn the_same_rule_with_two_settings_answers_twice() {
    let verdicts = evaluate(
        &update(),
        json!([{"rule": "has-label", "settings": {"key": "team"}},
               {"rule": "has-label", "settings": {"key": "app"}},
               {"rule": "has-label", "settings": {"key": "team"}}]),
    )
    .unwrap();
    let allowed: Vec<bool> = verdicts.iter().map(|v| v.allowed).collect();
    assert_eq!(allowed, [false, true, false]);
    assert_eq!(parses(), 0, "has-label reads the superset view only");
}

#[test]
fn an_empty_bundle_answers_no_verdicts() {
    assert!(evaluate(&update(), json!([])).unwrap().is_empty());
    let out = rules()
        .evaluate(update().as_bytes(), b"[]", &NoCluster)
        .unwrap();
    assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"verdicts":[]}"#);
}

#[test]
fn delete_requests_have_only_the_old_object() {
    let request = json!({"uid": "1", "operation": "DELETE", "object": null,
        "oldObject": {"kind": "Pod", "metadata": {"name": "web"}, "spec": {"hostNetwork": true}}})
    .to_string();
    let verdicts = evaluate(
        &request,
        json!([{"rule": "host-network"}, {"rule": "raw-size"}]),
    )
    .unwrap();
    assert!(verdicts[0].allowed, "host-network reads `object` only");
    assert_eq!(verdicts[1].warnings, ["object is 0 bytes"]);
    assert_eq!(parses(), 1);
}

#[test]
fn an_unknown_rule_fails_the_call_before_any_rule_runs() {
    let e = evaluate(&update(), json!([{"rule": "privileged"}, {"rule": "nope"}])).unwrap_err();
    assert!(
        matches!(&e, EvalError::UnknownRule(r) if r == "nope"),
        "{e}"
    );
    assert_eq!(e.to_string(), r#"this module has no rule "nope""#);
    assert_eq!(parses(), 0);
}

#[test]
fn invalid_settings_fail_the_call_naming_the_rule() {
    for (settings, needle) in [
        (json!({"key": ""}), "key must not be empty"),
        (json!({"key": "a", "extra": 1}), "unknown field `extra`"),
        (json!([1]), "settings: "),
    ] {
        let e = evaluate(
            &update(),
            json!([{"rule": "privileged"}, {"rule": "has-label", "settings": settings}]),
        )
        .unwrap_err();
        let EvalError::Rule {
            rule: "has-label",
            error: RuleError::Settings(_),
        } = &e
        else {
            panic!("{e:?}")
        };
        assert!(
            e.to_string().starts_with("rule has-label: settings: "),
            "{e}"
        );
        assert!(e.to_string().contains(needle), "{e}");
    }
    let e = evaluate(
        &update(),
        json!([{"rule": "privileged", "settings": {"x": 1}}]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `x`"), "{e}");
}

#[test]
fn an_object_that_does_not_fit_a_view_fails_the_call_naming_rule_and_view() {
    let request = json!({"uid": "1", "operation": "CREATE",
        "object": {"kind": "Pod", "metadata": {"labels": {"app": "x"}}, "spec": {"containers": 5}}})
    .to_string();
    // Only a rule whose view reads `spec.containers` trips over it.
    let ok = evaluate(&request, json!([{"rule": "raw-size"}])).unwrap();
    assert_eq!(ok.len(), 1);
    let e = evaluate(
        &request,
        json!([{"rule": "raw-size"}, {"rule": "privileged"}]),
    )
    .unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with("rule privileged: cannot read request.object as bundle::Counted"),
        "{message}"
    );
    assert!(matches!(
        e,
        EvalError::Rule {
            error: RuleError::View(ref v),
            ..
        } if v.field == "object"
    ));
}

#[test]
fn unreadable_requests_and_rule_lists_fail_the_call() {
    let calls = json!([{"rule": "privileged"}]);
    for request in [
        "{not json",
        "[]",
        r#"{"operation": "PATCH"}"#,
        r#"{"object": {"#,
    ] {
        let e = evaluate(request, calls.clone()).unwrap_err();
        assert!(
            matches!(e, EvalError::Request(RequestError::Envelope(_))),
            "{request}: {e}"
        );
        assert!(
            e.to_string()
                .starts_with("cannot read the admission request: ")
        );
    }
    for calls in [
        &b"{}"[..],
        b"[{\"rule\": 1}]",
        b"[{\"name\": \"privileged\"}]",
        b"[{\"rule\": \"privileged\", \"settings\": {}, \"x\": 1}]",
        b"",
    ] {
        let e = rules()
            .evaluate(update().as_bytes(), calls, &NoCluster)
            .unwrap_err();
        assert!(matches!(e, EvalError::Rules(_)), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot read the rules to evaluate: ")
        );
    }
}

#[test]
fn describe_and_settings_checks_speak_abi_2() {
    let description = rules().describe();
    assert_eq!(description.abi, 2);
    assert_eq!(tollgate_sdk::ABI_VERSION, 2);
    let names: Vec<(&str, bool)> = description
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.mutating))
        .collect();
    assert_eq!(
        names,
        [
            ("privileged", false),
            ("host-network", false),
            ("has-label", false),
            ("raw-size", false),
            ("add-team", true),
            ("peek", false),
        ]
    );
    let rules = rules();
    assert!(rules.check_settings(b"has-label", br#"{"key": "a"}"#).valid);
    let bad = rules.check_settings(b"has-label", br#"{"key": ""}"#);
    assert_eq!(
        bad.message.as_deref(),
        Some("settings: key must not be empty")
    );
    assert!(rules.check_settings(b"privileged", b"").valid);
    let unknown = rules.check_settings(b"nope", b"{}");
    assert!(!unknown.valid && unknown.message.unwrap().contains("no rule \"nope\""));
}

#[test]
fn a_request_parsed_on_its_own_keeps_the_raw_objects() {
    let text = r#"{"uid": "9", "operation": "CREATE", "object": {"kind": "Pod",  "spec": {}}}"#;
    let req: Request<'_, Object<'_>> = Request::parse(text.as_bytes()).unwrap();
    assert_eq!(
        req.raw_object().unwrap().get(),
        r#"{"kind": "Pod",  "spec": {}}"#
    );
    assert!(req.raw_old_object().is_none() && req.old_object.is_none());
    assert_eq!(req.subject().unwrap().kind_str(), "Pod");
    let e = Request::<Pod<'_>>::parse(br#"{"object": {"spec": {"containers": "x"}}}"#).unwrap_err();
    assert!(matches!(e, RequestError::View(_)), "{e}");
}

/// Records the queries it is asked.
#[derive(Default)]
struct Recording(std::cell::RefCell<Vec<tollgate_sdk::wire::LookupQuery>>);

impl Cluster for Recording {
    fn lookup(
        &self,
        query: &tollgate_sdk::wire::LookupQuery,
    ) -> Result<tollgate_sdk::Objects, tollgate_sdk::LookupError> {
        self.0.borrow_mut().push(query.clone());
        Ok(tollgate_sdk::Objects::default())
    }
}

#[test]
fn each_lookup_in_a_bundle_names_the_member_asking() {
    let cluster = Recording::default();
    let calls =
        json!([{"rule": "privileged"}, {"rule": "peek"}, {"rule": "raw-size"}, {"rule": "peek"}]);
    rules()
        .evaluate(update().as_bytes(), calls.to_string().as_bytes(), &cluster)
        .unwrap();
    let members: Vec<Option<u32>> = cluster.0.borrow().iter().map(|q| q.rule).collect();
    assert_eq!(members, [Some(1), Some(3)]);
}
