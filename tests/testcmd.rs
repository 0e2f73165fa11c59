//! `tollgate test` through the real binary: the built-in pack's own cases
//! (`policies-wasm/calico/tests/cases`) pass; a failing case, unusable
//! input and an empty directory get their exit status and say why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tollgate_tests as support;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `tollgate test ARGS…`, compiled modules cached under `target/tmp`.
fn tollgate_test(args: &[&Path]) -> Output {
    let cache = support::binary::target_tmp().join("tollgate-module-cache");
    Command::new(support::binary::tollgate_bin())
        .arg("test")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tollgate test")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_calico_pack_passes_its_own_cases() {
    let cases = repo().join("policies-wasm/calico/tests/cases");
    let output = tollgate_test(&[&cases]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let passed = lines.iter().filter(|l| l.starts_with("PASS ")).count();
    assert!(passed >= 28, "{stdout}");
    assert_eq!(
        lines.last(),
        Some(&format!("{passed} passed, 0 failed").as_str())
    );
    // Every rule of the pack is exercised (R1…R14 in the case names).
    for rule in 1..=14 {
        let named = format!("R{rule} ");
        assert!(
            lines.iter().any(|l| l.contains(&named)),
            "no case names {named}: {stdout}"
        );
    }
}

/// A case file next to the captured reviews, in a temporary directory.
fn case_file(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let reviews = repo().join("testdata/reviews");
    let path = dir.join(name);
    std::fs::write(
        &path,
        yaml.replace("REVIEWS", &reviews.display().to_string()),
    )
    .expect("write the case file");
    path
}

#[test]
fn a_failing_case_says_why_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = case_file(
        dir.path(),
        "wrong.test.yaml",
        "cases:\n\
         \x20 - name: scaling to 3 is allowed (it is not)\n\
         \x20   request: REVIEWS/05-scale-controller-to-3--validate--update-scale-scale-calico-policy-controller.json\n\
         \x20   expect: {allowed: true, message: '3 replicas'}\n\
         \x20 - name: scaling to 3 is denied\n\
         \x20   request: REVIEWS/05-scale-controller-to-3--validate--update-scale-scale-calico-policy-controller.json\n\
         \x20   expect: {allowed: false, verdict: deny, message: '3 replicas'}\n",
    );
    let output = tollgate_test(&[&file]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let shown = file.display();
    assert!(
        stdout.contains(&format!(
            "FAIL {shown}:2 scaling to 3 is allowed (it is not)\n     expected allowed, but it was denied\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("got deny: controller-single-replica: Deployment kube-system/calico-policy-controller (scale) asks for 3 replicas"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS {shown}:5 scaling to 3 is denied\n")),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn unusable_input_names_file_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let typo = case_file(
        dir.path(),
        "typo.test.yaml",
        "cases:\n  - name: a\n    request: {}\n    expect:\n      alowed: true\n",
    );
    let output = tollgate_test(&[&typo]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("error: {}:5:", typo.display())) && stderr.contains("alowed"),
        "{stderr}"
    );
    assert!(stdout.ends_with("0 passed, 0 failed\n"), "{stdout}");

    // A missing request file and a policy file that does not load: each
    // case is reported, the good case still runs.
    let mixed = case_file(
        dir.path(),
        "mixed.test.yaml",
        "cases:\n\
         \x20 - name: no such review\n\
         \x20   request: missing.json\n\
         \x20   expect: {allowed: true}\n\
         \x20 - name: broken policies\n\
         \x20   policies: [{id: p, module: nowhere.wasm}]\n\
         \x20   request: REVIEWS/08-edit-calico-config--validate--update-configmap-calico-config.json\n\
         \x20   expect: {allowed: true}\n\
         \x20 - name: the config edit warns\n\
         \x20   request: REVIEWS/08-edit-calico-config--validate--update-configmap-calico-config.json\n\
         \x20   expect: {verdict: warn, warnings: [restart]}\n",
    );
    let output = tollgate_test(&[&mixed]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    let shown = mixed.display();
    assert!(
        stderr.contains(&format!("error: {shown}:2: cannot read request")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("error: {shown}:5: cannot load the policies"))
            && stderr.contains("nowhere.wasm"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("PASS {shown}:9 the config edit warns")),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 passed, 0 failed\n"), "{stdout}");

    // Nothing to run is unusable too, and so is a path that is not there.
    let empty = tempfile::tempdir().unwrap();
    let output = tollgate_test(&[empty.path()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("no *.test.yaml files found"));
    let output = tollgate_test(&[&dir.path().join("nope")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("cannot read"));
}
