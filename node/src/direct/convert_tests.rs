//! Tests of the tag and major-version helpers behind `convert` and `findDir`.

use super::*;
use crate::direct::discover::has_path_prefix;

#[test]
fn tags_to_versions() {
    assert_eq!(tag_to_version("", "v1.2.3"), ("v1.2.3".to_owned(), true));
    assert_eq!(
        tag_to_version("sub/", "sub/v1.2.3"),
        ("v1.2.3".to_owned(), true)
    );
    assert_eq!(tag_to_version("sub/", "v1.2.3"), (String::new(), false));
    assert_eq!(
        tag_to_version("", "v1.2.3+meta"),
        ("v1.2.3".to_owned(), false)
    );
    assert_eq!(tag_to_version("", "v1.2"), (String::new(), false));
    assert_eq!(
        tag_to_version("", "v0.0.0-20200101000000-abcdefabcdef"),
        (String::new(), false)
    );
}

#[test]
fn majors_and_prefixes() {
    assert!(is_major("example.com/m", ""));
    assert!(is_major("gopkg.in/yaml.v1", ""));
    assert!(!is_major("example.com/m/v2", ""));
    assert!(is_major("example.com/m/v2", "/v2"));
    assert!(!is_major("example.com/m", "/v2"));
    assert!(!is_major("", ""));
    assert_eq!(path_major_prefix("/v3"), "v3");
    assert_eq!(path_major_prefix(".v2-unstable"), "v2");
    assert!(has_path_prefix("a.b/c/d", "a.b/c"));
    assert!(!has_path_prefix("a.b/cd", "a.b/c"));
    assert!(has_path_prefix("a.b/c", "a.b/c"));
    assert_eq!(join("", "go.mod"), "go.mod");
    assert_eq!(join("sub", "v2"), "sub/v2");
}
