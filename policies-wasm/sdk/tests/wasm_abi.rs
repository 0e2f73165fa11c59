//! The Wasm exports of `export_rules!` (ABI v2), driven through wasmtime on
//! the modules the build embeds (the Calico pack, pod-privileged): what the
//! host will call, checked against the same rules evaluated natively.
//!
//! The harness below is the least a host must do (alloc, write, call, read
//! the packed answer, serve `lookup` and `log`); the real host with its
//! sandbox lives in `webhook/host`.

use std::sync::OnceLock;

use serde_json::{Value, json};
use tollgate_sdk::wire::{Description, LookupQuery, SettingsCheck, Verdicts};
use tollgate_sdk::{Cluster, MemoryCluster};
use tollgate_testkit::corpus::{captured, doc, testdata_dir};
use tollgate_testkit::objects::{calico_pod, node, stored};
use wasmtime::{Caller, Engine, Instance, Linker, Module, Store, TypedFunc};

struct Modules {
    engine: Engine,
    calico: Module,
    pod_privileged: Module,
}

fn modules() -> &'static Modules {
    static MODULES: OnceLock<Modules> = OnceLock::new();
    MODULES.get_or_init(|| {
        let engine = Engine::default();
        Modules {
            calico: Module::new(&engine, tollgate_guests::CALICO).unwrap(),
            pod_privileged: Module::new(&engine, tollgate_test_artifacts::POD_PRIVILEGED).unwrap(),
            engine,
        }
    })
}

struct HostState {
    cluster: MemoryCluster,
    logs: Vec<String>,
    alloc: Option<TypedFunc<i32, i32>>,
}

/// One fresh instance, as the host makes per evaluation.
struct Guest {
    store: Store<HostState>,
    instance: Instance,
}

fn memory_of(caller: &mut Caller<'_, HostState>) -> wasmtime::Memory {
    caller.get_export("memory").unwrap().into_memory().unwrap()
}

impl Guest {
    fn new(module: &Module, cluster: MemoryCluster) -> Self {
        let engine = &modules().engine;
        let mut linker = Linker::<HostState>::new(engine);
        linker
            .func_wrap(
                "tollgate",
                "log",
                |mut caller: Caller<'_, HostState>, _level: i32, ptr: i32, len: i32| {
                    let memory = memory_of(&mut caller);
                    let bytes = &memory.data(&caller)[ptr as usize..][..len as usize];
                    let line = String::from_utf8_lossy(bytes).into_owned();
                    caller.data_mut().logs.push(line);
                },
            )
            .unwrap();
        linker
            .func_wrap(
                "tollgate",
                "lookup",
                |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
                    let memory = memory_of(&mut caller);
                    let query = &memory.data(&caller)[ptr as usize..][..len as usize];
                    let query: LookupQuery = serde_json::from_slice(query)?;
                    let answer = match caller.data().cluster.lookup(&query) {
                        Ok(objects) => {
                            let objects: Value = serde_json::from_slice(objects.json())?;
                            json!({"objects": objects})
                        }
                        Err(e) => json!({"error": e.to_string()}),
                    };
                    let answer = serde_json::to_vec(&answer)?;
                    let alloc = caller.data().alloc.clone().unwrap();
                    let at = alloc.call(&mut caller, answer.len() as i32)?;
                    memory.write(&mut caller, at as usize, &answer)?;
                    Ok(((at as i64) << 32) | answer.len() as i64)
                },
            )
            .unwrap();
        let state = HostState {
            cluster,
            logs: Vec::new(),
            alloc: None,
        };
        let mut store = Store::new(engine, state);
        let instance = linker.instantiate(&mut store, module).unwrap();
        let alloc = instance
            .get_typed_func(&mut store, "tollgate_alloc")
            .unwrap();
        store.data_mut().alloc = Some(alloc);
        Self { store, instance }
    }

    fn write(&mut self, bytes: &[u8]) -> (i32, i32) {
        let alloc = self.store.data().alloc.clone().unwrap();
        let at = alloc.call(&mut self.store, bytes.len() as i32).unwrap();
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.write(&mut self.store, at as usize, bytes).unwrap();
        (at, bytes.len() as i32)
    }

    fn read(&mut self, packed: i64) -> Vec<u8> {
        let (at, len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.data(&self.store)[at..][..len].to_vec()
    }

    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
        params: P,
    ) -> wasmtime::Result<R> {
        let f = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, params)
    }

    fn describe(&mut self) -> Description {
        let packed = self.call("tollgate_describe", ()).unwrap();
        serde_json::from_slice(&self.read(packed)).unwrap()
    }

    fn validate(&mut self, rule: &str, settings: &str) -> SettingsCheck {
        let (rp, rl) = self.write(rule.as_bytes());
        let (sp, sl) = self.write(settings.as_bytes());
        let packed = self
            .call("tollgate_validate_settings", (rp, rl, sp, sl))
            .unwrap();
        serde_json::from_slice(&self.read(packed)).unwrap()
    }

    /// `tollgate_evaluate`; a trap is the guest's last log line.
    fn evaluate(&mut self, request: &[u8], rules: &Value) -> Result<Verdicts, String> {
        let (qp, ql) = self.write(request);
        let (rp, rl) = self.write(rules.to_string().as_bytes());
        match self.call::<_, i64>("tollgate_evaluate", (qp, ql, rp, rl)) {
            Ok(packed) => Ok(serde_json::from_slice(&self.read(packed)).unwrap()),
            Err(_) => Err(self.store.data().logs.last().cloned().unwrap_or_default()),
        }
    }
}

fn every_rule(rules: tollgate_sdk::Rules) -> Value {
    rules
        .iter()
        .map(|r| json!({"rule": r.name, "settings": {}}))
        .collect()
}

fn reviews() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<String> = std::fs::read_dir(testdata_dir().join("reviews"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let request = captured(&f).1["request"].to_string().into_bytes();
            (f, request)
        })
        .collect()
}

/// Controllers, a node and a calico-node pod, so the context rules read.
fn calico_cluster() -> MemoryCluster {
    MemoryCluster::new([
        stored(&doc(
            "v1.6/policy-controller.yaml",
            "ReplicaSet",
            "calico-policy-controller",
        )),
        stored(&doc("v2.5/kdd/calico.yaml", "DaemonSet", "calico-node")),
        node("node-01", true, &[]),
        calico_pod(
            "calico-node-a",
            "node-01",
            "quay.io/calico/node:v2.5.1",
            true,
        ),
    ])
}

#[test]
fn the_modules_speak_abi_2_and_describe_their_rules() {
    for (module, rules) in [
        (&modules().calico, tollgate_calico::rules()),
        (&modules().pod_privileged, pod_privileged::rules()),
    ] {
        let mut guest = Guest::new(module, MemoryCluster::default());
        assert_eq!(
            guest.call::<(), i32>("tollgate_abi_version", ()).unwrap(),
            2
        );
        assert_eq!(guest.describe(), rules.describe());
        assert_eq!(guest.describe().abi, 2);
        let evaluate = module.get_export("tollgate_evaluate").unwrap();
        let params: Vec<String> = evaluate
            .func()
            .unwrap()
            .params()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(params, ["i32", "i32", "i32", "i32"]);
    }
}

#[test]
fn the_calico_bundle_in_one_instance_answers_as_natively_on_every_captured_review() {
    let rules = every_rule(tollgate_calico::rules());
    let calls = rules.to_string();
    for (file, request) in reviews() {
        let mut guest = Guest::new(&modules().calico, calico_cluster());
        let in_wasm = guest
            .evaluate(&request, &rules)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let native = tollgate_calico::rules()
            .evaluate(&request, calls.as_bytes(), &calico_cluster())
            .unwrap();
        assert_eq!(in_wasm, native, "{file}");
        // One verdict per rule of the pack.
        let count = tollgate_calico::rules().iter().count();
        assert_eq!(in_wasm.verdicts.len(), count, "{file}");
        assert_eq!(count, 23);
    }
}

#[test]
fn pod_privileged_in_wasm_on_the_captured_pod_and_a_privileged_variant() {
    let (_, review) =
        captured("13-create-calico-node-pod--validate--create-pod-calico-node-x7k2p.json");
    let pod = review["request"].to_string();
    let mut privileged = review["request"].clone();
    privileged["object"]["spec"]["initContainers"] =
        json!([{"name": "install", "image": "busybox", "securityContext": {"privileged": true}}]);
    let calls = json!([
        {"rule": "pod-privileged", "settings": {}},
        {"rule": "pod-privileged", "settings": {"exemptNamespaces": ["kube-system"]}},
    ]);
    let mut guest = Guest::new(&modules().pod_privileged, MemoryCluster::default());
    let v = guest.evaluate(pod.as_bytes(), &calls).unwrap().verdicts;
    assert!(v[0].allowed && v[1].allowed, "{v:?}");
    let mut guest = Guest::new(&modules().pod_privileged, MemoryCluster::default());
    let v = guest
        .evaluate(privileged.to_string().as_bytes(), &calls)
        .unwrap()
        .verdicts;
    assert!(!v[0].allowed && v[1].allowed, "{v:?}");
    assert!(
        v[0].message
            .as_ref()
            .unwrap()
            .contains("initContainers \"install\"")
    );
}

#[test]
fn any_failure_traps_the_whole_call_and_logs_why() {
    let (_, review) =
        captured("13-create-calico-node-pod--validate--create-pod-calico-node-x7k2p.json");
    let request = review["request"].to_string();
    for (request, calls, reason) in [
        (
            request.as_str(),
            json!([{"rule": "pod-privileged"}, {"rule": "pod-privileged", "settings": {"bogus": 1}}]),
            "panic: rule pod-privileged: settings: unknown field `bogus`",
        ),
        (
            request.as_str(),
            json!([{"rule": "pod-privileged"}, {"rule": "nope"}]),
            "panic: this module has no rule \"nope\"",
        ),
        (
            "{not json",
            json!([{"rule": "pod-privileged"}]),
            "panic: cannot read the admission request: ",
        ),
        (
            r#"{"object": {"spec": {"containers": {}}}}"#,
            json!([{"rule": "pod-privileged"}]),
            "panic: rule pod-privileged: cannot read request.object as tollgate_sdk::views::pod::Pod",
        ),
        (
            request.as_str(),
            json!({"rule": "pod-privileged"}),
            "panic: cannot read the rules to evaluate: ",
        ),
    ] {
        let mut guest = Guest::new(&modules().pod_privileged, MemoryCluster::default());
        let log = guest.evaluate(request.as_bytes(), &calls).unwrap_err();
        assert!(log.starts_with(reason), "{log}");
    }
}

#[test]
fn settings_are_validated_at_load_through_the_export() {
    let mut guest = Guest::new(&modules().pod_privileged, MemoryCluster::default());
    assert!(
        guest
            .validate("pod-privileged", r#"{"exemptNamespaces": ["a"]}"#)
            .valid
    );
    assert!(guest.validate("pod-privileged", "").valid);
    let bad = guest.validate("pod-privileged", r#"{"exemptNamespaces": "kube-system"}"#);
    let message = bad.message.unwrap();
    assert!(
        !bad.valid && message.starts_with("settings: invalid type: string"),
        "{message}"
    );
    let unknown = guest.validate("nope", "{}");
    assert!(!unknown.valid && unknown.message.unwrap().contains("no rule \"nope\""));
    let mut calico = Guest::new(&modules().calico, MemoryCluster::default());
    let typo = calico.validate("controller-recreate", r#"{"namespacez": "x"}"#);
    assert!(!typo.valid && typo.message.unwrap().contains("unknown field"));
}
