{{/* Names, labels, the rendered config.toml and the one pod template the King and the queens share. */}}

{{- define "blendr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "blendr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 53 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "blendr.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* dict "root" $ "component" "king" */}}
{{- define "blendr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "blendr.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "blendr.labels" -}}
helm.sh/chart: {{ include "blendr.chart" .root }}
{{ include "blendr.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: blendrchain
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "blendr.king.name" -}}{{ include "blendr.fullname" . }}-king{{- end -}}
{{- define "blendr.queen.name" -}}{{ include "blendr.fullname" . }}-queen{{- end -}}
{{- define "blendr.queen.headless" -}}{{ include "blendr.fullname" . }}-queens{{- end -}}
{{- define "blendr.king.host" -}}{{ include "blendr.king.name" . }}.{{ .Release.Namespace }}.svc{{- end -}}

{{- define "blendr.image" -}}
{{- $img := .Values.common.image -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}

{{- define "blendr.tlsSecret" -}}{{ default (printf "%s-tls" (include "blendr.fullname" .)) .Values.common.tls.existingSecret }}{{- end -}}
{{- define "blendr.deploymentConfigMap" -}}{{ default (printf "%s-deployment" (include "blendr.fullname" .)) .Values.common.chain.deploymentConfigMap }}{{- end -}}
{{- define "blendr.king.keySecret" -}}{{ default (printf "%s-king-key" (include "blendr.fullname" .)) .Values.king.key.existingSecret }}{{- end -}}
{{- define "blendr.queen.keySecret" -}}{{ default (printf "%s-queen-keys" (include "blendr.fullname" .)) .Values.queen.keys.existingSecret }}{{- end -}}

{{- define "blendr.queen.domain" -}}
{{- default (printf "%s.%s.svc.cluster.local" (include "blendr.queen.headless" .) .Release.Namespace) .Values.queen.advertiseDomain -}}
{{- end -}}

{{/* Refusals the schema cannot express (they involve several values). */}}
{{- define "blendr.validate" -}}
{{- if and (gt (int .Values.king.replicas) 1) (not .Values.store.postgres.existingSecret) -}}
{{- fail "king.replicas > 1 needs store.postgres.existingSecret: several Kings share one PostgreSQL and elect a leader in it (docs/kings.md); one King alone keeps SQLite on its volume" -}}
{{- end -}}
{{- if and (gt (int .Values.king.replicas) 1) (not .Values.king.outputs.existingClaim) -}}
{{- fail "king.replicas > 1 needs king.outputs.existingClaim: a ReadWriteMany claim every King mounts, or jobs' outputs on one King are lost to the others when the leader changes" -}}
{{- end -}}
{{- if and (gt (int .Values.king.replicas) 1) .Values.king.persistence.existingClaim -}}
{{- fail "king.persistence.existingClaim is a single King's home (a ReadWriteOnce volume); with king.replicas > 1 the Kings keep their state in PostgreSQL: unset it" -}}
{{- end -}}
{{- if and .Values.king.web.enabled (has (int .Values.king.web.port) (list (int .Values.king.service.port) (int .Values.common.healthPort) (int .Values.common.metrics.port))) -}}
{{- fail "king.web.port must differ from king.service.port, common.healthPort and common.metrics.port (the King listens on each)" -}}
{{- end -}}
{{- if and .Values.common.tls.certManager.enabled (not .Values.common.tls.certManager.issuerRef.name) -}}
{{- fail "common.tls.certManager.enabled needs common.tls.certManager.issuerRef.name (the Issuer or ClusterIssuer that signs the tier's certificate)" -}}
{{- end -}}
{{- end -}}

{{/* config.toml from {section: {key: value}}: sections and keys sorted, values as TOML (JSON scalars and arrays are). */}}
{{- define "blendr.toml" -}}
{{- range $section, $keys := . }}
[{{ $section }}]
{{- range $k, $v := $keys }}
{{ $k }} = {{ toJson $v }}
{{- end }}
{{ end -}}
{{- end -}}

{{/* The settings every node gets from the chart. */}}
{{- define "blendr.commonConfig" -}}
{{- $c := .Values.common -}}
{{- $chain := dict "deployment" (printf "/etc/blendr/deployment/%s" $c.chain.deploymentKey) -}}
{{- with $c.chain.ethRpcUrl }}{{ $_ := set $chain "eth_rpc_url" . }}{{ end -}}
{{- with $c.chain.etcRpcUrl }}{{ $_ := set $chain "etc_rpc_url" . }}{{ end -}}
{{- if ge (int $c.chain.ethConfirmations) 0 }}{{ $_ := set $chain "eth_confirmations" (int $c.chain.ethConfirmations) }}{{ end -}}
{{- if ge (int $c.chain.etcConfirmations) 0 }}{{ $_ := set $chain "etc_confirmations" (int $c.chain.etcConfirmations) }}{{ end -}}
{{- $rpc := dict "tls" true "cert_file" "/etc/blendr/tls/tls.crt" "key_file" "/etc/blendr/tls/tls.key" "ca_file" "/etc/blendr/tls/ca.crt" "health_listen" (printf "0.0.0.0:%d" (int $c.healthPort)) -}}
{{- $metrics := dict "host" "0.0.0.0" "port" (ternary (int $c.metrics.port) -1 $c.metrics.enabled) -}}
{{- $log := dict "level" $c.log.level "format" $c.log.format -}}
{{- toYaml (dict "chain" $chain "rpc" $rpc "metrics" $metrics "log" $log) -}}
{{- end -}}

{{/*
The pod template of a King or a queen. dict "root" $ "component" "king"|"queen" "role" .Values.king|queen
"args" list "env" list "volumes" list "mounts" list "keyFile" "path inside the key Secret (shell)" "ports" list.
*/}}
{{- define "blendr.podTemplate" -}}
{{- $root := .root -}}
{{- $c := $root.Values.common -}}
{{- $role := .role -}}
metadata:
  labels:
    {{- include "blendr.labels" (dict "root" $root "component" .component) | nindent 4 }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with (merge (dict) $role.podAnnotations $c.podAnnotations) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "blendr.fullname" $root }}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 30
  enableServiceLinks: false
  {{- with $c.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $c.podSecurityContext | nindent 4 }}
  initContainers:
    # The program refuses a key that group or others can read, and Kubernetes makes Secret files group-readable
    # under fsGroup: the key is copied into the node's home with mode 0600 at every start.
    - name: install-key
      image: {{ include "blendr.image" $root }}
      imagePullPolicy: {{ $c.image.pullPolicy }}
      command: ["/bin/sh", "-c", {{ printf "install -m 0600 %s /var/lib/blendr/node.key" .keyFile | quote }}]
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
      securityContext:
        {{- toYaml $c.securityContext | nindent 8 }}
      resources:
        requests: {cpu: 10m, memory: 16Mi}
        limits: {memory: 64Mi}
      volumeMounts:
        - {name: home, mountPath: /var/lib/blendr}
        - {name: key, mountPath: /etc/blendr/key, readOnly: true}
  containers:
    - name: {{ .component }}
      image: {{ include "blendr.image" $root }}
      imagePullPolicy: {{ $c.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: BLENDR_HOME
          value: /var/lib/blendr
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        {{- toYaml .ports | nindent 8 }}
        - {name: health, containerPort: {{ $c.healthPort }}, protocol: TCP}
        {{- if $c.metrics.enabled }}
        - {name: metrics, containerPort: {{ $c.metrics.port }}, protocol: TCP}
        {{- end }}
      startupProbe:
        grpc: {port: {{ $c.healthPort }}}
        periodSeconds: 5
        failureThreshold: 60
      livenessProbe:
        grpc: {port: {{ $c.healthPort }}}
        periodSeconds: 10
        timeoutSeconds: 5
        failureThreshold: 6
      readinessProbe:
        grpc: {port: {{ $c.healthPort }}}
        periodSeconds: 5
        timeoutSeconds: 5
        failureThreshold: 2
      securityContext:
        {{- toYaml $c.securityContext | nindent 8 }}
      resources:
        {{- toYaml $role.resources | nindent 8 }}
      volumeMounts:
        - {name: home, mountPath: /var/lib/blendr}
        - {name: config, mountPath: /etc/blendr/config, readOnly: true}
        - {name: tls, mountPath: /etc/blendr/tls, readOnly: true}
        - {name: deployment, mountPath: /etc/blendr/deployment, readOnly: true}
        - {name: tmp, mountPath: /tmp}
        {{- with .mounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "blendr.fullname" $root }}-config
        items:
          - {key: {{ .component }}.toml, path: config.toml}
    - name: tls
      secret:
        secretName: {{ include "blendr.tlsSecret" $root }}
        defaultMode: 0440
    - name: deployment
      configMap:
        name: {{ include "blendr.deploymentConfigMap" $root }}
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- with .volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with (default $c.nodeSelector $role.nodeSelector) }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (default $c.tolerations $role.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (default $c.affinity $role.affinity) }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
