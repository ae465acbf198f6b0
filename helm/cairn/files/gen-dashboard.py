#!/usr/bin/env python3
"""Generates cairn-dashboard.json, the Grafana dashboard for cairn.

    python3 helm/cairn/files/gen-dashboard.py > helm/cairn/files/cairn-dashboard.json

Edit this script, not the JSON (both are committed; check-queries.py checks the JSON). Every
panel query filters on `job=~"$job"`; per-node panels also on `instance=~"$instance"`, cluster
panels aggregate `by (job)` or by a bounded label. Python 3, stdlib only.
"""

import json
import sys

NODE = 'job=~"$job",instance=~"$instance"'
CLUSTER = 'job=~"$job"'
RI = "$__rate_interval"
HIT = 'result="hit"'
FAILED = 'result=~"error|breaker_open"'

_next_id = 0
_y = 0


def _id():
    global _next_id
    _next_id += 1
    return _next_id


def target(expr, legend, ref):
    return {
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
    }


def panel(title, exprs, *, unit="short", kind="timeseries", w=8, h=8, x=0, desc="", stack=False, minimum=None):
    """A panel; exprs is a list of (expr, legend)."""
    p = {
        "id": _id(),
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": h, "w": w, "x": x, "y": _y},
        "targets": [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(exprs)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if minimum is not None:
        p["fieldConfig"]["defaults"]["min"] = minimum
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10 if stack else 0,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "showPoints": "never",
        }
        p["options"] = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif kind == "stat":
        p["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    return p


def row(title, panels, collapsed=False):
    """A row followed by its panels, laid out three (or the given widths) per line."""
    global _y
    out = [{"id": _id(), "type": "row", "title": title, "collapsed": collapsed,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y}, "panels": []}]
    _y += 1
    x, line_h = 0, 0
    for p in panels:
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            _y += line_h
            x, line_h = 0, 0
        p["gridPos"].update({"x": x, "y": _y})
        x += w
        line_h = max(line_h, h)
        out.append(p)
    _y += line_h
    return out


def rate(metric, sel, by, extra=""):
    inner = f"{metric}{{{sel}{',' + extra if extra else ''}}}"
    return f"sum by ({by}) (rate({inner}[{RI}]))"


def quantile(q, metric, sel, by, extra=""):
    inner = f"{metric}_bucket{{{sel}{',' + extra if extra else ''}}}"
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({inner}[{RI}])))"


def panels():
    out = []
    out += row("Overview (cluster)", [
        panel("Leader", [(f"max by (job) (cairn_raft_is_leader{{{CLUSTER}}})", "{{job}}")], kind="stat", w=4, h=4,
              desc="1 when some node is Raft leader (CairnNoLeader fires at 0)."),
        panel("Nodes up", [(f"sum by (job) (up{{{CLUSTER}}})", "scraped"),
                           (f"max by (job) (cairn_cluster_members{{{CLUSTER}}})", "members")], kind="stat", w=4, h=4),
        panel("Requests/s", [(rate("cairn_http_requests_total", CLUSTER, "job"), "{{job}}")], kind="stat", unit="reqps", w=4, h=4),
        panel("Hit ratio", [(f"{rate('cairn_cache_requests_total', CLUSTER, 'job', HIT)} / {rate('cairn_cache_requests_total', CLUSTER, 'job')}", "{{job}}")],
              kind="stat", unit="percentunit", w=4, h=4),
        panel("Blobs missing", [(f"sum by (job) (cairn_blobs_missing{{{CLUSTER}}})", "{{job}}")], kind="stat", w=4, h=4),
        panel("Degraded pass-throughs (1h)", [(f"sum by (job) (increase(cairn_degraded_passthrough_total{{{CLUSTER}}}[1h]))", "{{job}}")], kind="stat", w=4, h=4,
              desc="Misses served without being cached because there was no quorum."),
    ])
    out += row("Traffic", [
        panel("Requests by endpoint (cluster)", [(rate("cairn_http_requests_total", CLUSTER, "endpoint"), "{{endpoint}}")], unit="reqps", stack=True),
        panel("Requests by status (cluster)", [(rate("cairn_http_requests_total", CLUSTER, "status"), "{{status}}")], unit="reqps", stack=True),
        panel("Requests by node", [(rate("cairn_http_requests_total", NODE, "instance"), "{{instance}}")], unit="reqps"),
        panel("Cache hit ratio by file kind (cluster)",
              [(f"{rate('cairn_cache_requests_total', CLUSTER, 'kind', HIT)} / {rate('cairn_cache_requests_total', CLUSTER, 'kind')}", "{{kind}}")],
              unit="percentunit", minimum=0),
        panel("Cache lookups by kind and result (per node)", [(rate("cairn_cache_requests_total", NODE, "instance, kind, result"), "{{instance}} {{kind}} {{result}}")], unit="reqps"),
        panel("Bytes served by endpoint", [(rate("cairn_http_response_bytes_total", CLUSTER, "endpoint"), "{{endpoint}} (cluster)"),
                                           (rate("cairn_http_response_bytes_total", NODE, "instance"), "{{instance}}")], unit="Bps"),
        panel("Single-flight waiters by kind", [(rate("cairn_flight_waiters_total", CLUSTER, "kind"), "{{kind}}")], unit="reqps",
              desc="Requests that joined an identical fetch already in flight instead of starting their own."),
        panel("Fills in progress", [(f"sum by (instance, kind) (cairn_flights_inflight{{{NODE}}})", "{{instance}} {{kind}}")]),
        panel("Open connections / refused", [(f"sum by (instance) (cairn_http_connections{{{NODE}}})", "{{instance}} open"),
                                             (rate("cairn_http_connections_refused_total", NODE, "instance, reason"), "{{instance}} refused {{reason}}")]),
    ])
    out += row("Latency", [
        panel("p50/p90/p99 by endpoint (cluster)", [
            (quantile(0.5, "cairn_http_request_duration_seconds", CLUSTER, "endpoint", 'endpoint=~"info|mod|zip|list|latest|sumdb"'), "p50 {{endpoint}}"),
            (quantile(0.9, "cairn_http_request_duration_seconds", CLUSTER, "endpoint", 'endpoint=~"info|mod|zip|list|latest|sumdb"'), "p90 {{endpoint}}"),
            (quantile(0.99, "cairn_http_request_duration_seconds", CLUSTER, "endpoint", 'endpoint=~"info|mod|zip|list|latest|sumdb"'), "p99 {{endpoint}}"),
        ], unit="s", w=12, desc="Time to the response head; hits and misses together (CairnHitLatencyHigh uses info/mod/zip)."),
        panel("p99 of info/mod/zip by node", [(quantile(0.99, "cairn_http_request_duration_seconds", NODE, "instance", 'endpoint=~"info|mod|zip"'), "{{instance}}")], unit="s", w=12),
    ])
    out += row("Upstream", [
        panel("Upstream requests by kind and result (cluster)", [(rate("cairn_upstream_requests_total", CLUSTER, "kind, result"), "{{kind}} {{result}}")], unit="reqps"),
        panel("Upstream error ratio (SLO 99.5%)", [
            (f"{rate('cairn_upstream_requests_total', CLUSTER, 'job', FAILED)} / {rate('cairn_upstream_requests_total', CLUSTER, 'job')}", "{{job}}"),
        ], unit="percentunit", minimum=0, desc="Errors and breaker refusals over all upstream requests; the budget is 0.5%."),
        panel("Upstream p99 latency by kind", [(quantile(0.99, "cairn_upstream_request_duration_seconds", CLUSTER, "kind"), "{{kind}}")], unit="s"),
        panel("Retries, breakers open, in flight", [
            (rate("cairn_upstream_retries_total", NODE, "instance"), "{{instance}} retries/s"),
            (f"sum by (instance) (cairn_upstream_breaker_open{{{NODE}}})", "{{instance}} breakers open"),
            (f"sum by (instance) (cairn_upstream_inflight{{{NODE}}})", "{{instance}} in flight"),
        ]),
        panel("Bytes from upstreams", [(rate("cairn_upstream_bytes_total", CLUSTER, "kind"), "{{kind}}")], unit="Bps"),
        panel("Rejected fills, stale answers", [
            (rate("cairn_fill_rejected_total", CLUSTER, "kind, reason"), "rejected {{kind}} {{reason}}"),
            (rate("cairn_stale_served_total", CLUSTER, "kind"), "stale {{kind}}"),
        ], unit="reqps"),
    ])
    out += row("Raft", [
        panel("Leader by node", [(f"max by (instance) (cairn_raft_is_leader{{{NODE}}})", "{{instance}}")], minimum=0),
        panel("Term", [(f"max by (instance) (cairn_raft_term{{{NODE}}})", "{{instance}}")]),
        panel("Leader changes (15m)", [(f"max by (instance) (increase(cairn_raft_leader_changes_total{{{NODE}}}[15m]))", "{{instance}}")],
              desc="CairnFrequentLeaderChanges fires above 3."),
        panel("Applied / last log index", [
            (f"max by (instance) (cairn_raft_applied_index{{{NODE}}})", "{{instance}} applied"),
            (f"max by (instance) (cairn_raft_last_log_index{{{NODE}}})", "{{instance}} last log"),
        ]),
        panel("Replication lag per peer (entries)", [(f"max by (peer) (cairn_raft_replication_lag_entries{{{CLUSTER}}})", "peer {{peer}}")],
              desc="Reported by the leader; followers report 0."),
        panel("Replication lag per peer (seconds)", [(f"max by (peer) (cairn_raft_replication_lag_seconds{{{CLUSTER}}})", "peer {{peer}}")], unit="s"),
        panel("Proposals by result", [(rate("cairn_raft_proposals_total", NODE, "instance, result"), "{{instance}} {{result}}"),
                                      (rate("cairn_raft_forwarded_total", NODE, "instance, result"), "{{instance}} forwarded {{result}}")], unit="ops"),
        panel("Propose / fsync p99", [
            (quantile(0.99, "cairn_raft_propose_duration_seconds", NODE, "instance"), "{{instance}} propose"),
            (quantile(0.99, "cairn_raft_flush_duration_seconds", NODE, "instance"), "{{instance}} fsync"),
        ], unit="s"),
        panel("Peers seen up", [(f"min by (instance, peer) (cairn_peer_up{{{NODE}}})", "{{instance}} sees {{peer}}")], minimum=0,
              desc="CairnPeerDown fires on 0 for 1m."),
    ])
    out += row("Regions", [
        panel("Placement survives a region loss", [(f"min by (job) (cairn_cluster_quorum_survives_region_loss{{{CLUSTER}}})", "{{job}}")],
              kind="stat", w=6, minimum=0,
              desc="1 when the voters keep a majority after losing any one region (also 1 in a single-region cluster). CairnRegionQuorumAtRisk fires at 0."),
        panel("Voters per region", [(f"max by (region) (cairn_cluster_region_voters{{{CLUSTER}}})", "{{region}}")], w=9, minimum=0,
              desc="From the Raft membership (region=\"\": members without cluster.region)."),
        panel("Reachable voters per region (worst node's view)", [(f"min by (region) (cairn_cluster_region_voters_reachable{{{CLUSTER}}})", "{{region}}")], w=9, minimum=0,
              desc="Voters of each region that the node seeing the fewest still reaches. 0 for a region: it is cut off from some node (CairnRegionQuorumAtRisk)."),
        panel("Replication lag by region (entries)", [(f"max by (region, peer) (cairn_raft_replication_lag_entries{{{CLUSTER}}})", "{{region}} peer {{peer}}")],
              w=12, desc="Reported by the leader for each member, labelled with the member's region."),
        panel("Replication lag by region (seconds)", [(f"max by (region) (cairn_raft_replication_lag_seconds{{{CLUSTER}}})", "{{region}}")], w=12, unit="s"),
        panel("Nodes by region and zone", [(f"count by (region, zone) (cairn_node_info{{{CLUSTER}}})", "{{region}} {{zone}}")], kind="stat", w=12, h=4,
              desc="cairn_node_info: where each scraped node says it runs."),
        panel("Voters holding back elections", [(f"max by (instance) (cairn_raft_campaigns_held{{{NODE}}})", "{{instance}}")], w=12, h=4, minimum=0,
              desc="1 while a voter hears no leader and reaches no majority of the voters (cut off): it does not campaign, so its term stays and the heal costs no election."),
    ])
    out += row("Replication and repair", [
        panel("Repair queue by node", [(f"max by (instance) (cairn_repair_queue_length{{{NODE}}})", "{{instance}}")]),
        panel("Blobs missing by node", [(f"max by (instance) (cairn_blobs_missing{{{NODE}}})", "{{instance}}")]),
        panel("Repairs by result", [(rate("cairn_repairs_total", NODE, "instance, result"), "{{instance}} {{result}}")], unit="ops"),
        panel("Peer blob fetches by result", [(rate("cairn_peer_fetches_total", NODE, "instance, result"), "{{instance}} {{result}}")], unit="ops"),
        panel("Copies for min_copies by result", [(rate("cairn_blob_replications_total", NODE, "instance, result"), "{{instance}} {{result}}"),
                                                  (quantile(0.99, "cairn_blob_replication_duration_seconds", NODE, "instance"), "{{instance}} p99 s")]),
        panel("Blob bytes between peers", [(rate("cairn_peer_fetch_bytes_total", NODE, "instance"), "{{instance}} received"),
                                           (rate("cairn_peer_served_bytes_total", NODE, "instance"), "{{instance}} sent")], unit="Bps"),
        panel("Owner fills by result", [(rate("cairn_owner_fills_total", NODE, "instance, result"), "{{instance}} {{result}}")], unit="ops"),
        panel("Blob transfer p99", [(quantile(0.99, "cairn_blob_transfer_duration_seconds", NODE, "instance, direction"), "{{instance}} {{direction}}")], unit="s"),
        panel("Degraded pass-throughs by kind", [(rate("cairn_degraded_passthrough_total", NODE, "instance, kind"), "{{instance}} {{kind}}")], unit="reqps",
              desc="Misses served without being cached because the node had no quorum."),
    ])
    out += row("Storage", [
        panel("Data directory used", [(f"1 - max by (instance) (cairn_data_dir_free_bytes{{{NODE}}}) / max by (instance) (cairn_data_dir_capacity_bytes{{{NODE}}})", "{{instance}}")],
              unit="percentunit", minimum=0),
        panel("Free space, and predicted in 24h", [
            (f"max by (instance) (cairn_data_dir_free_bytes{{{NODE}}})", "{{instance}} free"),
            (f"max by (instance) (predict_linear(cairn_data_dir_free_bytes{{{NODE}}}[6h], 24 * 3600))", "{{instance}} in 24h"),
        ], unit="bytes"),
        panel("Blobs and version records", [
            (f"max by (instance) (cairn_blob_objects{{{NODE}}})", "{{instance}} blobs"),
            (f"max by (instance) (cairn_version_records{{{NODE}}})", "{{instance}} versions"),
        ]),
        panel("Blob bytes", [(f"max by (instance) (cairn_blob_bytes{{{NODE}}})", "{{instance}}")], unit="bytes"),
        panel("Corruption found", [
            (f"sum by (instance) (increase(cairn_scrub_corrupt_total{{{NODE}}}[1h]))", "{{instance}} scrub corrupt (1h)"),
            (f"sum by (instance) (increase(cairn_blob_quarantined_total{{{NODE}}}[1h]))", "{{instance}} quarantined (1h)"),
            (f"sum by (instance) (increase(cairn_blob_verify_failures_total{{{NODE}}}[1h]))", "{{instance}} aborted responses (1h)"),
        ]),
        panel("Disk watermark state", [(f"max by (instance) (cairn_disk_watermark_state{{{NODE}}})", "{{instance}}")], minimum=0,
              desc="0 under low, 1 above low, 2 above high (evicting), 3 flood (storing nothing: misses pass through). CairnDiskFlood pages at 3."),
        panel("Evictions and refills", [
            (rate("cairn_disk_evictions_total", NODE, "instance"), "{{instance}} evicted"),
            (rate("cairn_disk_refills_total", NODE, "instance, from"), "{{instance}} refilled from {{from}}"),
            (rate("cairn_disk_evictions_deferred_total", NODE, "instance"), "{{instance}} deferred (min_copies)"),
        ], unit="ops"),
        panel("Evicted bytes and flood pass-throughs", [
            (rate("cairn_disk_evicted_bytes_total", NODE, "instance"), "{{instance}} evicted B/s"),
            (rate("cairn_disk_flood_passthrough_total", NODE, "instance, kind"), "{{instance}} pass-through {{kind}} /s"),
        ]),
        panel("Scrubs and negative cache", [
            (f"sum by (instance) (increase(cairn_scrub_runs_total{{{NODE}}}[1h]))", "{{instance}} scrubs (1h)"),
            (f"max by (instance) (cairn_negative_cache_entries{{{NODE}}})", "{{instance}} not-found entries"),
        ]),
    ])
    out += row("Checksum database and integrity", [
        panel("Verifications by result", [(rate("cairn_sumdb_verifications_total", CLUSTER, "result"), "{{result}}")], unit="ops"),
        panel("sumdb proxy lookups by result", [(rate("cairn_sumdb_requests_total", CLUSTER, "result"), "{{result}}")], unit="reqps"),
        panel("Mismatches, conflicts, quarantines (1h)", [
            (f"sum by (kind) (increase(cairn_sumdb_mismatches_total{{{CLUSTER}}}[1h]))", "h1 mismatch {{kind}}"),
            (f"sum by (kind) (increase(cairn_immutability_conflicts_total{{{CLUSTER}}}[1h]))", "immutability conflict {{kind}}"),
            (f"sum by (job) (increase(cairn_sumdb_quarantined_total{{{CLUSTER}}}[1h]))", "quarantined versions"),
        ], desc="Any non-zero value pages (CairnChecksumMismatch, CairnImmutabilityConflict)."),
        panel("Database forked", [(f"max by (db) (cairn_sumdb_forked{{{CLUSTER}}})", "{{db}}")], kind="stat", w=8, h=4),
    ])
    out += row("direct (git)", [
        panel("direct files by kind and result", [(rate("cairn_direct_requests_total", CLUSTER, "kind, result"), "{{kind}} {{result}}")], unit="reqps"),
        panel("git commands by command and result", [(rate("cairn_direct_git_commands_total", NODE, "command, result"), "{{command}} {{result}}")], unit="ops"),
        panel("git p99 and mirror activity", [
            (quantile(0.99, "cairn_direct_git_command_duration_seconds", NODE, "command"), "p99 s {{command}}"),
            (f"sum by (instance) (increase(cairn_direct_clones_total{{{NODE}}}[1h]))", "{{instance}} clones (1h)"),
            (f"sum by (instance) (increase(cairn_direct_fetches_total{{{NODE}}}[1h]))", "{{instance}} fetches (1h)"),
        ]),
    ])
    out += row("Security", [
        panel("TLS handshake failures", [(rate("cairn_tls_handshake_failures_total", NODE, "instance, listener"), "{{instance}} {{listener}}")], unit="ops"),
        panel("Cluster RPCs refused", [(rate("cairn_cluster_rpc_refused_total", NODE, "instance, service, reason"), "{{instance}} {{service}} {{reason}}")], unit="ops"),
        panel("Authentication refusals", [(rate("cairn_auth_attempts_total", NODE, "method, outcome", 'outcome!~"ok|anonymous"'), "{{method}} {{outcome}}")], unit="ops"),
        panel("Authentications by outcome", [(rate("cairn_auth_attempts_total", CLUSTER, "outcome"), "{{outcome}}")], unit="ops"),
        panel("Certificate expiry", [(f"min by (instance, listener) (cairn_tls_certificate_expiry_timestamp_seconds{{{NODE}}}) - time()", "{{instance}} {{listener}}")],
              unit="s", desc="CairnCertificateExpiringSoon fires below 14 days."),
        panel("Certificate reloads", [(rate("cairn_tls_reloads_total", NODE, "instance, listener, outcome"), "{{instance}} {{listener}} {{outcome}}")], unit="ops"),
    ])
    return out


def templating():
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
        {"name": "job", "label": "Cluster (job)", "type": "query",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(cairn_build_info, job)", "refId": "job"},
         "definition": "label_values(cairn_build_info, job)",
         "refresh": 2, "sort": 1, "multi": False, "includeAll": False, "current": {}, "options": [], "hide": 0},
        {"name": "instance", "label": "Node", "type": "query",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": 'label_values(cairn_build_info{job=~"$job"}, instance)', "refId": "instance"},
         "definition": 'label_values(cairn_build_info{job=~"$job"}, instance)',
         "refresh": 2, "sort": 1, "multi": True, "includeAll": True, "allValue": ".*",
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "hide": 0},
    ]}


def dashboard():
    return {
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
        "uid": "cairn-overview",
        "title": "cairn",
        "description": "cairn Go module mirror: traffic, cache, upstreams, Raft, replication, storage, integrity, security. Generated by gen-dashboard.py.",
        "tags": ["cairn", "goproxy"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "annotations": {"list": []},
        "links": [{"title": "Runbooks", "type": "link", "targetBlank": True,
                   "url": "https://github.com/cairn-mirror/cairn/blob/main/docs/runbooks.md"}],
        "templating": templating(),
        "panels": panels(),
    }


if __name__ == "__main__":
    json.dump(dashboard(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
