#!/usr/bin/env python3
"""Checks that the Grafana dashboard and the alert rules query only what cairn exports.

    check-queries.py --dashboard cairn-dashboard.json --rules cairn-alerts.yaml --metrics metrics.txt

1. Every query of the dashboard (panel targets and `label_values()` variables), with its
   template variables replaced by concrete values, is written as a recording rule into a
   temporary rule file, and `promtool check rules` parses it together with the alert rules.
2. Every metric name referenced by the dashboard or the rules must appear in `--metrics`, the
   text of a live node's `/metrics`. Names defined by the rules' own `record:` entries and
   Prometheus's `up` are skipped; `<name>_bucket|_sum|_count` also count as present when
   `<name>` is declared a histogram or summary by a `# TYPE` line.

Some series only exist with some configuration (TLS, a multi-node leader, a verifying checksum
database): those are reported as notes when absent, unless `--strict`. `--allow-missing NAME`
adds to that list. Exits 0 when everything is fine, 1 with one line per problem otherwise,
2 on usage errors (missing files, no promtool). Python 3, stdlib only.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Grafana template variables and the values used to turn queries into plain PromQL.
VARIABLES = {
    "job": "cairn",
    "instance": ".+",
    "datasource": "prometheus",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}

# Series that only exist with some configuration, and why.
CONDITIONAL = {
    "cairn_tls_certificate_expiry_timestamp_seconds": "only on listeners with TLS",
    "cairn_tls_handshake_failures_total": "only on listeners with TLS",
    "cairn_tls_reloads_total": "only after a certificate file changed",
    "cairn_cluster_rpc_refused_total": "only after a cluster RPC was refused (cluster TLS)",
    "cairn_raft_replication_lag_entries": "only on the leader of a cluster with peers",
    "cairn_raft_replication_lag_seconds": "only on the leader of a cluster with peers",
    "cairn_sumdb_forked": "only with a verifying checksum database",
}

# PromQL words that are neither metric names nor functions called with "(".
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}
# Aggregation operators, which may be followed by `by (...)` before their "(".
KEYWORDS |= {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
# Keywords followed by a parenthesised list of label names.
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}

TOKEN = re.compile(
    r'"(?:\\.|[^"\\])*"'          # double-quoted string
    r"|'(?:\\.|[^'\\])*'"         # single-quoted string
    r"|`[^`]*`"                   # raw string
    r"|\d[\w.]*(?:[eE][+-]?\d+)?"  # number or duration (5m, 1e9, 0.99)
    r"|[A-Za-z_:][\w:]*"          # identifier
    r"|\S"                        # any other character
)
IDENT = re.compile(r"[A-Za-z_:][\w:]*\Z")


def metric_names(expr):
    """The metric names an expression selects (a small PromQL tokenizer, not a parser)."""
    tokens = [t for t in TOKEN.findall(expr)]
    names = set()
    braces = brackets = 0
    skip_group = False  # the next "(...)" is a list of label names
    group_depth = None
    depth = 0
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok == "{":
            braces += 1
        elif tok == "}":
            braces -= 1
        elif tok == "[":
            brackets += 1
        elif tok == "]":
            brackets -= 1
        elif tok == "(":
            depth += 1
            if skip_group:
                group_depth, skip_group = depth, False
        elif tok == ")":
            if group_depth == depth:
                group_depth = None
            depth -= 1
        elif IDENT.match(tok):
            if braces or brackets or group_depth is not None:
                continue  # a label name, a duration, or a grouping label
            low = tok.lower()
            if low in GROUPING:
                skip_group = True
            elif low in KEYWORDS or nxt == "(":
                continue  # a keyword, or a function/aggregation call
            else:
                names.add(tok)
    return names


def substitute(expr, problems, where):
    """Replaces Grafana variables ($x, ${x}, ${x:fmt}, [[x]]) with concrete values."""

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in VARIABLES:
            problems.append(f"{where}: unknown template variable ${name} in {expr!r}")
            return "x"
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", repl, expr)


def dashboard_queries(dashboard, problems):
    """(where, expr) for every panel target and every label_values() variable."""
    out = []

    def walk(node, path):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str) and node["expr"].strip():
                out.append((path, node["expr"]))
            for k, v in node.items():
                if k == "templating":
                    continue
                title = node.get("title")
                walk(v, f"{path} > {title}" if k == "targets" and title else path)
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    walk(dashboard.get("panels", []), "panel")
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") != "query" or not isinstance(query, str):
            continue
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
        if m:
            out.append((f"variable ${var.get('name')}", m.group(1)))
        elif not re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", query):
            out.append((f"variable ${var.get('name')}", query))
    return out


def rule_entries(text):
    """(kind, name, expr) for every rule of a Prometheus rule file.

    A minimal reader for the layout promtool accepts and this repository uses: `- record:` or
    `- alert:` followed by `expr:` given inline (plain or quoted) or as a block scalar.
    """
    entries = []
    lines = text.splitlines()
    current = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*-?\s*(record|alert):\s*(\S+)\s*$", line)
        if m:
            current = [m.group(1), m.group(2).strip("'\""), None]
            entries.append(current)
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        if m and current is not None:
            indent, value = len(m.group(1)), m.group(2).strip()
            if value in ("|", "|-", "|+", ">", ">-", ">+") or value == "":
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                current[2] = " ".join(b for b in block if b)
                continue
            if value[:1] in "'\"" and value[-1:] == value[:1]:
                value = value[1:-1]
            current[2] = value
        i += 1
    return [tuple(e) for e in entries]


def present_names(metrics_text):
    """Sample names and the families declared by # TYPE lines, with their types."""
    samples, types = set(), {}
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                types[parts[2]] = parts[3]
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return samples, types


def is_present(name, samples, types):
    if name in samples:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            family = name[: -len(suffix)]
            if types.get(family) in ("histogram", "summary") and not (suffix == "_bucket" and types[family] == "summary"):
                return True
    return False


def promtool_check(promtool, paths):
    proc = subprocess.run([promtool, "check", "rules", *paths], capture_output=True, text=True)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dashboard", required=True, help="Grafana dashboard JSON")
    ap.add_argument("--rules", required=True, help="Prometheus rule file (alerts and recording rules)")
    ap.add_argument("--metrics", required=True, help="text of a live node's /metrics")
    ap.add_argument("--promtool", default=os.environ.get("PROMTOOL", "promtool"), help="promtool binary (default: $PROMTOOL or promtool)")
    ap.add_argument("--allow-missing", action="append", default=[], metavar="NAME", help="a metric that may be absent (repeatable)")
    ap.add_argument("--strict", action="store_true", help="configuration-dependent metrics must be present too")
    args = ap.parse_args(argv)

    promtool = shutil.which(args.promtool)
    if promtool is None:
        print(f"error: promtool not found ({args.promtool}); set --promtool or $PROMTOOL", file=sys.stderr)
        return 2
    try:
        with open(args.dashboard) as f:
            dashboard = json.load(f)
        with open(args.rules) as f:
            rules_text = f.read()
        with open(args.metrics) as f:
            metrics_text = f.read()
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    problems, notes = [], []

    # 1. Parse every expression with promtool.
    queries = [(where, substitute(expr, problems, where)) for where, expr in dashboard_queries(dashboard, problems)]
    rules = rule_entries(rules_text)
    if not rules:
        problems.append(f"{args.rules}: no rules found")
    for kind, name, expr in rules:
        if not expr:
            problems.append(f"{args.rules}: {kind} {name} has no expr")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-queries.yaml")
        group = {"name": "dashboard", "rules": [
            {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]}
        with open(path, "w") as f:
            json.dump({"groups": [group]}, f, indent=1)  # JSON is YAML
        code, out = promtool_check(promtool, [path])
        if code != 0:
            # Name the failing panels: promtool quotes the recording rule's name.
            problems.append("dashboard queries do not parse:\n    " + out.replace("\n", "\n    "))
            for i, (where, expr) in enumerate(queries):
                if f'"dashboard:query_{i}"' in out:
                    problems.append(f"  {where}: {expr}")
        code, out = promtool_check(promtool, [args.rules])
        if code != 0:
            problems.append(f"{args.rules} does not pass promtool check rules:\n    " + out.replace("\n", "\n    "))

    # 2. Every referenced metric exists.
    samples, types = present_names(metrics_text)
    if not samples:
        problems.append(f"{args.metrics}: no samples (is it the text of /metrics?)")
    recorded = {name for kind, name, _ in rules if kind == "record"}
    ignored = recorded | {"up"}
    allowed = dict(CONDITIONAL) if not args.strict else {}
    allowed.update({n: "--allow-missing" for n in args.allow_missing})
    used = {}
    for where, expr in queries:
        for n in metric_names(expr):
            used.setdefault(n, []).append(where)
    for kind, name, expr in rules:
        for n in metric_names(expr or ""):
            used.setdefault(n, []).append(f"{kind} {name}")
    for name in sorted(used):
        if name in ignored or is_present(name, samples, types):
            continue
        wheres = sorted(set(used[name]))
        shown = ", ".join(wheres[:3]) + (f" and {len(wheres) - 3} more" if len(wheres) > 3 else "")
        if name in allowed:
            notes.append(f"absent (allowed: {allowed[name]}): {name}, used by {shown}")
        else:
            problems.append(f"missing from {args.metrics}: {name}, used by {shown}")

    for n in notes:
        print(f"note: {n}")
    print(f"checked {len(queries)} dashboard queries, {len(rules)} rules, {len(used)} metric names")
    if problems:
        for p in problems:
            print(f"problem: {p}")
        print(f"{len(problems)} problem(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
