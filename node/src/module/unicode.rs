//! The two Unicode properties the module rules need, with Go's exact tables: "is a letter" (for
//! file paths) and the simple case-folding key used to detect case-insensitive name collisions.

use super::unicode_tables::{FOLD_RUNS, LETTERS};

/// The Unicode version the tables follow (the one the go command uses).
pub const UNICODE_VERSION: &str = super::unicode_tables::UNICODE_VERSION;

/// Reports whether `c` is in Unicode general category L (Go's `unicode.IsLetter`). Unlike
/// `char::is_alphabetic`, combining marks and letter-like numbers (`Ⅻ`) are not letters.
pub fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    let c = u32::from(c);
    let i = LETTERS.partition_point(|&(lo, _)| lo <= c);
    i > 0 && c <= LETTERS[i - 1].1
}

/// Folds one character to the representative of its simple case-folding class: the smallest
/// member, except that ASCII `A-Z` fold to `a-z`. `K`, `k` and `K` (U+212A KELVIN SIGN) all give
/// `k`; `ß` and `ẞ` give `ß`.
pub fn fold_char(c: char) -> char {
    let code = u32::from(c);
    let i = FOLD_RUNS.partition_point(|&(lo, ..)| lo <= code);
    let Some(&(lo, hi, stride, delta)) = i.checked_sub(1).and_then(|i| FOLD_RUNS.get(i)) else {
        return c;
    };
    if code > hi || (code - lo) % stride != 0 {
        return c;
    }
    code.checked_add_signed(delta)
        .and_then(char::from_u32)
        .unwrap_or(c)
}

/// A string key such that two strings are equal under Unicode simple case folding (Go's
/// `strings.EqualFold`) exactly when their keys are equal; used for zip collision checks.
pub fn fold_key(s: &str) -> String {
    if !s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        return s.to_string();
    }
    s.chars().map(fold_char).collect()
}
