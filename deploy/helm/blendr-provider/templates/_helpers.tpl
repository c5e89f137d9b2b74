{{/*
Names, labels and the pieces of the pod every template shares. Defined names carry the chart's name so that
both BlendrChain charts can sit in one umbrella chart without overriding each other's helpers.
*/}}

{{- define "blendr-provider.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "blendr-provider.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "blendr-provider.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "blendr-provider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "blendr-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: provider
{{- end }}

{{- define "blendr-provider.labels" -}}
helm.sh/chart: {{ include "blendr-provider.chart" . }}
{{ include "blendr-provider.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: blendrchain
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "blendr-provider.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Ray resource this provider's node carries (cluster mode) or "" (the agent's default). */}}
{{- define "blendr-provider.rayResource" -}}
{{- if .Values.ray.resource }}
{{- .Values.ray.resource }}
{{- else if .Values.ray.address }}
{{- printf "blendr-provider-%s-%s" .Release.Namespace (include "blendr-provider.fullname" .) }}
{{- end }}
{{- end }}

{{/* Where the deployment manifest comes from: "configMap", "secret", "inline" or "". */}}
{{- define "blendr-provider.deploymentSource" -}}
{{- $c := .Values.chain }}
{{- $n := 0 }}
{{- if $c.deploymentConfigMap }}{{ $n = add1 $n }}{{ end }}
{{- if $c.deploymentSecret }}{{ $n = add1 $n }}{{ end }}
{{- if $c.deployment }}{{ $n = add1 $n }}{{ end }}
{{- if gt $n 1 }}
{{- fail "chain: give the deployment manifest one way only: chain.deploymentConfigMap, chain.deploymentSecret or chain.deployment (inline JSON)" }}
{{- end }}
{{- if $c.deploymentConfigMap }}configMap{{ else if $c.deploymentSecret }}secret{{ else if $c.deployment }}inline{{ end }}
{{- end }}

{{/*
Checks that need more than values.schema.json: what must be there for a provider to start at all.
*/}}
{{- define "blendr-provider.validate" -}}
{{- if not .Values.key.existingSecret }}
{{- fail "key.existingSecret is required: a provider needs a stable identity (its stake and reputation belong to its address). Create a Secret holding its key, e.g. `blendr identity init --home ./p && kubectl create secret generic provider-key --from-file=node.key=./p/node.key`, and set key.existingSecret=provider-key" }}
{{- end }}
{{- if not .Values.queens }}
{{- fail "queens is required: the HOST:PORT of at least one queen to dial, e.g. --set queens={queen-0.queens.blendr:7470}" }}
{{- end }}
{{- range $q := append .Values.queens .Values.ray.address | compact }}
{{- $port := regexFind "[0-9]+$" $q | int }}
{{- if or (lt $port 1) (gt $port 65535) }}
{{- fail (printf "%s: the port must be in 1..65535" $q) }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.health.port)) }}
{{- fail (printf "metrics.port and health.port must differ (both %d)" (int .Values.health.port)) }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- if and .Values.tls.caSecret .Values.tls.caConfigMap }}
{{- fail "tls: set tls.caSecret or tls.caConfigMap, not both" }}
{{- end }}
{{- if not (or .Values.tls.caSecret .Values.tls.caConfigMap) }}
{{- fail "tls.enabled needs the queens' CA certificate: set tls.caSecret (or tls.caConfigMap) to an object holding it under tls.caKey (ca.crt), or tls.enabled=false for a plaintext devnet" }}
{{- end }}
{{- end }}
{{- if and .Values.ray.dashboard (not .Values.ray.address) }}
{{- fail "ray.dashboard is for a cluster given by ray.address; the agent's own Ray head has its own dashboard" }}
{{- end }}
{{- $_ := include "blendr-provider.deploymentSource" . }}
{{- end }}

{{/*
config.toml as a dict of sections: what the values say, then .Values.config merged over it.
*/}}
{{- define "blendr-provider.configData" -}}
{{- $v := .Values }}
{{- $rpc := dict "tls" $v.tls.enabled "health_listen" (printf "0.0.0.0:%d" (int $v.health.port)) }}
{{- if $v.tls.enabled }}
{{- $_ := set $rpc "ca_file" (printf "/etc/blendr/tls/%s" $v.tls.caKey) }}
{{- end }}
{{- $metrics := dict "host" "0.0.0.0" "port" (ternary (int $v.metrics.port) -1 $v.metrics.enabled) }}
{{- $p := $v.provider }}
{{- $provider := dict "queens" $v.queens "ask_per_gpu_hour" (toString $p.askPerGpuHour) "sandbox" $p.sandbox "job_network" $p.jobNetwork "job_memory_gb" $p.jobMemoryGb "job_cpus" $p.jobCpus "job_pids" (int $p.jobPids) }}
{{- if $v.ray.address }}
{{- $_ := set $provider "ray_address" $v.ray.address }}
{{- end }}
{{- if $v.ray.dashboard }}
{{- $_ := set $provider "ray_dashboard" $v.ray.dashboard }}
{{- end }}
{{- $res := include "blendr-provider.rayResource" . }}
{{- if $res }}
{{- $_ := set $provider "ray_resource" $res }}
{{- end }}
{{- $cfg := dict "rpc" $rpc "metrics" $metrics "log" (dict "level" $v.log.level "format" $v.log.format) "provider" $provider }}
{{- $chain := dict }}
{{- if include "blendr-provider.deploymentSource" . }}
{{- $_ := set $chain "deployment" "/etc/blendr/deployment.json" }}
{{- end }}
{{- with $v.chain.ethRpcUrl }}{{ $_ := set $chain "eth_rpc_url" . }}{{ end }}
{{- with $v.chain.etcRpcUrl }}{{ $_ := set $chain "etc_rpc_url" . }}{{ end }}
{{- if ge (int $v.chain.ethConfirmations) 0 }}{{ $_ := set $chain "eth_confirmations" (int $v.chain.ethConfirmations) }}{{ end }}
{{- if ge (int $v.chain.etcConfirmations) 0 }}{{ $_ := set $chain "etc_confirmations" (int $v.chain.etcConfirmations) }}{{ end }}
{{- if $chain }}
{{- $_ := set $cfg "chain" $chain }}
{{- end }}
{{- toJson (mustMergeOverwrite $cfg (deepCopy $v.config)) }}
{{- end }}

{{/* config.toml text: one [section] per key, `key = value` with values as JSON (valid TOML for strings,
numbers, booleans and lists). */}}
{{- define "blendr-provider.configToml" -}}
{{- $cfg := include "blendr-provider.configData" . | fromJson -}}
# Rendered by the blendr-provider chart from its values (config: merged last). See docs/configuration.md.
{{- range $section := keys $cfg | sortAlpha }}
{{- $values := get $cfg $section }}

[{{ $section }}]
{{- range $key := keys $values | sortAlpha }}
{{ $key }} = {{ get $values $key | toJson }}
{{- end }}
{{- end }}
{{ end }}
