//! Client certificates in the generated install (`--client-ca-configmap`):
//! `serve --client-ca` reads the API server's client CA from a ConfigMap
//! (a CA certificate is public; the operator creates it), and the probes
//! move to a plain-HTTP port of their own, since the TLS port then answers
//! only the API server. The same in both certificate modes: the serving
//! certificate and the client CA are independent.

use serde_json::{Value, json};

/// `--probe-listen`'s port (on the host network, next to the webhook's).
pub const PROBE_PORT: u16 = 9444;
/// Where the ConfigMap is mounted (a directory mount, so a changed CA
/// reaches the reload).
const CLIENT_CA_DIR: &str = "/var/run/tollgate/client-ca";
/// The ConfigMap's key holding the CA certificate(s), PEM.
pub const CLIENT_CA_KEY: &str = "ca.crt";

/// The client-certificate options of an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCa {
    /// The ConfigMap (in Tollgate's namespace) with the CA under `ca.crt`.
    pub config_map: String,
    /// `--client-name`s: the names the API server's certificate may carry.
    pub names: Vec<String>,
}

impl ClientCa {
    /// `serve`'s flags for it.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--client-ca={CLIENT_CA_DIR}/{CLIENT_CA_KEY}"),
            format!("--probe-listen=0.0.0.0:{PROBE_PORT}"),
        ];
        args.extend(self.names.iter().map(|n| format!("--client-name={n}")));
        args
    }

    /// The ConfigMap's volume and mount.
    pub fn volume(&self) -> (Value, Value) {
        (
            json!({"name": "client-ca", "configMap": {"name": self.config_map}}),
            json!({"name": "client-ca", "mountPath": CLIENT_CA_DIR, "readOnly": true}),
        )
    }
}

/// A container probe of `path`: on the plain probe port with a client CA
/// (kubelet holds no certificate the TLS port would accept), else on the
/// TLS port.
pub fn probe(client_ca: Option<&ClientCa>, path: &str, period: u32, failures: u32) -> Value {
    let (port, scheme) = match client_ca {
        Some(_) => ("probes", "HTTP"),
        None => ("https", "HTTPS"),
    };
    json!({
        "httpGet": {"path": path, "port": port, "scheme": scheme},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    })
}

/// The container port the probe listener adds.
pub fn probe_port(client_ca: Option<&ClientCa>) -> Option<Value> {
    client_ca.map(|_| {
        json!({"name": "probes", "containerPort": PROBE_PORT, "hostPort": PROBE_PORT, "protocol": "TCP"})
    })
}
