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

#[test]
fn missing_objects_are_told_apart_from_failures() {
    assert!(names_missing_object(
        "fatal: path 'go.mod' does not exist in '0123abc'"
    ));
    assert!(names_missing_object(
        "fatal: Not a valid object name 0123:go.mod"
    ));
    assert!(!names_missing_object(
        "fatal: unable to read 0123: Too many open files"
    ));
    assert!(!names_missing_object(""));
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn runner() -> Arc<GitRunner> {
    Arc::new(GitRunner::new(
        "git",
        Duration::from_secs(60),
        2,
        Arc::new(crate::direct::credentials::Credentials::none()),
    ))
}

#[tokio::test]
async fn a_mirror_peels_tags_of_tags_like_the_remote_and_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("go.mod"), "module example.com/m\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    git(&work, &["tag", "-a", "-m", "inner", "inner"]);
    git(&work, &["tag", "-a", "-m", "outer", "v1.0.0", "inner"]);
    let url = format!("file://{}", work.display());
    let dir = tmp.path().join("mirror.git");
    let mirror = Mirror::new(url.clone(), dir.clone(), runner(), true);
    assert!(mirror.refresh(Duration::ZERO).await.unwrap());
    let head = mirror.refs().await.unwrap().head.clone().unwrap();
    assert_eq!(
        mirror.refs().await.unwrap().tags_at(&head),
        ["inner", "v1.0.0"]
    );
    // A new handle (a restart) reads the same refs from disk.
    let again = Mirror::new(url, dir, runner(), true);
    let refs = again.refs().await.unwrap();
    assert_eq!(refs.tags_at(&head), ["inner", "v1.0.0"]);
    assert_eq!(refs.head_target.as_deref(), Some("refs/heads/main"));
    assert_eq!(again.commit("v1.0.0").await.unwrap().unwrap().hash, head);
    assert_eq!(again.read_file(&head, "nope.txt", 100).await.unwrap(), None);
    assert!(again
        .read_file(&head, "go.mod", 100)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn concurrent_refreshes_of_a_failing_remote_share_one_attempt() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}/does-not-exist", tmp.path().display());
    let mirror = Arc::new(Mirror::new(url, tmp.path().join("m.git"), runner(), true));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let m = Arc::clone(&mirror);
        tasks.push(tokio::spawn(async move { m.refresh(Duration::ZERO).await }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_err());
    }
    let generation = mirror.last_attempt().unwrap().generation;
    assert!(
        generation <= 2,
        "{generation} attempts for 6 concurrent callers"
    );
    // Within refresh_min a failure is answered from memory, without running git.
    let before = mirror.last_attempt().unwrap().generation;
    let err = mirror.refresh(Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err, GitError::Recent { .. }), "{err}");
    assert_eq!(mirror.last_attempt().unwrap().generation, before);
}
