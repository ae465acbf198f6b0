//! Garbage from the upstream is rejected, counted, never stored, and never poisons the cache:
//! once the upstream behaves again, the right module downloads with the right hash.

use bytes::Bytes;
use cairn_tests::corpus::{build_zip, pseudo_random_bytes, time_n, Corpus, ModuleSpec};
use cairn_tests::fixture::{Fixture, Override};
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::version_path;
use cairn_tests::node::CairnNode;

use crate::common::{assert_zip_body, start_node};

const VICTIM: &str = "example.com/victim";
const MAX_ZIP: usize = 1 << 20;
const MAX_UNCOMPRESSED: usize = 4 << 20;

fn config() -> String {
    format!(
        "upstream_error_status = 502\n\
         [limits]\nmax_zip_bytes = {MAX_ZIP}\nmax_uncompressed_bytes = {MAX_UNCOMPRESSED}\n\
         [upstream_http]\nretries = 0\nbackoff_base_ms = 10\n"
    )
}

/// One kind of garbage: which file of which version is replaced, and by what.
struct Case {
    name: &'static str,
    version: &'static str,
    ext: &'static str,
    /// The replacement; `None` = the real zip cut in half after declaring its full length.
    answer: Option<Override>,
}

fn prefix(version: &str) -> String {
    format!("{VICTIM}@{version}/")
}

fn go_mod() -> Vec<u8> {
    format!("module {VICTIM}\n\ngo 1.21\n").into_bytes()
}

fn zip_of(entries: &[(String, &[u8])]) -> Bytes {
    Bytes::from(build_zip(entries, None).unwrap())
}

/// Sets the declared uncompressed size of entry `name` (local header and central directory).
fn lie_about_size(zip: &mut [u8], name: &str, size: u32) {
    let mut patched = 0;
    for i in 0..zip.len().saturating_sub(46) {
        let sig = u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
        let u16_at = |o: usize| u16::from_le_bytes([zip[i + o], zip[i + o + 1]]) as usize;
        let (size_at, name_at, name_len) = match sig {
            0x0403_4b50 => (22, 30, u16_at(26)),
            0x0201_4b50 => (24, 46, u16_at(28)),
            _ => continue,
        };
        if zip.get(i + name_at..i + name_at + name_len) == Some(name.as_bytes()) {
            zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(
        patched, 2,
        "patching {name}: expected a local and a central header"
    );
}

fn zip_case(name: &'static str, version: &'static str, files: &[(&str, &[u8])]) -> Case {
    let entries: Vec<(String, &[u8])> = files
        .iter()
        .map(|(n, c)| (format!("{}{n}", prefix(version)), *c))
        .collect();
    Case {
        name,
        version,
        ext: "zip",
        answer: Some(Override::Body(zip_of(&entries))),
    }
}

fn cases() -> Vec<Case> {
    let gm = go_mod();
    let zeros = vec![0u8; 2 * MAX_UNCOMPRESSED];
    let noise = pseudo_random_bytes(7, MAX_ZIP + MAX_ZIP / 2);
    let bad_prefix = zip_of(&[
        ("example.com/other@v1.0.0/go.mod".to_string(), &gm[..]),
        ("example.com/other@v1.0.0/x.go".to_string(), b"package x\n"),
    ]);
    let liar_name = format!("{}zeros.bin", prefix("v1.0.3"));
    let liar_entries = [
        (format!("{}go.mod", prefix("v1.0.3")), &gm[..]),
        (liar_name.clone(), &zeros[..]),
    ];
    let mut liar = build_zip(&liar_entries, None).unwrap();
    lie_about_size(&mut liar, &liar_name, 100);
    let chunked_entries = [
        (format!("{}go.mod", prefix("v1.0.6")), &gm[..]),
        (format!("{}noise.bin", prefix("v1.0.6")), &noise[..]),
    ];
    let chunked = zip_of(&chunked_entries);
    let other_info =
        Bytes::from_static(b"{\"Version\":\"v1.0.0\",\"Time\":\"2023-01-02T12:00:00Z\"}\n");
    let info = |name, version, body: &'static [u8]| Case {
        name,
        version,
        ext: "info",
        answer: Some(Override::Body(Bytes::from_static(body))),
    };
    vec![
        Case {
            name: "zip with entries outside module@version/",
            version: "v1.0.0",
            ext: "zip",
            answer: Some(Override::Body(bad_prefix)),
        },
        zip_case(
            "zip larger than max_zip_bytes",
            "v1.0.1",
            &[("go.mod", &gm), ("noise.bin", &noise)],
        ),
        zip_case(
            "zip bomb over max_uncompressed_bytes",
            "v1.0.2",
            &[("go.mod", &gm), ("zeros.bin", &zeros)],
        ),
        Case {
            name: "zip entry lying about its uncompressed size",
            version: "v1.0.3",
            ext: "zip",
            answer: Some(Override::Body(Bytes::from(liar))),
        },
        Case {
            name: ".info naming another version",
            version: "v1.0.4",
            ext: "info",
            answer: Some(Override::Body(other_info)),
        },
        Case {
            name: "truncated zip body",
            version: "v1.0.5",
            ext: "zip",
            answer: None,
        },
        Case {
            name: "zip over max_zip_bytes, chunked without Content-Length",
            version: "v1.0.6",
            ext: "zip",
            answer: Some(Override::Chunked {
                body: chunked,
                chunk: 64 << 10,
            }),
        },
        zip_case(
            "zip with a go.mod below the root",
            "v1.0.7",
            &[
                ("go.mod", &gm),
                ("sub/go.mod", b"module example.com/victim/sub\n"),
            ],
        ),
        zip_case(
            "zip with case-colliding names",
            "v1.0.8",
            &[("go.mod", &gm), ("README", b"a\n"), ("readme", b"b\n")],
        ),
        zip_case(
            "zip with a .. entry name (zip slip)",
            "v1.0.9",
            &[("go.mod", &gm), ("../../../escaped.go", b"package x\n")],
        ),
        zip_case(
            "zip with a backslash in a name",
            "v1.0.10",
            &[("go.mod", &gm), ("a\\b.go", b"package x\n")],
        ),
        Case {
            name: "200 with an HTML page instead of a zip",
            version: "v1.0.11",
            ext: "zip",
            answer: Some(Override::Body(Bytes::from_static(
                b"<html><body>Sign in</body></html>\n",
            ))),
        },
        info(".info that is not JSON", "v1.0.12", b"<html>oops</html>\n"),
        info(
            ".info without a Version",
            "v1.0.13",
            b"{\"Time\":\"2023-01-02T12:00:00Z\"}\n",
        ),
    ]
}

async fn rejected_total(node: &CairnNode) -> f64 {
    node.metrics()
        .await
        .unwrap()
        .sum("cairn_fill_rejected_total", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_upstream_answers_are_rejected_and_leave_no_trace() {
    let go = go("garbage_upstream_answers_are_rejected_and_leave_no_trace");
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ModuleSpec::new(VICTIM);
    for (i, c) in cases().iter().enumerate() {
        spec = spec.version(c.version, &time_n(i as u32 + 1));
    }
    let corpus = Corpus::write(dir.path(), &[spec]).unwrap();
    let fixture = Fixture::start(Some(dir.path())).await.unwrap();
    let node = start_node(&fixture.url(), &config()).await;

    let mut problems = Vec::new();
    for case in cases() {
        let path = version_path(VICTIM, case.version, case.ext);
        let answer = case.answer.unwrap_or_else(|| {
            let real = corpus.zip_bytes(VICTIM, case.version);
            Override::Truncated {
                declared: real.len() as u64,
                body: Bytes::from(real[..real.len() / 2].to_vec()),
            }
        });
        fixture.set_override(&path, answer);
        let (rejected_before, blobs_before) = (rejected_total(&node).await, node.blob_files());

        match node.get(&path).await {
            Ok(r) if r.status == 502 => {}
            Ok(r) => problems.push(format!(
                "{}: GET {path} -> {} (want 502), {} bytes: {:.200}",
                case.name,
                r.status,
                r.body.len(),
                r.text()
            )),
            Err(e) => problems.push(format!(
                "{}: GET {path}: transport error (a 200 whose body broke?): {e:#}",
                case.name
            )),
        }
        let m = node.metrics().await.unwrap();
        let rejected_after = m.sum("cairn_fill_rejected_total", &[]);
        if rejected_after <= rejected_before {
            problems.push(format!(
                "{}: cairn_fill_rejected_total did not increase ({rejected_before} -> {rejected_after}); metrics:\n{}{}",
                case.name,
                m.dump("cairn_fill_rejected"),
                m.dump("cairn_upstream_requests")
            ));
        }
        let blobs_after = node.blob_files();
        if blobs_after != blobs_before {
            problems.push(format!(
                "{}: blobs changed: {blobs_before:?} -> {blobs_after:?}",
                case.name
            ));
        }

        fixture.clear_override(&path);
        match node.get(&path).await {
            Ok(r) if case.ext == "zip" && r.status == 200 => {
                assert_zip_body(&r, &corpus, VICTIM, case.version)
            }
            Ok(r) if r.status == 200 => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                if v["Version"] != case.version {
                    problems.push(format!("{}: after the fix, {path} says {v}", case.name));
                }
            }
            Ok(r) => problems.push(format!(
                "{}: after the fix, GET {path} -> {} {:.200}",
                case.name,
                r.status,
                r.text()
            )),
            Err(e) => problems.push(format!("{}: after the fix, GET {path}: {e:#}", case.name)),
        }
    }
    if let Some(go) = go {
        let all = corpus.module_versions();
        match GoEnv::new(&go, &node.url())
            .unwrap()
            .mod_download_ok(&all)
            .await
        {
            Ok(downloads) => {
                for d in downloads {
                    let e = corpus.entry(&d.path, &d.version);
                    if (&d.sum, &d.go_mod_sum) != (&e.zip_h1, &e.mod_h1) {
                        problems.push(format!(
                            "{}@{}: go got {} / {}, want {} / {}",
                            d.path, d.version, d.sum, d.go_mod_sum, e.zip_h1, e.mod_h1
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("go mod download after the fixes: {e:#}")),
        }
    }
    let m = node.metrics().await.unwrap();
    eprintln!(
        "garbage: rejections counted by cairn:\n{}",
        m.dump("cairn_fill_rejected")
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
