{{/*
Names and labels.
*/}}
{{- define "cairn.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The StatefulSet's name, also the pods' name prefix (<fullname>-0, -1, ...). Kept short: the
pod names and the headless Service's name together make the peers' DNS names. */}}
{{- define "cairn.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else if contains (include "cairn.name" .) .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "cairn.name" .) | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The headless Service that gives every pod a stable DNS name for the cluster port. */}}
{{- define "cairn.headlessName" -}}
{{- printf "%s-cluster" (include "cairn.fullname" .) }}
{{- end }}

{{- define "cairn.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The cairn-node pods (not the join Job's). */}}
{{- define "cairn.selectorLabels" -}}
{{ include "cairn.instanceLabels" . }}
app.kubernetes.io/component: node
{{- end }}

{{- define "cairn.instanceLabels" -}}
app.kubernetes.io/name: {{ include "cairn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Every object's metadata; no component (each object adds its own). */}}
{{- define "cairn.labels" -}}
helm.sh/chart: {{ include "cairn.chart" . }}
{{ include "cairn.instanceLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cairn
{{- end }}

{{- define "cairn.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cairn.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cairn.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Node ids and addresses. Node id = ordinal + 1 unless nodeIdOverrides names the pod (a pod whose
volume was lost rejoins under a new id; the README's "Disk loss" runbook). The start script
computes the same thing inside the pod from the ids ConfigMap.
*/}}
{{- define "cairn.nodeId" -}}
{{- $pod := printf "%s-%d" (include "cairn.fullname" .root) (int .ordinal) }}
{{- $override := get (.root.Values.nodeIdOverrides | default dict) $pod }}
{{- if $override }}{{ int $override }}{{ else }}{{ add1 (int .ordinal) }}{{ end }}
{{- end }}

{{/* The cluster address of the pod with this ordinal, as recorded in the Raft membership. */}}
{{- define "cairn.peerAddr" -}}
{{- $root := .root }}
{{- printf "%s-%d.%s.%s.svc.%s:%d" (include "cairn.fullname" $root) (int .ordinal) (include "cairn.headlessName" $root) $root.Release.Namespace $root.Values.clusterDomain (int $root.Values.clusterService.port) }}
{{- end }}

{{/*
How the cluster port is protected, mirroring the node's own refusal to run a multi-node cluster
without mutual TLS: "certManager", "secret", "insecure" or "none" (a single node without TLS).
*/}}
{{- define "cairn.clusterTLSMode" -}}
{{- $t := .Values.clusterTLS }}
{{- if and $t.insecure (or $t.certManager.enabled $t.existingSecretPrefix) }}
{{- fail "clusterTLS.insecure is set together with cluster certificates (clusterTLS.certManager.enabled or clusterTLS.existingSecretPrefix): remove one of them" }}
{{- end }}
{{- if and $t.certManager.enabled $t.existingSecretPrefix }}
{{- fail "set either clusterTLS.certManager.enabled or clusterTLS.existingSecretPrefix, not both" }}
{{- end }}
{{- if $t.certManager.enabled }}certManager
{{- else if $t.existingSecretPrefix }}secret
{{- else if $t.insecure }}insecure
{{- else if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "a cluster of %d nodes needs mutual TLS on its cluster port, or anyone who reaches it can change the membership: set clusterTLS.certManager.enabled=true (with clusterTLS.certManager.issuerRef), or clusterTLS.existingSecretPrefix (Secrets <prefix>-0, <prefix>-1, ... holding ca.crt, tls.crt, tls.key), or clusterTLS.insecure=true to run without" (int .Values.replicaCount)) }}
{{- else }}none
{{- end }}
{{- end }}

{{/* The Secret holding node <ordinal>'s cluster certificate. */}}
{{- define "cairn.nodeSecretName" -}}
{{- if eq (include "cairn.clusterTLSMode" .root) "certManager" }}
{{- printf "%s-node-%d" (include "cairn.fullname" .root) (int .ordinal) }}
{{- else }}
{{- printf "%s-%d" .root.Values.clusterTLS.existingSecretPrefix (int .ordinal) }}
{{- end }}
{{- end }}

{{/* The Secret holding the operator certificate used by the join Job ("" when none). */}}
{{- define "cairn.operatorSecretName" -}}
{{- $mode := include "cairn.clusterTLSMode" . }}
{{- if .Values.clusterTLS.operatorSecret }}
{{- .Values.clusterTLS.operatorSecret }}
{{- else if eq $mode "certManager" }}
{{- printf "%s-operator" (include "cairn.fullname" .) }}
{{- end }}
{{- end }}

{{/* The HTTPS certificate's Secret ("" when the GOPROXY port speaks plain HTTP). */}}
{{- define "cairn.httpsSecretName" -}}
{{- $h := .Values.https }}
{{- if and $h.existingSecret $h.certManager.enabled }}
{{- fail "set either https.existingSecret or https.certManager.enabled, not both" }}
{{- end }}
{{- if $h.existingSecret }}
{{- $h.existingSecret }}
{{- else if $h.certManager.enabled }}
{{- printf "%s-https" (include "cairn.fullname" .) }}
{{- end }}
{{- end }}

{{- define "cairn.scheme" -}}
{{- if include "cairn.httpsSecretName" . }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* Seconds the node drains after SIGTERM (config.shutdown_grace_secs, node default 30). */}}
{{- define "cairn.shutdownGrace" -}}
{{- $cfg := .Values.config | default dict }}
{{- if hasKey $cfg "shutdown_grace_secs" }}{{ int $cfg.shutdown_grace_secs }}{{ else }}30{{ end }}
{{- end }}

{{/*
The node's TOML file: the user's `config` map plus what the chart owns (listen addresses, data
directory, and the paths where it mounts Secrets). Top-level scalars first, then one [section]
per map and one [[section]] per list of maps, recursively (see "cairn.toml").
*/}}
{{- define "cairn.nodeConfig" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int .Values.service.targetPort)) }}
{{- $_ := set $cfg "cluster_listen" (printf "0.0.0.0:%d" (int .Values.clusterService.port)) }}
{{- $_ := set $cfg "data_dir" "/data" }}
{{- if eq (include "cairn.clusterTLSMode" .) "insecure" }}
{{- $cluster := get $cfg "cluster" | default dict }}
{{- $_ := set $cluster "insecure" true }}
{{- $_ := set $cfg "cluster" $cluster }}
{{- end }}
{{- if include "cairn.httpsSecretName" . }}
{{- $tls := get $cfg "tls" | default dict }}
{{- $_ := set $tls "cert_file" "/etc/cairn/https/tls.crt" }}
{{- $_ := set $tls "key_file" "/etc/cairn/https/tls.key" }}
{{- $_ := set $cfg "tls" $tls }}
{{- end }}
{{- if .Values.accessTokens.existingSecret }}
{{- $access := get $cfg "access" | default dict }}
{{- $_ := set $access "tokens_file" (printf "/etc/cairn/access/%s" .Values.accessTokens.key) }}
{{- $_ := set $cfg "access" $access }}
{{- end }}
{{- if .Values.directCredentials }}
{{- $direct := get $cfg "direct" | default dict }}
{{- $creds := get $direct "credentials" | default list }}
{{- range $i, $c := .Values.directCredentials }}
{{- $entry := dict "host" $c.host "kind" $c.kind }}
{{- if $c.username }}{{ $_ := set $entry "username" $c.username }}{{ end }}
{{- if eq $c.kind "ssh" }}
{{- $_ := set $entry "key_file" (printf "/etc/cairn/direct/%d/%s" $i ($c.key | default "ssh-privatekey")) }}
{{- if $c.knownHostsKey }}{{ $_ := set $entry "known_hosts_file" (printf "/etc/cairn/direct/%d/%s" $i $c.knownHostsKey) }}{{ end }}
{{- else }}
{{- $_ := set $entry "secret_file" (printf "/etc/cairn/direct/%d/%s" $i ($c.key | default "token")) }}
{{- end }}
{{- $creds = append $creds $entry }}
{{- end }}
{{- $_ := set $direct "credentials" $creds }}
{{- $_ := set $cfg "direct" $direct }}
{{- end }}
{{- include "cairn.toml" (dict "table" $cfg "path" "") }}
{{- end }}

{{/* A list whose first element is a map renders as an array of tables. */}}
{{- define "cairn.isTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) (kindIs "map" (first .)) }}true{{ end }}
{{- end }}

{{- define "cairn.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/*
Renders a map as TOML: args (dict "table" MAP "path" "a.b"). Scalars and lists of scalars use
JSON literals, which TOML reads the same way (strings with \" and \uXXXX escapes, integers,
booleans, arrays). Nulls are left out. Numbers from values files arrive as float64; whole ones
print without a fraction, which TOML reads as integers.
*/}}
{{- define "cairn.toml" -}}
{{- $path := .path }}
{{- range $k, $v := .table }}
{{- if and (not (kindIs "invalid" $v)) (not (kindIs "map" $v)) (not (include "cairn.isTableArray" $v)) }}
{{ include "cairn.tomlKey" $k }} = {{ toJson $v }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- $sub := include "cairn.tomlKey" $k }}
{{- if $path }}{{ $sub = printf "%s.%s" $path $sub }}{{ end }}
{{- if kindIs "map" $v }}

[{{ $sub }}]
{{- include "cairn.toml" (dict "table" $v "path" $sub) }}
{{- else if include "cairn.isTableArray" $v }}
{{- range $v }}

[[{{ $sub }}]]
{{- include "cairn.toml" (dict "table" . "path" $sub) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The cairn CLI's TLS flags for the operator certificate mounted by the join Job. */}}
{{- define "cairn.cliTLSFlags" -}}
{{- if include "cairn.operatorSecretName" . }}--ca /etc/cairn/operator/ca.crt --cert /etc/cairn/operator/tls.crt --key /etc/cairn/operator/tls.key{{ end }}
{{- end }}
