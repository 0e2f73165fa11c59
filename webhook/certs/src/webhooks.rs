//! Tollgate's own webhook configurations (the Validating and the Mutating
//! one of `--webhook-configuration`): the `caBundle` of every webhook in
//! them.
//!
//! Both kinds share the shape `webhooks[].clientConfig.caBundle`, so they
//! are handled as one dynamic type. Each write also records the Secret's
//! bundle generation in an annotation: a replica whose view of the Secret
//! is older than the one that wrote the configuration leaves it alone.

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::inspect::Cert;
use super::material::GENERATION;
use super::secret::Written;

/// The two configurations of one name.
#[derive(Clone)]
pub struct WebhookConfigurations {
    name: String,
    kinds: [(&'static str, Api<DynamicObject>); 2],
}

/// A configuration that exists.
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: &'static str,
    object: DynamicObject,
}

impl WebhookConfigurations {
    pub fn new(client: Client, name: &str) -> Self {
        let api = |resource: ApiResource| Api::all_with(client.clone(), &resource);
        Self {
            name: name.to_owned(),
            kinds: [
                (
                    "ValidatingWebhookConfiguration",
                    api(ApiResource::erase::<ValidatingWebhookConfiguration>(&())),
                ),
                (
                    "MutatingWebhookConfiguration",
                    api(ApiResource::erase::<MutatingWebhookConfiguration>(&())),
                ),
            ],
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The APIs, for watching.
    pub fn apis(&self) -> impl Iterator<Item = (&'static str, Api<DynamicObject>)> + '_ {
        self.kinds.iter().map(|(kind, api)| (*kind, api.clone()))
    }

    /// The configurations that exist (the install may create them after
    /// the Deployment).
    pub async fn read(&self) -> Result<Vec<Found>, kube::Error> {
        let mut found = Vec::new();
        for (kind, api) in &self.kinds {
            if let Some(object) = api.get_opt(&self.name).await? {
                found.push(Found { kind, object });
            }
        }
        Ok(found)
    }

    /// Puts `bundle_pem` into every webhook of `found`, guarded by the
    /// resourceVersion it was read with.
    pub async fn write(
        &self,
        found: &Found,
        bundle_pem: &str,
        generation: u64,
    ) -> Result<Written, kube::Error> {
        let (_, api) = self
            .kinds
            .iter()
            .find(|(kind, _)| *kind == found.kind)
            .expect("found by one of our kinds");
        let mut object = found.object.clone();
        let encoded = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
        for webhook in webhooks_mut(&mut object) {
            if let Some(config) = webhook
                .get_mut("clientConfig")
                .and_then(Value::as_object_mut)
            {
                config.insert("caBundle".into(), Value::String(encoded.clone()));
            }
        }
        object
            .annotations_mut()
            .insert(GENERATION.into(), generation.to_string());
        let params = PostParams {
            field_manager: Some("tollgate".into()),
            ..PostParams::default()
        };
        match api.replace(&self.name, &params, &object).await {
            Ok(_) => Ok(Written::Done),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_not_found() => {
                Ok(Written::Lost)
            }
            Err(error) => Err(error),
        }
    }
}

fn webhooks(object: &DynamicObject) -> impl Iterator<Item = &Value> {
    object
        .data
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn webhooks_mut(object: &mut DynamicObject) -> impl Iterator<Item = &mut Value> {
    object
        .data
        .get_mut("webhooks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

impl Found {
    /// The bundle generation that last wrote it (0: never Tollgate).
    pub fn generation(&self) -> u64 {
        self.object
            .annotations()
            .get(GENERATION)
            .and_then(|g| g.parse().ok())
            .unwrap_or(0)
    }

    /// Each webhook's `caBundle`, decoded (empty when absent or not base64).
    fn bundles(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        webhooks(&self.object).map(|webhook| {
            webhook["clientConfig"]["caBundle"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default()
        })
    }

    /// Whether every webhook carries exactly `bundle_pem` under `generation`.
    pub fn holds(&self, bundle_pem: &str, generation: u64) -> bool {
        self.generation() == generation && self.bundles().all(|b| b == bundle_pem.as_bytes())
    }

    /// Whether every webhook's bundle contains `ca`.
    pub fn carries(&self, ca: &Cert) -> bool {
        self.bundles().all(|bundle| {
            Cert::parse_all(&bundle).is_ok_and(|cas| cas.iter().any(|c| c.der == ca.der))
        })
    }

    /// Whether every webhook's bundle verifies `leaf` (a CA in it signed it).
    pub fn verifies(&self, leaf: &Cert) -> bool {
        self.bundles().all(|bundle| {
            Cert::parse_all(&bundle).is_ok_and(|cas| cas.iter().any(|ca| leaf.signed_by(ca)))
        })
    }

    pub fn webhook_count(&self) -> usize {
        webhooks(&self.object).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{Authority, Lifetime};

    fn found(bundles: &[Option<&str>], generation: Option<u64>) -> Found {
        let webhooks: Vec<Value> = bundles
            .iter()
            .enumerate()
            .map(|(i, bundle)| {
                let mut config =
                    serde_json::json!({"url": format!("https://127.0.0.1:{i}/validate")});
                if let Some(bundle) = bundle {
                    config["caBundle"] =
                        Value::String(base64::engine::general_purpose::STANDARD.encode(bundle));
                }
                serde_json::json!({"name": format!("w{i}.tollgate.dev"), "clientConfig": config})
            })
            .collect();
        let mut object = DynamicObject::new(
            "tollgate",
            &ApiResource::erase::<ValidatingWebhookConfiguration>(&()),
        )
        .data(serde_json::json!({ "webhooks": webhooks }));
        if let Some(generation) = generation {
            object
                .annotations_mut()
                .insert(GENERATION.into(), generation.to_string());
        }
        Found {
            kind: "ValidatingWebhookConfiguration",
            object,
        }
    }

    #[test]
    fn every_webhook_must_carry_the_ca() {
        let old = Authority::generate("tollgate-ca@1", Lifetime::days(9)).unwrap();
        let new = Authority::generate("tollgate-ca@2", Lifetime::days(9)).unwrap();
        let new_cert = Cert::parse_first(new.cert_pem().as_bytes()).unwrap();
        let leaf = new.issue(&["a.svc".into()], Lifetime::days(1)).unwrap();
        let leaf = Cert::parse_first(leaf.cert_pem.as_bytes()).unwrap();
        let both = format!("{}{}", old.cert_pem(), new.cert_pem());

        let config = found(&[Some(&both), Some(new.cert_pem())], Some(4));
        assert!(config.carries(&new_cert) && config.verifies(&leaf));
        assert_eq!(config.generation(), 4);
        assert!(!config.holds(&both, 4));

        let config = found(&[Some(&both), Some(old.cert_pem())], None);
        assert!(!config.carries(&new_cert) && !config.verifies(&leaf));
        assert_eq!(config.generation(), 0);

        let config = found(&[Some(&both), None], None);
        assert!(!config.carries(&new_cert), "a webhook without a bundle");
        let config = found(&[Some("not a certificate")], None);
        assert!(!config.carries(&new_cert));

        let config = found(&[Some(&both), Some(&both)], Some(5));
        assert!(config.holds(&both, 5) && !config.holds(&both, 6));
        assert!(
            found(&[], None).carries(&new_cert),
            "no webhooks, nothing to carry"
        );
        assert_eq!(config.webhook_count(), 2);
    }
}
