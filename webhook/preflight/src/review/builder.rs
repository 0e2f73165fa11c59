//! The one AdmissionRequest builder: `check`/`audit` (through
//! [`super::apply`]), the rule tests (`tollgate_testkit::requests`) and the
//! end-to-end tests all shape requests here, so they cannot disagree on
//! what the API server sends. Chained in the style of kube-rs's
//! `admission.rs`: start from the operation, override what differs from
//! the API server's defaults, then [`RequestBuilder::build`] or
//! [`RequestBuilder::review`].

use serde_json::{Value, json};
use tollgate_sdk::Operation;

use crate::served::{gvk, plural};

/// The user of the captured reviews (`testdata/reviews`): a cluster admin.
pub fn user_info() -> Value {
    json!({"username": "admin", "uid": "1000", "groups": ["system:masters", "system:authenticated"]})
}

/// `(group, version, name)`: of a kind or of a resource.
type Triple = (String, String, String);

/// An AdmissionRequest being built. By default its kind is the object's
/// (`apiVersion`, `kind`), its resource the kind's plural in the same
/// group and version, its user [`user_info`], its uid stable across runs
/// (so outputs can be compared) and it has no subresource or options.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequestBuilder {
    operation: Operation,
    object: Value,
    old_object: Value,
    uid: Option<String>,
    kind: Option<Triple>,
    resource: Option<Triple>,
    sub_resource: Option<String>,
    user: Value,
    options: Option<Value>,
}

impl RequestBuilder {
    /// `operation` on `new` (or `old`, for a DELETE), objects exactly as
    /// given; an absent one is sent as `null`, as the API server does.
    pub fn new(operation: Operation, old: Option<&Value>, new: Option<&Value>) -> Self {
        Self {
            operation,
            object: new.cloned().unwrap_or(Value::Null),
            old_object: old.cloned().unwrap_or(Value::Null),
            uid: None,
            kind: None,
            resource: None,
            sub_resource: None,
            user: user_info(),
            options: None,
        }
    }

    /// A CREATE of `object`.
    pub fn create(object: &Value) -> Self {
        Self::new(Operation::Create, None, Some(object))
    }

    /// An UPDATE from `old` to `new`.
    pub fn update(old: &Value, new: &Value) -> Self {
        Self::new(Operation::Update, Some(old), Some(new))
    }

    /// A DELETE of `old` (`object` null, as sent).
    pub fn delete(old: &Value) -> Self {
        Self::new(Operation::Delete, Some(old), None)
    }

    /// The request's uid, which the answer must echo.
    pub fn with_uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// The kind sent, when it is not the object's own (a `Scale` of a
    /// Deployment, or a test that sends what the object does not say).
    pub fn with_kind(mut self, group: &str, version: &str, kind: &str) -> Self {
        self.kind = Some((group.into(), version.into(), kind.into()));
        self
    }

    /// The resource sent, when it is not the kind's default plural (a CRD
    /// that names its own, or the owner of a subresource).
    pub fn with_resource(mut self, group: &str, version: &str, resource: &str) -> Self {
        self.resource = Some((group.into(), version.into(), resource.into()));
        self
    }

    /// A subresource (`scale`, `status`), as both `subResource` and
    /// `requestSubResource`.
    pub fn with_sub_resource(mut self, sub_resource: &str) -> Self {
        self.sub_resource = Some(sub_resource.into());
        self
    }

    /// The requesting user (`userInfo`).
    pub fn with_user(mut self, user: Value) -> Self {
        self.user = user;
        self
    }

    /// The operation's options (`CreateOptions`, `UpdateOptions`).
    pub fn with_options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
    }

    /// The object the request is about: the new one, or the old one of a
    /// DELETE.
    fn subject(&self) -> &Value {
        if self.object.is_null() {
            &self.old_object
        } else {
            &self.object
        }
    }

    /// The AdmissionRequest.
    pub fn build(&self) -> Value {
        let subject = self.subject();
        let (group, version, kind) = match &self.kind {
            Some((g, v, k)) => (g.as_str(), v.as_str(), k.as_str()),
            None => gvk(subject),
        };
        let resource = match &self.resource {
            Some((g, v, r)) => json!({"group": g, "version": v, "resource": r}),
            None => json!({"group": group, "version": version, "resource": plural(kind)}),
        };
        let kind = json!({"group": group, "version": version, "kind": kind});
        let uid = self
            .uid
            .clone()
            .unwrap_or_else(|| stable_uid(self.operation, subject));
        let mut request = json!({
            "uid": uid,
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": subject["metadata"]["name"],
            "namespace": subject["metadata"]["namespace"],
            "operation": self.operation,
            "userInfo": self.user,
            "object": self.object,
            "oldObject": self.old_object,
            "dryRun": false,
        });
        if let Some(sub) = &self.sub_resource {
            request["subResource"] = json!(sub);
            request["requestSubResource"] = json!(sub);
        }
        if let Some(options) = &self.options {
            request["options"] = options.clone();
        }
        request
    }

    /// The request in an `admission.k8s.io/v1` AdmissionReview, as POSTed
    /// to a webhook.
    pub fn review(&self) -> Value {
        super::review(self.build())
    }
}

/// A uid per operation and object, stable across runs so outputs can be
/// compared: `tollgate-create-apps-daemonset-kube-system-calico-node`.
fn stable_uid(operation: Operation, object: &Value) -> String {
    let (group, _, kind) = gvk(object);
    let meta = &object["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let op = serde_json::to_value(operation).ok();
    let op = op
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let parts = [
        op,
        group.to_owned(),
        kind.to_ascii_lowercase(),
        text(&meta["namespace"]),
        text(&meta["name"]),
    ];
    format!(
        "tollgate-{}",
        parts
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmap() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "web"}})
    }

    #[test]
    fn defaults_come_from_the_object() {
        let r = RequestBuilder::create(&configmap()).build();
        assert_eq!(
            r["kind"],
            json!({"group": "", "version": "v1", "kind": "ConfigMap"})
        );
        assert_eq!(r["requestKind"], r["kind"]);
        assert_eq!(
            r["resource"],
            json!({"group": "", "version": "v1", "resource": "configmaps"})
        );
        assert_eq!(r["requestResource"], r["resource"]);
        assert_eq!((&r["name"], &r["namespace"]), (&json!("c"), &json!("web")));
        assert_eq!(r["uid"], "tollgate-create-configmap-web-c");
        assert_eq!(r["userInfo"], user_info());
        assert_eq!(r["oldObject"], Value::Null);
        assert_eq!(r.get("subResource"), None);
        assert_eq!(r.get("options"), None);
    }

    #[test]
    fn a_delete_names_the_old_object_and_sends_a_null_object() {
        let r = RequestBuilder::delete(&configmap()).build();
        assert_eq!(r["operation"], "DELETE");
        assert_eq!(r["object"], Value::Null);
        assert_eq!(r["name"], "c");
        assert_eq!(r["uid"], "tollgate-delete-configmap-web-c");
    }

    #[test]
    fn overrides_replace_the_defaults() {
        let review = RequestBuilder::update(&configmap(), &configmap())
            .with_uid("u-1")
            .with_kind("autoscaling", "v1", "Scale")
            .with_resource("apps", "v1", "deployments")
            .with_sub_resource("scale")
            .with_user(json!({"username": "bob"}))
            .with_options(json!({"kind": "UpdateOptions"}))
            .review();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        let r = &review["request"];
        assert_eq!(r["uid"], "u-1");
        assert_eq!(r["kind"]["kind"], "Scale");
        assert_eq!(r["requestResource"]["resource"], "deployments");
        assert_eq!(
            (&r["subResource"], &r["requestSubResource"]),
            (&json!("scale"), &json!("scale"))
        );
        assert_eq!(r["userInfo"]["username"], "bob");
        assert_eq!(r["options"]["kind"], "UpdateOptions");
    }
}
