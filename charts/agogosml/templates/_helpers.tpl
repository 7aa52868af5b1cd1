{{/*
Names and labels, as `helm create` writes them.
*/}}
{{- define "agogosml.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agogosml.fullname" -}}
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

{{- define "agogosml.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agogosml.labels" -}}
helm.sh/chart: {{ include "agogosml.chart" . }}
{{ include "agogosml.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agogosml
{{- end }}

{{- define "agogosml.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agogosml.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Pod template labels: stable ones only. The chart's and app's versions stay off pods, so a
new chart version (CI packages one per commit) does not restart the production slot.
*/}}
{{- define "agogosml.podLabels" -}}
{{ include "agogosml.selectorLabels" . }}
app.kubernetes.io/part-of: agogosml
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
`<fullname>-<suffix>` within 63 characters: the fullname is shortened, never the suffix,
so the names of a long release stay distinct. Call with (list $ "suffix").
*/}}
{{- define "agogosml.componentName" -}}
{{- $suffix := index . 1 }}
{{- $fullname := include "agogosml.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $fullname $suffix }}
{{- end }}

{{/*
The retraining CronJob's name, `<fullname>-retrain` within 52 characters: the Jobs it
creates add 11 characters to it and must fit in 63.
*/}}
{{- define "agogosml.retrainName" -}}
{{- $fullname := include "agogosml.fullname" . | trunc 44 | trimSuffix "-" }}
{{- printf "%s-retrain" $fullname }}
{{- end }}

{{- define "agogosml.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agogosml.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Blue/green: the slot that is not production, and the in-cluster URLs.
*/}}
{{- define "agogosml.previewSlot" -}}
{{- if eq .Values.productionSlot "blue" }}green{{ else }}blue{{ end }}
{{- end }}

{{- define "agogosml.appUrl" -}}
http://{{ include "agogosml.componentName" (list . "app") }}:{{ .Values.app.service.port }}
{{- end }}

{{- define "agogosml.previewUrl" -}}
http://{{ include "agogosml.componentName" (list . "app-preview") }}:{{ .Values.app.service.port }}
{{- end }}

{{- define "agogosml.writerUrl" -}}
http://{{ include "agogosml.componentName" (list . "output-writer") }}:{{ include "agogosml.port" "output-writer" }}
{{- end }}

{{- define "agogosml.shadowWriterUrl" -}}
http://{{ include "agogosml.componentName" (list . "output-writer-shadow") }}:{{ include "agogosml.port" "output-writer" }}
{{- end }}

{{/*
The three services, by the name their component label and container carry: the port each
listens on (its container port named http; reader and writer Services too) and its
settings' env prefix. The chart's one copy of agogosml/services/registry.py, which
tests/packaging/test_registry.py holds to it.
*/}}
{{- define "agogosml.services" -}}
input-reader: {port: 8002, envPrefix: AGOGOSML_READER_}
app: {port: 8000, envPrefix: AGOGOSML_APP_}
output-writer: {port: 8001, envPrefix: AGOGOSML_WRITER_}
{{- end }}

{{/* One service's entry of agogosml.services, as a dict: (include ... "app" | fromYaml). */}}
{{- define "agogosml.serviceEntry" -}}
{{- $services := include "agogosml.services" . | fromYaml }}
{{- toYaml (required (printf "no service %s; the services are %s" . (keys $services | sortAlpha | join ", ")) (get $services .)) }}
{{- end }}

{{/* The port a service listens on: (include "agogosml.port" "app") is 8000. */}}
{{- define "agogosml.port" -}}
{{- (include "agogosml.serviceEntry" . | fromYaml).port | int }}
{{- end }}

{{/*
The selector of one component's pods (of one slot's, with "slot"): what its Deployment,
Service and PodDisruptionBudget match. (dict "root" $ "component" "app" "slot" "blue")
*/}}
{{- define "agogosml.componentSelector" -}}
{{ include "agogosml.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .slot }}
agogosml.io/slot: {{ . }}
{{- end }}
{{- end }}

{{/* The labels of one component's objects (of one slot's, with "slot"). Same call as above. */}}
{{- define "agogosml.componentLabels" -}}
{{ include "agogosml.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .slot }}
agogosml.io/slot: {{ . }}
{{- end }}
{{- end }}

{{/*
A ClusterIP Service selecting one component's pods (one slot's, with "slot") on their port
named http. (dict "root" $ "name" .. "component" .. "slot" <or ""> "port" <Service port>
"labels" <dict of labels besides the component's> "annotations" <dict>). The
ServiceMonitor scrapes the Services labelled agogosml.io/scrape: "true".
*/}}
{{- define "agogosml.serviceObject" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels:
    {{- include "agogosml.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
    {{- with .labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: ClusterIP
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
      protocol: TCP
  selector:
    {{- include "agogosml.componentSelector" . | nindent 4 }}
{{- end }}

{{/*
The PodDisruptionBudget of one component's pods (one slot's, with "slot"); render it
while podDisruptionBudget.enabled. (dict "root" $ "name" .. "component" .. "slot" <or "">)
*/}}
{{- define "agogosml.pdbObject" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "agogosml.componentLabels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .root.Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "agogosml.componentSelector" . | nindent 6 }}
{{- end }}

{{/*
An image reference `registry/repository:tag`. There is no default tag: a missing tag or
`latest` stops rendering. Call with (dict "root" $ "image" <image values> "path" "app.slots.blue.image"
"fallbackTag" <tag or ""> "fallbackPath" <where that tag is set, e.g. "image.tag">).
*/}}
{{- define "agogosml.image" -}}
{{- $root := .root }}
{{- $image := .image | default dict }}
{{- $registry := $image.registry | default $root.Values.image.registry }}
{{- $repository := required (printf "%s.repository is required" .path) $image.repository }}
{{- $what := printf "%s.tag" .path }}
{{- if .fallbackTag | or .fallbackPath }}
{{- $what = printf "%s (or %s.tag)" (.fallbackPath | default "image.tag") .path }}
{{- end }}
{{- $tag := toString (required (printf "%s is required: an immutable version such as 0.1.0-<git sha> (no default, never latest)" $what) ($image.tag | default .fallbackTag)) }}
{{- if eq $tag "latest" }}
{{- fail (printf "%s.tag is latest: use an immutable version such as 0.1.0-<git sha>" .path) }}
{{- end }}
{{- if $registry }}{{ printf "%s/%s:%s" $registry $repository $tag }}{{ else }}{{ printf "%s:%s" $repository $tag }}{{ end }}
{{- end }}

{{/*
Secrets: values given inline go into the chart's Secret (<fullname>); an existing Secret
named in values replaces them. Env entries reference either through secretKeyRef.
*/}}
{{- define "agogosml.kafkaUsesEventhubs" -}}
{{- if or .Values.kafka.eventhubsEndpoint .Values.kafka.eventhubsConnectionString }}true{{ end }}
{{- end }}

{{- define "agogosml.kafkaUsesSasl" -}}
{{- if and (not (include "agogosml.kafkaUsesEventhubs" .)) (hasPrefix "SASL" .Values.kafka.securityProtocol) }}true{{ end }}
{{- end }}

{{/*
The chart Secret's values, plain (not base64), computed once per render and kept in
.Values.__agogosmlChartSecret, so that the Secret and every pod's checksum see the same
generated values. Inline connection secrets that a setting uses; the auth tokens unless
auth.existingSecret (a value given, else the one already in the Secret, else a new random
one); and, when there is anything at all, the checksum salt. Call with $, then read
(index .Values "__agogosmlChartSecret").
*/}}
{{- define "agogosml.chartSecret" -}}
{{- if not (hasKey .Values "__agogosmlChartSecret") }}
{{- $k := .Values.kafka }}
{{- $e := .Values.eventhubs }}
{{- $a := .Values.auth }}
{{- $stored := dict }}
{{- with lookup "v1" "Secret" .Release.Namespace (include "agogosml.fullname" .) }}
{{- $stored = .data | default dict }}
{{- end }}
{{- $data := dict }}
{{- if eq .Values.transport "kafka" }}
{{- if and (include "agogosml.kafkaUsesSasl" .) $k.sasl.password (not $k.existingSecret) }}
{{- $_ := set $data "kafka-sasl-password" $k.sasl.password }}
{{- end }}
{{- if and (include "agogosml.kafkaUsesEventhubs" .) $k.eventhubsConnectionString (not $k.existingSecret) }}
{{- $_ := set $data "kafka-eventhubs-connection-string" $k.eventhubsConnectionString }}
{{- end }}
{{- end }}
{{- if and (eq .Values.transport "eventhubs") (not $e.existingSecret) }}
{{- with $e.connectionString }}
{{- $_ := set $data "eventhubs-connection-string" . }}
{{- end }}
{{- with $e.checkpointBlobConnectionString }}
{{- $_ := set $data "eventhubs-checkpoint-blob-connection-string" . }}
{{- end }}
{{- end }}
{{- if not $a.existingSecret }}
{{- $_ := set $data "pipeline-token" ($a.pipelineToken | default (get $stored "pipeline-token" | b64dec) | default (randAlphaNum 48)) }}
{{- with $a.pipelineTokenSecondary }}
{{- $_ := set $data "pipeline-token-secondary" . }}
{{- end }}
{{- if $a.apiKey.enabled }}
{{- $_ := set $data "api-key" ($a.apiKey.value | default (get $stored "api-key" | b64dec) | default (randAlphaNum 48)) }}
{{- with $a.apiKey.secondary }}
{{- $_ := set $data "api-key-secondary" . }}
{{- end }}
{{- end }}
{{- end }}
{{- if $data }}
{{- $_ := set $data "checksum-salt" (.Values.secretChecksumSalt | default (get $stored "checksum-salt" | b64dec) | default (randAlphaNum 32)) }}
{{- end }}
{{- $_ := set .Values "__agogosmlChartSecret" $data }}
{{- end }}
{{- end }}

{{/* The Secret holding the auth tokens: auth.existingSecret or the chart's. */}}
{{- define "agogosml.authSecret" -}}
{{- .Values.auth.existingSecret | default (include "agogosml.fullname" .) }}
{{- end }}

{{/*
The auth env entries of one service, read from the auth Secret. (dict "root" $ "prefix"
"AGOGOSML_APP_" "receives" true "apiKey" true): the pipeline token always; its secondary
where the service receives pipeline batches; the API keys on the app. Secondary keys are
optional: absent from the Secret, the variable is unset. Returns EnvVars as agogosml.env.
*/}}
{{- define "agogosml.authEnv" -}}
{{- $root := .root }}
{{- $secret := include "agogosml.authSecret" $root }}
{{- $entries := list (list "PIPELINE_TOKEN" (dict "secret" $secret "key" "pipeline-token")) }}
{{- if .receives }}
{{- $entries = append $entries (list "PIPELINE_TOKEN_SECONDARY" (dict "secret" $secret "key" "pipeline-token-secondary" "optional" true)) }}
{{- end }}
{{- if and .apiKey $root.Values.auth.apiKey.enabled }}
{{- $entries = append $entries (list "API_KEY" (dict "secret" $secret "key" "api-key")) }}
{{- $entries = append $entries (list "API_KEY_SECONDARY" (dict "secret" $secret "key" "api-key-secondary" "optional" true)) }}
{{- end }}
{{- include "agogosml.env" (dict "prefix" .prefix "entries" $entries) }}
{{- end }}

{{/* The chart Secret keys each service reads (those the Secret holds count). */}}
{{- define "agogosml.secretKeys" -}}
{{- $transport := list "kafka-sasl-password" "kafka-eventhubs-connection-string" "eventhubs-connection-string" }}
{{- $keys := dict
  "input-reader" (concat $transport (list "eventhubs-checkpoint-blob-connection-string" "pipeline-token"))
  "output-writer" (concat $transport (list "pipeline-token" "pipeline-token-secondary"))
  "app" (list "pipeline-token" "pipeline-token-secondary" "api-key" "api-key-secondary") }}
{{- get $keys . | join "," }}
{{- end }}

{{/*
NetworkPolicyPorts as a YAML list: a number is a TCP port, an object is taken as given.
*/}}
{{- define "agogosml.networkPolicyPorts" -}}
{{- range . }}
{{- if kindIs "map" . }}
- {{ toYaml . | nindent 2 | trim }}
{{- else }}
- port: {{ int . }}
  protocol: TCP
{{- end }}
{{- end }}
{{- end }}

{{/*
Env lists are built one way. An entry is (list NAME VALUE): VALUE is a plain value (it
becomes a string) or (dict "secret" <Secret> "key" <key> ["optional" true]) for a
secretKeyRef. agogosml.env turns entries into a YAML list of Kubernetes EnvVars, with
"prefix" before every name; the helpers below return theirs the same way, templates join
them with `include ... | fromYamlArray` and `concat`, and the containers render the list
(and the component's extraEnv) with toYaml. (dict "prefix" "AGOGOSML_READER_" "entries" (list ...))
*/}}
{{- define "agogosml.env" -}}
{{- $env := list }}
{{- range .entries }}
{{- $name := print ($.prefix | default "") (index . 0) }}
{{- $value := index . 1 }}
{{- if kindIs "map" $value }}
{{- $ref := dict "name" $value.secret "key" $value.key }}
{{- if $value.optional }}
{{- $_ := set $ref "optional" true }}
{{- end }}
{{- $env = append $env (dict "name" $name "valueFrom" (dict "secretKeyRef" $ref)) }}
{{- else }}
{{- $env = append $env (dict "name" $name "value" (toString $value)) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
The env of one service's container, in this order: where it listens and how much it logs,
its own entries, its stream (with "transport"), its auth; names carry the service's env
prefix (agogosml.services). Returns EnvVars as agogosml.env. (dict "root" $ "service"
"input-reader" "entries" (list ...) "transport" (dict "checkpoints" true) "auth" (dict
"receives" true "apiKey" false))
*/}}
{{- define "agogosml.serviceEnv" -}}
{{- $root := .root }}
{{- $service := include "agogosml.serviceEntry" .service | fromYaml }}
{{- $p := $service.envPrefix }}
{{- $common := list
  (list (print $p "HOST") "0.0.0.0")
  (list (print $p "PORT") ($service.port | int))
  (list (print $p "LOG_LEVEL") $root.Values.logLevel)
  (list (print $p "SHUTDOWN_TIMEOUT_S") $root.Values.shutdownTimeoutS)
  (list "HOME" "/tmp") }}
{{- $env := include "agogosml.env" (dict "entries" $common) | fromYamlArray }}
{{- $env = concat $env (include "agogosml.env" (dict "prefix" $p "entries" .entries) | fromYamlArray) }}
{{- with .transport }}
{{- $env = concat $env (include "agogosml.transportEnv" (dict "root" $root "prefix" $p "checkpoints" .checkpoints) | fromYamlArray) }}
{{- end }}
{{- $env = concat $env (include "agogosml.authEnv" (merge (dict "root" $root "prefix" $p) (.auth | default dict)) | fromYamlArray) }}
{{- toYaml $env }}
{{- end }}

{{/*
How the reader or a writer reaches its stream. (dict "root" $ "prefix" "AGOGOSML_READER_"
"checkpoints" true). Returns EnvVars as agogosml.env.
*/}}
{{- define "agogosml.transportEnv" -}}
{{- $root := .root }}
{{- $k := $root.Values.kafka }}
{{- $e := $root.Values.eventhubs }}
{{- $chartSecret := include "agogosml.fullname" $root }}
{{- $kafkaSecret := $k.existingSecret | default $chartSecret }}
{{- $eventhubsSecret := $e.existingSecret | default $chartSecret }}
{{- $entries := list }}
{{- if eq $root.Values.transport "kafka" }}
{{- if include "agogosml.kafkaUsesEventhubs" $root }}
{{- $entries = append $entries (list "KAFKA_EVENTHUBS_CONNECTION_STRING" (dict "secret" $kafkaSecret "key" (ternary $k.existingSecretKeys.eventhubsConnectionString "kafka-eventhubs-connection-string" (not (empty $k.existingSecret))))) }}
{{- else }}
{{- $entries = append $entries (list "KAFKA_BOOTSTRAP_SERVERS" $k.bootstrapServers) }}
{{- $entries = append $entries (list "KAFKA_SECURITY_PROTOCOL" $k.securityProtocol) }}
{{- if include "agogosml.kafkaUsesSasl" $root }}
{{- $entries = append $entries (list "KAFKA_SASL_MECHANISM" $k.sasl.mechanism) }}
{{- $entries = append $entries (list "KAFKA_SASL_USERNAME" $k.sasl.username) }}
{{- $entries = append $entries (list "KAFKA_SASL_PASSWORD" (dict "secret" $kafkaSecret "key" (ternary $k.existingSecretKeys.saslPassword "kafka-sasl-password" (not (empty $k.existingSecret))))) }}
{{- end }}
{{- end }}
{{- else }}
{{- $entries = append $entries (list "EVENTHUBS_CONNECTION_STRING" (dict "secret" $eventhubsSecret "key" (ternary $e.existingSecretKeys.connectionString "eventhubs-connection-string" (not (empty $e.existingSecret))))) }}
{{- if and .checkpoints (or $e.existingSecret $e.checkpointBlobConnectionString) }}
{{- $entries = append $entries (list "EVENTHUBS_CHECKPOINT_BLOB_CONNECTION_STRING" (dict "secret" $eventhubsSecret "key" (ternary $e.existingSecretKeys.checkpointBlobConnectionString "eventhubs-checkpoint-blob-connection-string" (not (empty $e.existingSecret))))) }}
{{- end }}
{{- $entries = append $entries (list "EVENTHUBS_CHECKPOINT_CONTAINER" $e.checkpointContainer) }}
{{- end }}
{{- include "agogosml.env" (dict "prefix" .prefix "entries" $entries) }}
{{- end }}

{{/*
Pod metadata annotations: Prometheus scraping and checksums that roll pods when the
Secret they read or the reader's schema changes. (dict "root" $ "service" "app" "extra"
dict)

checksum/secret is sha256 over the chart Secret's salt and the keys the service reads
(key=value lines): it changes when one of them does, and without the salt, which pods
cannot read, it tells nothing about them. Keys from an existing Secret are not covered.
*/}}
{{- define "agogosml.podAnnotations" -}}
{{- $root := .root }}
{{- if $root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "agogosml.port" .service | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- if .service }}
{{- include "agogosml.chartSecret" $root }}
{{- $data := index $root.Values "__agogosmlChartSecret" }}
{{- $read := list }}
{{- range $key := splitList "," (include "agogosml.secretKeys" .service) | sortAlpha }}
{{- if hasKey $data $key }}
{{- $read = append $read (printf "%s=%s" $key (get $data $key)) }}
{{- end }}
{{- end }}
{{- if $read }}
checksum/secret: {{ printf "%s\n%s" (get $data "checksum-salt") (join "\n" $read) | sha256sum }}
{{- end }}
{{- end }}
{{- range $key, $value := .extra }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- with $root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The pod spec around one service container: hardened security context, service account
without an API token, emptyDirs for /tmp and /data (the images' working directory) under
a read-only root filesystem, scheduling. (dict "root" $ "container" <yaml>
"volumes" <yaml or "">)
*/}}
{{- define "agogosml.podSpec" -}}
{{- $root := .root }}
serviceAccountName: {{ include "agogosml.serviceAccountName" $root }}
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  {{- .container | trim | nindent 2 }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $root.Values.tmpSizeLimit }}
  - name: data
    emptyDir:
      sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- with .volumes }}
  {{- . | trim | nindent 2 }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
One service's container, named after the service: the port named http (the service's,
agogosml.services), probes on it, the hardened security context, /tmp mounted.
(dict "root" $ "service" "app" "image" .. "env" <list of EnvVars, see
agogosml.serviceEnv> "values" <the component's values> "mounts" <yaml or "">)
*/}}
{{- define "agogosml.container" -}}
{{- $root := .root }}
{{- $probes := $root.Values.probes }}
- name: {{ .service }}
  image: {{ .image }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  ports:
    - name: http
      containerPort: {{ include "agogosml.port" .service }}
      protocol: TCP
  env:
    {{- toYaml (concat .env (.values.extraEnv | default list)) | nindent 4 }}
  {{- with .values.extraEnvFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  startupProbe:
    httpGet: {path: {{ $probes.startup.path }}, port: http}
    periodSeconds: {{ $probes.startup.periodSeconds }}
    timeoutSeconds: {{ $probes.startup.timeoutSeconds }}
    failureThreshold: {{ $probes.startup.failureThreshold }}
  livenessProbe:
    httpGet: {path: {{ $probes.liveness.path }}, port: http}
    periodSeconds: {{ $probes.liveness.periodSeconds }}
    timeoutSeconds: {{ $probes.liveness.timeoutSeconds }}
    failureThreshold: {{ $probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet: {path: {{ $probes.readiness.path }}, port: http}
    periodSeconds: {{ $probes.readiness.periodSeconds }}
    timeoutSeconds: {{ $probes.readiness.timeoutSeconds }}
    failureThreshold: {{ $probes.readiness.failureThreshold }}
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: data
      mountPath: /data
  {{- with .mounts }}
    {{- . | trim | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The retraining Job's container: `agogosml retrain --trigger schedule ...`, no ports and
no probes, the hardened security context, /tmp and /data mounted. (dict "root" $ "image"
.. "dataset" .. "trackingUri" .. "mounts" <yaml or "">)
*/}}
{{- define "agogosml.retrainContainer" -}}
{{- $root := .root }}
{{- $r := $root.Values.retraining }}
- name: retrain
  image: {{ .image }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command: [agogosml, retrain]
  args:
    - --trigger
    - schedule
    - --dataset
    - {{ .dataset | quote }}
    - --tracking-uri
    - {{ .trackingUri | quote }}
    - --model-name
    - {{ $r.modelName | quote }}
    {{- range $r.extraArgs }}
    - {{ toString . | quote }}
    {{- end }}
  env:
    {{- $env := include "agogosml.env" (dict "entries" (list (list "HOME" "/tmp"))) | fromYamlArray }}
    {{- toYaml (concat $env ($r.extraEnv | default list)) | nindent 4 }}
  {{- with $r.extraEnvFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml $r.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: data
      mountPath: /data
  {{- with .mounts }}
    {{- . | trim | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
"true" for a models:/ URI that is not a pinned version: an @alias, latest or a stage.
*/}}
{{- define "agogosml.movingModelUri" -}}
{{- if and (hasPrefix "models:/" (toString .)) (not (regexMatch "^models:/[^/@]+/[0-9]+$" (toString .))) }}true{{ end }}
{{- end }}

{{/*
Refuse values that would render a broken or unsafe release, with the reason.
*/}}
{{- define "agogosml.validate" -}}
{{- $v := .Values }}
{{- $production := $v.productionSlot }}
{{- $preview := include "agogosml.previewSlot" . }}
{{- if not (index $v.app.slots $production).enabled }}
{{- fail (printf "productionSlot is %s but app.slots.%s.enabled is false: the production Service would select no pods" $production $production) }}
{{- end }}
{{- range $slot, $values := $v.app.slots }}
{{- if and (include "agogosml.movingModelUri" $values.modelUri) (ne $values.followAlias true) }}
{{- fail (printf "app.slots.%s.modelUri %s is a moving reference: pin a version (models:/<name>/<version>; `agogosml rollout deploy --model-uri` resolves an alias for you), or set app.slots.%s.followAlias=true to let the registry change what this slot serves without the rollout gate" $slot $values.modelUri $slot) }}
{{- end }}
{{- end }}
{{- if and $v.inputReader.shadow.enabled (not (index $v.app.slots $preview).enabled) }}
{{- fail (printf "inputReader.shadow.enabled mirrors traffic to the preview slot, but app.slots.%s.enabled is false" $preview) }}
{{- end }}
{{- $k := $v.kafka }}
{{- if eq $v.transport "kafka" }}
{{- if and $k.existingSecret (or $k.sasl.password $k.eventhubsConnectionString) }}
{{- fail "set either kafka.existingSecret or kafka.sasl.password / kafka.eventhubsConnectionString, not both" }}
{{- end }}
{{- if include "agogosml.kafkaUsesEventhubs" . }}
{{- if not (or $k.eventhubsConnectionString $k.existingSecret) }}
{{- fail "kafka.eventhubsEndpoint needs kafka.eventhubsConnectionString or kafka.existingSecret" }}
{{- end }}
{{- else if include "agogosml.kafkaUsesSasl" . }}
{{- if not (and $k.sasl.mechanism $k.sasl.username) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism and kafka.sasl.username" $k.securityProtocol) }}
{{- end }}
{{- if not (or $k.sasl.password $k.existingSecret) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.password or kafka.existingSecret" $k.securityProtocol) }}
{{- end }}
{{- else if $k.sasl.mechanism }}
{{- fail (printf "kafka.sasl.mechanism is set but kafka.securityProtocol is %s: use SASL_SSL or SASL_PLAINTEXT" $k.securityProtocol) }}
{{- end }}
{{- else }}
{{- $e := $v.eventhubs }}
{{- if and $e.existingSecret (or $e.connectionString $e.checkpointBlobConnectionString) }}
{{- fail "set either eventhubs.existingSecret or eventhubs.connectionString / checkpointBlobConnectionString, not both" }}
{{- end }}
{{- if not (or $e.connectionString $e.existingSecret) }}
{{- fail "transport eventhubs needs eventhubs.connectionString or eventhubs.existingSecret" }}
{{- end }}
{{- end }}
{{- end }}
