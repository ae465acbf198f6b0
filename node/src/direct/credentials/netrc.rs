//! A netrc parser with the go command's semantics (`cmd/go/internal/auth/netrc.go`): an entry is
//! complete once it has `machine`, `login` and `password`; `macdef` bodies (up to a blank line)
//! are skipped; parsing stops at `default`, whose credentials are never used, because sending
//! one login to every host would hand it to any server a go-import page points at.

/// One complete `machine` entry.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub(super) machine: String,
    pub(super) login: String,
    pub(super) password: String,
}

pub(super) fn parse(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut cur = (String::new(), String::new(), String::new());
    let mut in_macro = false;
    for line in text.split('\n') {
        if in_macro {
            in_macro = !line.trim_end_matches('\r').is_empty();
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `default` must follow every machine; everything from it on is ignored. (Go stops
        // only when `default` is the odd last token of a line; stopping always is the
        // documented meaning and never uses more credentials.)
        if let Some(d) = fields.iter().step_by(2).position(|f| *f == "default") {
            parse_fields(&fields[..d * 2], &mut cur, &mut in_macro, &mut lines);
            break;
        }
        parse_fields(&fields, &mut cur, &mut in_macro, &mut lines);
    }
    lines
}

/// The keyword/value pairs of one line.
fn parse_fields(
    fields: &[&str],
    cur: &mut (String, String, String),
    in_macro: &mut bool,
    lines: &mut Vec<Line>,
) {
    for pair in fields.chunks_exact(2) {
        let value = pair[1].to_owned();
        match pair[0] {
            "machine" => *cur = (value, String::new(), String::new()),
            "login" => cur.1 = value,
            "password" => cur.2 = value,
            "macdef" => *in_macro = true,
            _ => {}
        }
        if !cur.0.is_empty() && !cur.1.is_empty() && !cur.2.is_empty() {
            let (machine, login, password) = std::mem::take(cur);
            lines.push(Line {
                machine,
                login,
                password,
            });
        }
    }
}

/// The first entry whose machine is `host:port` or `host` (case-insensitively).
pub(super) fn lookup<'a>(lines: &'a [Line], host: &str, port: Option<u16>) -> Option<&'a Line> {
    let with_port = port.map(|p| format!("{host}:{p}"));
    lines.iter().find(|l| {
        l.machine.eq_ignore_ascii_case(host)
            || with_port
                .as_deref()
                .is_some_and(|hp| l.machine.eq_ignore_ascii_case(hp))
    })
}
