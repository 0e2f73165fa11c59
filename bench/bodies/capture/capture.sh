#!/usr/bin/env bash
# Regenerates bench/bodies/*.json: the reviews a real kube-apiserver (v1.28,
# ../shared/tools/kube, or KUBE_UP=path/to/up) sends to a validating webhook
# while kubectl applies the manifests next to this script. Run from anywhere;
# needs kubectl, python3 and openssl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bodies=$(dirname "$here")
repo=$(cd "$bodies/../.." && pwd)
up=${KUBE_UP:-$repo/../shared/tools/kube/up}
work=$(mktemp -d)
hook=
cleanup() {
  [ -n "$hook" ] && kill "$hook" 2>/dev/null
  "$up" "$work/kube" --down
  rm -rf "$work"
}
trap cleanup EXIT
"$up" "$work/kube" >/dev/null
export KUBECONFIG=$work/kube/kubeconfig
k() { kubectl --request-timeout=20s "$@"; }

# The calico-node DaemonSet as published, converted to apps/v1 (selector
# from the template labels), the way testdata/reviews was captured.
calico_node() { # corpus dir, e.g. v2.2/kdd
  python3 - "$repo/testdata/corpus/manifests/$1/calico.yaml" <<'PY'
import json, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "DaemonSet" and d["metadata"]["name"] == "calico-node":
        d["apiVersion"] = "apps/v1"
        d["spec"]["selector"] = {"matchLabels": d["spec"]["template"]["metadata"]["labels"]}
        print(json.dumps(d))
PY
}
# What kube-controller-manager writes once the object has rolled out.
controller_writes() { # resource name namespace status-json
  k annotate "$1" "$2" -n "$3" --field-manager=kube-controller-manager --overwrite \
    deployment.kubernetes.io/revision=1 >/dev/null
  k patch "$1" "$2" -n "$3" --subresource=status --type=merge \
    --field-manager=kube-controller-manager -p "$4" >/dev/null
}

# The objects before the webhook is registered (their creation is not captured).
k create namespace shop >/dev/null
k create serviceaccount default -n default >/dev/null   # no controller-manager creates it
sed 's/IMAGE_TAG/1.25.3/g' "$here/storefront.yaml" | k apply -f - >/dev/null
controller_writes deployment storefront shop '{"status":{"observedGeneration":1,"replicas":6,"updatedReplicas":6,"readyReplicas":6,"availableReplicas":6,"conditions":[{"type":"Available","status":"True","lastUpdateTime":"2024-05-01T10:02:11Z","lastTransitionTime":"2024-05-01T10:02:11Z","reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability."},{"type":"Progressing","status":"True","lastUpdateTime":"2024-05-01T10:02:11Z","lastTransitionTime":"2024-05-01T10:01:40Z","reason":"NewReplicaSetAvailable","message":"ReplicaSet \"storefront-7d9c6b5f8d\" has successfully progressed."}]}}'
calico_node v2.2/kdd | k apply -f - >/dev/null
k patch daemonset calico-node -n kube-system --subresource=status --type=merge \
  --field-manager=kube-controller-manager \
  -p '{"status":{"observedGeneration":1,"currentNumberScheduled":3,"desiredNumberScheduled":3,"numberAvailable":3,"numberMisscheduled":0,"numberReady":3,"updatedNumberScheduled":3}}' >/dev/null

# The capturing webhook.
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir "$work/captured"
python3 "$here/webhook.py" "127.0.0.1:$port" "$work/kube/webhook.crt" "$work/kube/webhook.key" "$work/captured" &
hook=$!
k apply -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: capture}
webhooks:
  - name: capture.bench.tollgate.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 10
    clientConfig:
      url: https://127.0.0.1:$port/validate
      caBundle: $(base64 -w0 "$work/kube/webhook-ca.crt")
    rules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [UPDATE], resources: [deployments, daemonsets]}
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
YAML
sleep 2   # the API server picks up webhook configurations asynchronously

# The captured changes.
sed 's/IMAGE_TAG/1.25.4/g' "$here/storefront.yaml" | k apply -f - >/dev/null
calico_node v2.3/kdd | k apply -f - >/dev/null
sed 's/NAME/nginx/; s/PRIVILEGED/false/' "$here/pod.yaml" | k apply -f - >/dev/null
sed 's/NAME/nginx-privileged/; s/PRIVILEGED/true/' "$here/pod.yaml" | k apply -f - >/dev/null

cp "$work/captured/update-deployment-storefront.json" "$bodies/deployment-update.json"
cp "$work/captured/update-daemonset-calico-node.json" "$bodies/calico-node-v2.2-to-v2.3-kdd.json"
cp "$work/captured/create-pod-nginx.json" "$bodies/pod-create.json"
cp "$work/captured/create-pod-nginx-privileged.json" "$bodies/pod-create-privileged.json"
ls -l "$bodies"/*.json
