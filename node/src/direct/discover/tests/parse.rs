//! The go-import tag parser and `matchGoImport`.

use super::*;
use crate::direct::discover::lookup::has_path_prefix;

#[test]
fn meta_parsing_follows_the_go_decoder() {
    let parse = |s: &str| {
        html::parse_meta_go_imports(s)
            .into_iter()
            .map(|m| {
                format!("{} {} {} {}", m.prefix, m.vcs, m.repo_root, m.subdir)
                    .trim()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let doc = r#"<?xml version="1.0"?><!DOCTYPE html>
        <HTML><Head>
        <!-- <meta name="go-import" content="commented.example/x git https://no"> -->
        <META NAME="go-import" CONTENT="a.example/x git https://a.example/x.git">
        <meta name=go-import content='b.example/y git https://b.example/y?a=1&amp;b=2 sub'/>
        <meta name="Go-Import" content="wrong.example/case git https://no">
        <meta name="go-import" content="two fields">
        <meta content="c.example/z git https://c.example/z" name="go-import" >
        <x:meta name="go-import" content="d.example/ns git https://d.example/ns"></x:meta>
        </head>
        <meta name="go-import" content="late.example/x git https://no">"#;
    assert_eq!(
        parse(doc),
        vec![
            "a.example/x git https://a.example/x.git",
            "b.example/y git https://b.example/y?a=1&b=2 sub",
            "c.example/z git https://c.example/z",
            "d.example/ns git https://d.example/ns",
        ]
    );
    // <body> ends the scan as well; a syntax error keeps what came before.
    assert_eq!(parse("<meta name=go-import content=\"p git u\"><body><meta name=go-import content=\"q git u\">").len(), 1);
    assert_eq!(parse("<meta name=go-import content=\"p git u\">< oops<meta name=go-import content=\"q git u\">").len(), 1);
    // mod entries come first and hide VCS entries with the same prefix.
    assert_eq!(
        parse("<meta name=go-import content=\"p git u\"><meta name=go-import content=\"p mod m\"><meta name=go-import content=\"q git v\">"),
        vec!["p mod m", "q git v"]
    );
}

#[test]
fn match_go_import_rules() {
    let tags = |list: &[(&str, &str)]| -> Vec<html::MetaImport> {
        list.iter()
            .map(|(p, v)| html::MetaImport {
                prefix: (*p).to_owned(),
                vcs: (*v).to_owned(),
                repo_root: "u".to_owned(),
                subdir: String::new(),
            })
            .collect()
    };
    let t = tags(&[("a.example/r", "git"), ("a.example/rr", "git")]);
    assert_eq!(
        html::match_go_import(&t, "a.example/r/x").unwrap().prefix,
        "a.example/r"
    );
    assert_eq!(
        html::match_go_import(&t, "a.example/rrr"),
        Err(html::MatchError::Mismatch)
    );
    let t = tags(&[("a.example", "git"), ("a.example/r", "git")]);
    assert_eq!(
        html::match_go_import(&t, "a.example/r"),
        Err(html::MatchError::Multiple)
    );
    let t = tags(&[("a.example", "mod"), ("a.example/r", "git")]);
    assert_eq!(html::match_go_import(&t, "a.example/r").unwrap().vcs, "mod");
    assert!(
        has_path_prefix("a/b", "a") && has_path_prefix("a", "a") && !has_path_prefix("ab", "a")
    );
}
