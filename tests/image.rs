//! The container image (`deploy/image/build`): a static `tollgate` on
//! scratch, run from the image's own filesystem with
//! `buildah run --isolation chroot`.
//!
//! Runs wherever buildah is installed. `TOLLGATE_IMAGE` names an image
//! built already (`.ci/run` builds it once, first); otherwise the test runs
//! the build script. Without buildah the test has nothing to run: outside
//! CI it says so; in CI (`CI` set) that is a failure.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_tests as support;

const STORAGE: &str = "--storage-driver=vfs";

fn buildah(args: &[&str]) -> std::process::Output {
    Command::new("buildah")
        .arg(STORAGE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run buildah")
}

fn buildah_ok(args: &[&str]) -> String {
    let out = buildah(args);
    assert!(
        out.status.success(),
        "buildah {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The image to test: `TOLLGATE_IMAGE`, or a fresh build.
fn image() -> String {
    if let Some(image) = std::env::var_os("TOLLGATE_IMAGE") {
        return image.to_string_lossy().into_owned();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/image/build");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run deploy/image/build");
    assert!(out.status.success(), "deploy/image/build failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().expect("the image name").to_owned()
}

/// A working container of `image`, removed on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = buildah(&["rm", &self.0]);
    }
}

#[test]
fn the_image_runs_tollgate_as_non_root_without_a_shell() {
    if !installed("buildah") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but buildah is missing: .ci/run installs it (apt-get install buildah)"
        );
        eprintln!("buildah is not installed: nothing to run (deploy/image/build installs it)");
        return;
    }
    let image = image();

    let config: serde_json::Value =
        serde_json::from_str(&buildah_ok(&["inspect", "--type", "image", &image]))
            .expect("buildah inspect JSON");
    let oci = &config["OCIv1"]["config"];
    assert_eq!(oci["User"], "65532:65532", "{oci}");
    assert_eq!(oci["Entrypoint"], serde_json::json!(["/tollgate"]), "{oci}");
    assert!(
        oci["Volumes"].get("/var/cache/tollgate").is_some(),
        "the module cache is a volume: {oci}"
    );
    // One layer of files: the binary and two directories, nothing else.
    let container = Container(buildah_ok(&["from", "--quiet", &image]).trim().to_owned());
    let root = buildah_ok(&["mount", &container.0]).trim().to_owned();
    let mut files: Vec<String> = walk(Path::new(&root))
        .into_iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "tollgate",
            "var",
            "var/cache",
            "var/cache/tollgate",
            "var/lib",
            "var/lib/tollgate"
        ],
        "the image holds only tollgate"
    );
    let binary = std::fs::read(Path::new(&root).join("tollgate")).expect("read the binary");
    assert_eq!(&binary[..4], b"\x7fELF");
    assert!(
        !binary.windows(14).any(|w| w == b"/lib64/ld-linu"),
        "the binary names a dynamic loader"
    );
    let _ = buildah(&["umount", &container.0]);

    let run = |args: &[&str]| {
        let mut all = vec!["run", "--isolation", "chroot", &container.0, "--"];
        all.extend(args);
        buildah(&all)
    };
    let version = run(&["/tollgate", "--version"]);
    assert!(version.status.success(), "{version:?}");
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.starts_with("tollgate "), "{version}");
    assert!(
        !run(&["/bin/sh", "-c", "true"]).status.success(),
        "a shell in the image"
    );

    // `tollgate serve` from the image: the built-in pack on its development
    // certificate, as the image's non-root user with its own state.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Command::new("buildah")
        .arg(STORAGE)
        .args(["run", "--isolation", "chroot", &container.0, "--"])
        .args(["/tollgate", "serve", "--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("buildah run tollgate serve");
    let stdout = serve.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let banner = loop {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(line) if line.contains("listening on") => break line,
            Ok(_) => {}
            Err(_) => {
                assert!(
                    serve.try_wait().expect("wait").is_none(),
                    "tollgate serve exited in the image"
                );
                assert!(started.elapsed() < Duration::from_secs(180), "no banner");
            }
        }
    };
    assert!(banner.contains(&listen), "{banner}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true)
            .build()
            .expect("client");
        let health = client
            .get(format!("https://{listen}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert!(health.status().is_success());
        let (path, review) = support::corpus::captured(
            "05-scale-controller-to-3--validate--update-scale-scale-calico-policy-controller.json",
        );
        client
            .post(format!("https://{listen}{path}"))
            .json(&review)
            .send()
            .await
            .expect("validate")
            .json::<serde_json::Value>()
            .await
            .expect("AdmissionReview")
    });
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.starts_with("controller-single-replica"), "{answer}");
    stop(&mut serve, port);
}

/// SIGTERM to `buildah run`, which forwards it; the port must close.
fn stop(serve: &mut std::process::Child, port: u16) {
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let started = Instant::now();
    while serve.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(40) {
            let _ = serve.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = serve.wait();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "tollgate still listens after buildah run ended"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        out.push(path.clone());
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        }
    }
    out
}
