//! The bench end to end: short runs of every scenario against the real
//! `tollgate` binary (the test profile's build; these are not figures),
//! checking that the report shows the work each scenario claims and that
//! bad input is refused with a clear message.

use std::process::{Command, Output};

use tollgate_tests::tollgate_bin;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate-bench"))
        .arg("--tollgate")
        .arg(tollgate_bin())
        .args(args)
        .output()
        .expect("run tollgate-bench")
}

/// Runs short enough for a test (these are not figures).
const QUICK: [&str; 6] = [
    "--seconds",
    "0.2",
    "--rounds",
    "1",
    "--warmup-seconds",
    "0.1",
];

fn quick(args: &[&str]) -> Output {
    bench(&[&QUICK[..], args].concat())
}

fn stdout(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tollgate-bench failed: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The table row of `server` in the section that starts with `label`.
fn row<'t>(text: &'t str, label: &str, server: &str) -> Vec<&'t str> {
    let section = &text[text
        .find(label)
        .unwrap_or_else(|| panic!("no {label} in\n{text}"))..];
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{server} ")))
        .unwrap_or_else(|| panic!("no {server} row under {label}"));
    line.split_whitespace().collect()
}

#[test]
fn every_scenario_runs_and_reports_its_work() {
    let text = stdout(&quick(&[]));
    // (a): an unrelated Deployment, answered; both servers measured, no errors.
    assert!(text.contains("(a) unrelated Deployment UPDATE"), "{text}");
    for label in ["(a)", "(b)", "(c)"] {
        for server in ["floor", "tollgate"] {
            let cells = row(&text, label, server);
            let rate: f64 = cells[1].parse().unwrap();
            assert!(rate > 0.0, "{label} {server}: {cells:?}");
            assert_eq!(cells[6], "0", "{label} {server} errors: {cells:?}");
        }
        let ratio = &text[text.find(label).unwrap()..];
        assert!(ratio.contains("tollgate / floor: throughput"), "{text}");
    }
    // What Tollgate did is shown: (b) goes through the node rules, (c)
    // through R9 (whose verdict is checked against the expected one).
    let b = &text[text.find("(b)").unwrap()..text.find("(c)").unwrap()];
    assert!(b.contains("node-one-at-a-time="), "{b}");
    let c = &text[text.find("(c)").unwrap()..text.find("(d)").unwrap()];
    assert!(c.contains("v1-networkpolicy-semantics="), "{c}");
    let targets = &text[text.find("Targets (issue 8 item 5)").unwrap()..];
    assert!(targets.contains("(a) answered allowed"), "{targets}");
    assert!(targets.contains("(c) answered allowed"), "{targets}");
    // (d): start to ready, cold and warm.
    assert!(text.contains("cold cache (empty --cache-dir)"), "{text}");
    assert!(text.contains("warm cache"), "{text}");
    // (e): the example policy allows the plain Pod and denies the privileged one.
    assert!(text.contains("(e) Pod CREATE, not privileged"), "{text}");
    assert!(
        targets.contains("(e) not privileged: answered allowed"),
        "{targets}"
    );
    assert!(
        targets.contains("(e) privileged container: answered denied"),
        "{targets}"
    );
    for line in targets.lines().filter(|l| l.contains("answered")) {
        assert!(
            line.ends_with(" met") || line.starts_with("  (c)"),
            "{line}"
        );
    }
    assert!(!text.contains("MIXED"), "{text}");
}

#[test]
fn bad_input_is_refused_clearly() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--scenario",
                "a",
                "--pod-privileged-policies",
                "/nonexistent.yaml",
            ],
            "--pod-privileged-policies /nonexistent.yaml: no such file",
        ),
        (
            &[
                "--scenario",
                "a",
                "--against",
                "https://127.0.0.1:1/validate",
            ],
            "--against-ca",
        ),
        (
            &[
                "--scenario",
                "a",
                "--against",
                "http://127.0.0.1:1/validate",
            ],
            "--against",
        ),
    ];
    for (args, message) in cases {
        let out = quick(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate-bench"))
        .args(["--tollgate", "/nonexistent/tollgate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tollgate: no such file"));
}

#[test]
fn against_measures_another_engine_on_the_same_bodies() {
    // Another Tollgate stands in for "the user's current engine".
    let other = tollgate_tests::Launch::new().shared_module_cache().start();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, other.ca_pem()).unwrap();
    let pid = other.pid().to_string();
    let url = other.url("/validate");
    let text = stdout(&quick(&[
        "--scenario",
        "a",
        "--against",
        &url,
        "--against-ca",
        ca.to_str().unwrap(),
        "--against-pid",
        &pid,
    ]));
    assert!(text.contains("against: allowed"), "{text}");
    let cells = row(&text, "(a)", "against");
    assert!(cells[1].parse::<f64>().unwrap() > 0.0, "{cells:?}");
    assert_eq!(cells[6], "0", "{cells:?}");
    assert_ne!(cells[8], "-", "memory of --against-pid: {cells:?}");
    assert!(text.contains("against / floor: throughput"), "{text}");
}

#[test]
fn reviews_of_ones_own_through_ones_own_policies() {
    let reviews = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/reviews");
    let file = |name: &str| format!("{reviews}/{name}");
    let text = stdout(&quick(&[
        "--review",
        &file(
            "04-edit-controller-to-rollingupdate--mutate--update-deployment-calico-policy-controller.json",
        ),
        "--endpoint",
        "mutate",
    ]));
    assert!(!text.contains("(a)") && !text.contains("(d)"), "{text}");
    assert!(text.contains("(review) 04-edit-controller"), "{text}");
    assert!(text.contains("patched"), "R1 repairs on /mutate: {text}");
    let cells = row(&text, "(review)", "tollgate");
    assert_eq!(cells[6], "0", "{cells:?}");
}
