use serde_json::Value;

use super::*;

fn with_client_ca(mode: CertMode) -> ManifestsArgs {
    ManifestsArgs {
        cert_mode: mode,
        client_ca_configmap: Some("apiserver-client-ca".into()),
        client_names: vec!["kube-apiserver".into()],
        ..ManifestsArgs::defaults()
    }
}

fn container(args: &ManifestsArgs) -> (Value, Value) {
    let (config, install) = load(args).unwrap();
    let objects = objects(&install, &config);
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = deployment["spec"]["template"]["spec"].clone();
    (pod["containers"][0].clone(), pod)
}

#[test]
fn both_certificate_modes_require_the_api_server_s_certificate() {
    for (mode, serving_flag) in [
        (CertMode::SelfManaged, "--self-managed-certs"),
        (
            CertMode::CertManager,
            "--cert=/var/run/tollgate/tls/tls.crt",
        ),
    ] {
        let (container, pod) = container(&with_client_ca(mode));
        let args = container["args"].to_string();
        for flag in [
            serving_flag,
            "--client-ca=/var/run/tollgate/client-ca/ca.crt",
            "--client-name=kube-apiserver",
            "--probe-listen=0.0.0.0:9444",
        ] {
            assert!(args.contains(flag), "{mode:?}: {flag} missing in {args}");
        }
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "client-ca")
            .expect("client-ca volume");
        assert_eq!(volume["configMap"]["name"], "apiserver-client-ca");
        let mounts = container["volumeMounts"].to_string();
        assert!(mounts.contains("/var/run/tollgate/client-ca"), "{mounts}");
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(container[probe]["httpGet"]["port"], "probes", "{probe}");
            assert_eq!(container[probe]["httpGet"]["scheme"], "HTTP", "{probe}");
        }
        assert_eq!(container["ports"][1]["containerPort"], 9444);
    }
}

#[test]
fn without_a_client_ca_nothing_changes() {
    let (container, pod) = container(&ManifestsArgs::defaults());
    let args = container["args"].to_string();
    assert!(
        !args.contains("--client-ca") && !args.contains("--probe-listen"),
        "{args}"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(container["ports"].as_array().unwrap().len(), 1);
    assert!(!pod["volumes"].to_string().contains("client-ca"));
}

#[test]
fn the_cert_manager_overlay_keeps_the_client_ca() {
    let (config, install) = load(&with_client_ca(CertMode::SelfManaged)).unwrap();
    let files = kustomize::files(&install, &config);
    let text = |name: &str| {
        files
            .iter()
            .find(|(path, _)| path.ends_with(name))
            .map(|(_, text)| text.clone())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let patch = text("overlays/cert-manager/deployment-patch.yaml");
    assert!(
        patch.contains("--client-ca=/var/run/tollgate/client-ca/ca.crt"),
        "{patch}"
    );
    assert!(
        patch.contains("--cert=/var/run/tollgate/tls/tls.crt"),
        "{patch}"
    );
    let base = text("base/deployment.yaml");
    assert!(base.contains("apiserver-client-ca"), "{base}");
}

/// Not client certificates, but the same Deployment: the module cache and
/// its key are in directories Tollgate makes itself (an emptyDir is 0777,
/// which the cache refuses) and in different volumes.
#[test]
fn the_module_cache_and_its_key_live_apart() {
    let (container, pod) = container(&ManifestsArgs::defaults());
    let args = container["args"].to_string();
    assert!(
        args.contains("--cache-dir=/var/cache/tollgate/modules"),
        "{args}"
    );
    assert!(
        args.contains("--cache-key-dir=/var/lib/tollgate/cache-key"),
        "{args}"
    );
    let volumes = pod["volumes"].to_string();
    assert!(
        volumes.contains("\"cache\"") && volumes.contains("\"state\""),
        "{volumes}"
    );
}
