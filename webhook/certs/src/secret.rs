//! The Secret, read and written with optimistic concurrency.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::material::{Contents, GENERATION, ROTATE};

/// The Secret of one name in one namespace.
#[derive(Clone)]
pub struct SecretStore {
    api: Api<Secret>,
    name: String,
}

/// A read: the object (for its resourceVersion) and what it holds.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub object: Option<Secret>,
    pub contents: Option<Contents>,
}

/// How a write went.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// Another replica created or changed it first (409): read again.
    Lost,
}

impl SecretStore {
    pub fn new(api: Api<Secret>, name: &str) -> Self {
        Self {
            api,
            name: name.to_owned(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn read(&self) -> Result<Read, kube::Error> {
        let object = self.api.get_opt(&self.name).await?;
        let contents = object.as_ref().map(contents_of);
        Ok(Read { object, contents })
    }

    /// Writes `contents` over `current` (the object the plan was made
    /// from, its resourceVersion guarding the update), or creates the
    /// Secret when there was none.
    pub async fn write(
        &self,
        current: Option<&Secret>,
        contents: &Contents,
    ) -> Result<Written, kube::Error> {
        let params = PostParams {
            field_manager: Some("tollgate".into()),
            ..PostParams::default()
        };
        let result = match current {
            Some(current) => {
                let next = with_contents(current.clone(), contents);
                self.api.replace(&self.name, &params, &next).await
            }
            None => {
                let new = Secret {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        labels: Some(BTreeMap::from([
                            ("app.kubernetes.io/name".into(), "tollgate".into()),
                            ("app.kubernetes.io/managed-by".into(), "tollgate".into()),
                        ])),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".into()),
                    ..Secret::default()
                };
                self.api
                    .create(&params, &with_contents(new, contents))
                    .await
            }
        };
        match result {
            Ok(_) => Ok(Written::Done),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                Ok(Written::Lost)
            }
            Err(error) => Err(error),
        }
    }
}

fn contents_of(secret: &Secret) -> Contents {
    Contents {
        data: secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
        annotations: secret.metadata.annotations.clone().unwrap_or_default(),
    }
}

/// `secret` holding `contents`: Tollgate's keys and annotations replaced,
/// anything else someone put there kept.
fn with_contents(mut secret: Secret, contents: &Contents) -> Secret {
    let data = secret.data.get_or_insert_with(BTreeMap::new);
    for (key, value) in &contents.data {
        data.insert(key.clone(), ByteString(value.clone()));
    }
    let annotations = secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    for key in [GENERATION, ROTATE] {
        match contents.annotations.get(key) {
            Some(value) => annotations.insert(key.into(), value.clone()),
            None => annotations.remove(key),
        };
    }
    // `stringData` would be merged over `data` by the API server.
    secret.string_data = None;
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_keeps_foreign_keys_and_drops_a_consumed_request() {
        let mut secret = Secret {
            data: Some(BTreeMap::from([
                ("tls.crt".into(), ByteString(b"old".to_vec())),
                ("extra".into(), ByteString(b"mine".to_vec())),
            ])),
            ..Secret::default()
        };
        secret.metadata.annotations = Some(BTreeMap::from([
            (ROTATE.into(), "ca".into()),
            ("note".into(), "kept".into()),
        ]));
        let contents = Contents {
            data: BTreeMap::from([("tls.crt".into(), b"new".to_vec())]),
            annotations: BTreeMap::from([(GENERATION.into(), "3".into())]),
        };
        let written = with_contents(secret, &contents);
        let read = contents_of(&written);
        assert_eq!(read.data["tls.crt"], b"new");
        assert_eq!(read.data["extra"], b"mine");
        assert_eq!(read.annotations.get(ROTATE), None);
        assert_eq!(read.annotations[GENERATION], "3");
        assert_eq!(read.annotations["note"], "kept");
    }
}
