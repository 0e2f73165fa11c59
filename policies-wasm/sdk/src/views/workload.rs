//! Workloads: anything that stamps out Pods from a template. Deployments,
//! ReplicaSets, DaemonSets, StatefulSets, ReplicationControllers and Jobs
//! carry it at `spec.template`, CronJobs at `spec.jobTemplate.spec.template`.

use serde::Deserialize;

use super::meta::{LabelSelector, ObjectMeta, Str};
use super::pod::{PodSpec, PodTemplate};

/// A workload in any apiVersion (`apps/v1`, `extensions/v1beta1`,
/// `batch/v1`...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload<'a> {
    #[serde(borrow, default)]
    pub api_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    pub spec: WorkloadSpec<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec<'a> {
    /// As written: absent means 1 for the kinds that have replicas.
    #[serde(default)]
    pub replicas: Option<i64>,
    #[serde(borrow, default)]
    pub selector: Option<LabelSelector<'a>>,
    #[serde(borrow, default)]
    pub template: Option<PodTemplate<'a>>,
    /// CronJob.
    #[serde(borrow, default)]
    pub job_template: Option<JobTemplate<'a>>,
}

/// A CronJob's `spec.jobTemplate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplate<'a> {
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    pub spec: JobTemplateSpec<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobTemplateSpec<'a> {
    #[serde(borrow, default)]
    pub template: Option<PodTemplate<'a>>,
}

impl<'a> Workload<'a> {
    /// The pod template, wherever the kind keeps it.
    pub fn pod_template(&self) -> Option<&PodTemplate<'a>> {
        self.spec.template.as_ref().or_else(|| {
            self.spec
                .job_template
                .as_ref()
                .and_then(|j| j.spec.template.as_ref())
        })
    }

    /// The template's pod spec.
    pub fn pod_spec(&self) -> Option<&PodSpec<'a>> {
        self.pod_template().map(|t| &t.spec)
    }

    /// The JSON pointer of [`Self::pod_spec`], for patches.
    pub fn pod_spec_pointer(&self) -> Option<&'static str> {
        if self.spec.template.is_some() {
            Some("/spec/template/spec")
        } else {
            self.pod_template()
                .map(|_| "/spec/jobTemplate/spec/template/spec")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_of_every_workload_kind() {
        let deployment: Workload<'_> = serde_json::from_str(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}}"#,
        )
        .unwrap();
        assert_eq!(deployment.pod_spec_pointer(), Some("/spec/template/spec"));
        assert_eq!(deployment.pod_spec().unwrap().containers[0].name, "web");
        assert_eq!(deployment.spec.replicas, Some(2));
        let template = deployment.pod_template().unwrap();
        assert!(
            deployment
                .spec
                .selector
                .as_ref()
                .unwrap()
                .matches(|k| template.metadata.label(k))
        );

        let cron: Workload<'_> = serde_json::from_str(
            r#"{"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job"}]}}}}}}"#,
        )
        .unwrap();
        assert_eq!(
            cron.pod_spec_pointer(),
            Some("/spec/jobTemplate/spec/template/spec")
        );
        assert_eq!(cron.pod_spec().unwrap().containers[0].name, "job");

        let config_map: Workload<'_> =
            serde_json::from_str(r#"{"kind": "ConfigMap", "data": {"a": "b"}}"#).unwrap();
        assert!(config_map.pod_spec().is_none() && config_map.pod_spec_pointer().is_none());
    }
}
