#!/bin/sh
# Offline checks of the Helm chart: lint, render, strict validation of every rendered document,
# and the refusals the chart promises (a typo'd value, a multi-node cluster without cluster TLS).
#
#   HELM=/path/to/helm helm/check.sh
#
# Environment:
#   HELM       helm binary (default: helm on PATH); v3.14+ or v4.
#   VALIDATOR  a built helm/validate binary; default: target/tools/helm-validate, built here with
#              `go build` when missing or older than its sources (needs go and the module
#              cache or proxy: GOFLAGS=-mod=mod and a writable GOMODCACHE work from a clean clone).
# Exits non-zero on the first failing check.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/helm/cairn"
HELM=${HELM:-helm}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() { printf '\n== %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

if [ -z "${VALIDATOR:-}" ]; then
  VALIDATOR="$root/target/tools/helm-validate"
  if [ ! -x "$VALIDATOR" ] || [ -n "$(find "$root/helm/validate" -newer "$VALIDATOR" -type f | head -n 1)" ]; then
    step "go build helm/validate -> $VALIDATOR"
    mkdir -p "$(dirname "$VALIDATOR")"
    go -C "$root/helm/validate" build -o "$VALIDATOR" .
  fi
fi

step "$("$HELM" version --short 2>/dev/null || "$HELM" version)"

step "the committed dashboard is what gen-dashboard.py generates"
python3 "$chart/files/gen-dashboard.py" | diff -u "$chart/files/cairn-dashboard.json" - \
  || die "cairn-dashboard.json is stale: run python3 helm/cairn/files/gen-dashboard.py > helm/cairn/files/cairn-dashboard.json"

# name: values file under ci/ (chart-testing's convention)
for values in "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  step "lint --strict: $name"
  "$HELM" lint --strict "$chart" -f "$values"
  step "template | helm-validate: $name"
  "$HELM" template cairn "$chart" --namespace cairn -f "$values" > "$out/$name.yaml" \
    || die "helm template failed for ci/$name-values.yaml"
  "$VALIDATOR" < "$out/$name.yaml" > "$out/$name.txt" || { cat "$out/$name.txt"; die "$name: validation failed"; }
  cat "$out/$name.txt"
done

expect() { # expect NAME PATTERN: the validator listed a document matching PATTERN
  grep -Eq "$2" "$out/$1.txt" || die "$1: expected a document matching '$2'"
}
expect_not() {
  if grep -Eq "$2" "$out/$1.txt"; then die "$1: expected no document matching '$2'"; fi
}
step "what each configuration renders"
expect_not default 'PodDisruptionBudget'          # a single node has no quorum to protect
expect default 'apps/v1 StatefulSet'
expect three-secret 'policy/v1 PodDisruptionBudget'
expect_not three-secret 'Certificate'
expect five-certmanager 'Certificate +cairn-node-4 '
expect five-certmanager 'Certificate +cairn-operator '
for kind in Ingress ServiceMonitor PrometheusRule 'batch/v1 Job' NetworkPolicy 'ConfigMap +cairn-dashboard'; do
  expect everything "$kind"
done
grep -q 'replicas: 5' "$out/five-certmanager.yaml" || die "five-certmanager: replicas is not 5"
grep -q '6.node.cairn.internal' "$out/five-certmanager.yaml" || die "nodeIdOverrides did not reach the Certificate"
echo "ok"

refuse() { # refuse WHAT PATTERN helm-template-args...: rendering must fail saying PATTERN
  what=$1 pattern=$2
  shift 2
  step "refused: $what"
  if "$HELM" template cairn "$chart" "$@" > "$out/refused.txt" 2>&1; then
    die "$what: helm template succeeded"
  fi
  grep -q -- "$pattern" "$out/refused.txt" || { cat "$out/refused.txt"; die "$what: the error does not say '$pattern'"; }
  grep -- "$pattern" "$out/refused.txt" | head -n 1
}
printf 'replicaCont: 3\n' > "$out/typo.yaml"
refuse "a typo'd value (replicaCont)" "additional properties 'replicaCont' not allowed" -f "$out/typo.yaml"
refuse "a typo'd config section" "additional properties 'cahce' not allowed" --set config.cahce.list_ttl_secs=1
refuse "3 replicas without cluster TLS" "needs mutual TLS on its cluster port" --set replicaCount=3
refuse "insecure together with certificates" "remove one of them" \
  --set replicaCount=3 --set clusterTLS.insecure=true --set clusterTLS.existingSecretPrefix=x
refuse "a PDB that would break the quorum" "loses the Raft quorum" \
  --set replicaCount=3 --set clusterTLS.insecure=true --set podDisruptionBudget.maxUnavailable=2
refuse "a grace period shorter than the drain" "must be longer than config.shutdown_grace_secs" \
  --set config.shutdown_grace_secs=60 --set terminationGracePeriodSeconds=30
refuse "two pods with one node id" "is used by two pods" \
  --set replicaCount=3 --set clusterTLS.insecure=true --set nodeIdOverrides.cairn-2=1

step "all chart checks passed"
