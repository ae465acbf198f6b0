//! The Helm chart (issue 11): `helm/check.sh` passes (lint, render, strict validation of every
//! manifest, the refusals the chart promises), and `cairn-node` starts on the TOML the chart
//! renders — the node rejects unknown keys, so a chart that renders a key the node does not know
//! would crash-loop every pod.
//!
//! Needs helm: `CAIRN_HELM=/path/to/helm`. Without it these tests print `SKIPPED` and pass,
//! unless `CAIRN_REQUIRE_TOOLS=1`. `check.sh` also needs `go` to build `helm/validate` (or
//! `VALIDATOR` pointing at a built one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use cairn_tests::node::{CairnNode, NodeOptions};
use cairn_tests::pki::ClusterPki;

/// The repository root (this crate lives in `tests/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `$CAIRN_HELM`, or `None` after printing why the test is skipped.
fn helm() -> Option<PathBuf> {
    match std::env::var_os("CAIRN_HELM") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "CAIRN_HELM={} does not exist", p.display());
            Some(p)
        }
        None if std::env::var("CAIRN_REQUIRE_TOOLS").as_deref() == Ok("1") => {
            panic!("CAIRN_REQUIRE_TOOLS=1 but CAIRN_HELM is not set (the path of a helm binary)")
        }
        None => {
            eprintln!("SKIPPED: helm not found: set CAIRN_HELM to a helm binary to test the chart");
            None
        }
    }
}

/// `helm template` of the chart with a values file from `helm/cairn/ci/` (`None`: defaults),
/// only the ConfigMaps, and the node's TOML from them.
fn rendered_toml(helm: &Path, values: Option<&str>) -> String {
    let chart = repo_root().join("helm/cairn");
    let mut cmd = Command::new(helm);
    cmd.args(["template", "cairn"])
        .arg(&chart)
        .args(["--show-only", "templates/configmap.yaml"]);
    if let Some(v) = values {
        cmd.arg("-f").arg(chart.join("ci").join(v));
    }
    let out = cmd.output().expect("running helm template");
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    block_scalar(&String::from_utf8_lossy(&out.stdout), "cairn.toml")
        .expect("the ConfigMap has a cairn.toml key")
}

/// The text of the YAML block scalar `  key: |` (indented by two), dedented; enough for
/// the ConfigMap the chart renders, without a YAML parser.
fn block_scalar(yaml: &str, key: &str) -> Option<String> {
    let head = format!("  {key}: |");
    let mut lines = yaml.lines().skip_while(|l| l.trim_end() != head);
    lines.next()?;
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(""))
        .collect();
    Some(body.join("\n") + "\n")
}

#[test]
fn block_scalar_reads_the_configmap_value() {
    let yaml =
        "data:\n  cairn.toml: |\n    a = 1\n\n    [b]\n    c = \"d\"\n  start.sh: |\n    x\n";
    assert_eq!(
        block_scalar(yaml, "cairn.toml").unwrap(),
        "a = 1\n\n[b]\nc = \"d\"\n"
    );
}

#[test]
fn chart_check_script_passes() {
    let Some(helm) = helm() else { return };
    let root = repo_root();
    let out = Command::new("sh")
        .arg(root.join("helm/check.sh"))
        .env("HELM", &helm)
        .current_dir(&root)
        .output()
        .expect("running helm/check.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "helm/check.sh failed:\n{text}");
    assert!(text.contains("all chart checks passed"), "{text}");
}

#[tokio::test]
async fn node_starts_on_the_default_chart_config() {
    let Some(helm) = helm() else { return };
    let toml = rendered_toml(&helm, None);
    assert!(toml.contains("data_dir = \"/data\""), "{toml}");
    // The harness's flags replace listen, cluster_listen and data_dir (flags beat the file).
    let mut node = CairnNode::start(NodeOptions::new("off").config(&toml))
        .await
        .unwrap();
    assert_eq!(node.get("/healthz").await.unwrap().status, 200);
    let status = node.sigterm(Duration::from_secs(30)).await.unwrap();
    assert!(status.success(), "cairn-node exited with {status}");
}

/// Every optional part on: HTTPS, access tokens, direct credentials, cluster TLS (given the way
/// the chart's start.sh gives it: `CAIRN_CLUSTER__*` variables). The Secret paths the chart
/// renders are rewritten to files made here.
#[tokio::test]
async fn node_starts_on_the_everything_on_chart_config() {
    let Some(helm) = helm() else { return };
    let toml = rendered_toml(&helm, Some("everything-values.yaml"));
    let pki = ClusterPki::new().unwrap();
    pki.certs(&["server", "localhost", "127.0.0.1"]).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let token = "cairn_chart_test_token";
    let files = [
        ("/etc/cairn/https/tls.crt", pki.dir().join("https.pem")),
        ("/etc/cairn/https/tls.key", pki.dir().join("https-key.pem")),
        (
            "/etc/cairn/access/tokens.toml",
            tokens_file(secrets.path(), token),
        ),
        (
            "/etc/cairn/direct/0/token",
            write(secrets.path(), "gh-token", "ghp_x\n"),
        ),
        (
            "/etc/cairn/direct/1/ssh-privatekey",
            write(secrets.path(), "id", "not a key\n"),
        ),
        (
            "/etc/cairn/direct/1/known_hosts",
            write(secrets.path(), "kh", ""),
        ),
    ];
    let mut config = toml.clone();
    for (chart_path, local) in &files {
        assert!(config.contains(chart_path), "{chart_path} not in:\n{toml}");
        config = config.replace(chart_path, &local.display().to_string());
    }
    assert!(
        !config.contains("/etc/cairn/"),
        "unmapped chart path in:\n{config}"
    );
    let mut opts = NodeOptions::new("off")
        .https(&pki.https_ca())
        .config(&config);
    for (k, v) in pki.node_env(1).unwrap() {
        opts = opts.env(&k, v.as_deref());
    }
    let mut node = CairnNode::start(opts).await.unwrap();
    // The tokens file was read: the token's identity is known.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    let r = node
        .request(
            reqwest::Method::GET,
            "/whoami",
            &[("authorization", &format!("Basic {basic}"))],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("alice"), "{}", r.text());
    let status = node.sigterm(Duration::from_secs(60)).await.unwrap();
    assert!(status.success(), "cairn-node exited with {status}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// An `access.tokens_file` with `alice` holding `token`.
fn tokens_file(dir: &Path, token: &str) -> PathBuf {
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text =
        format!("[[token]]\nname = \"alice\"\nsha256 = \"{hash}\"\ngroups = [\"team-payments\"]\n");
    write(dir, "tokens.toml", &text)
}
