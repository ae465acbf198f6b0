//! Tests of the mirror's pure parts: ref listings and directory names.

use super::*;

#[test]
fn refs_parse_peels_annotated_tags_and_reads_symref() {
    let text = "ref: refs/heads/main\tHEAD\n\
                aaaa\tHEAD\n\
                aaaa\trefs/heads/main\n\
                bbbb\trefs/tags/v1.0.0\n\
                cccc\trefs/tags/v1.1.0\n\
                dddd\trefs/tags/v1.1.0^{}\n\
                eeee\trefs/pull/1/head\n";
    let refs = Refs::parse(text);
    assert_eq!(refs.head.as_deref(), Some("aaaa"));
    assert_eq!(refs.head_target.as_deref(), Some("refs/heads/main"));
    assert_eq!(
        refs.map.get("refs/tags/v1.1.0").map(String::as_str),
        Some("dddd")
    );
    assert_eq!(refs.map.len(), 3, "pull refs are ignored: {refs:?}");
    assert_eq!(refs.tags_at("dddd"), ["v1.1.0"]);
    assert_eq!(refs.tags_with_prefix("v1."), ["v1.0.0", "v1.1.0"]);
}

#[test]
fn for_each_ref_output_with_empty_peel_lines_parses() {
    // Lightweight tags print an empty `%(*objectname)`, giving a line with one field.
    let text =
        "aaaa refs/heads/main\n refs/heads/main^{}\nbbbb refs/tags/v1\ncccc refs/tags/v1^{}\n";
    let refs = Refs::parse(text);
    assert_eq!(
        refs.map.get("refs/heads/main").map(String::as_str),
        Some("aaaa")
    );
    assert_eq!(
        refs.map.get("refs/tags/v1").map(String::as_str),
        Some("cccc")
    );
}

#[test]
fn mirror_names_are_safe_and_distinct() {
    let a = mirror_dir_name("https://git.corp/team/repo");
    let b = mirror_dir_name("https://git.corp/team/repo.git");
    assert_ne!(a, b);
    assert!(a.starts_with("git_corp_team_repo-"), "{a}");
    let evil = mirror_dir_name("https://x/../../etc");
    assert!(!evil.contains('/') && !evil.contains(".."), "{evil}");
}
