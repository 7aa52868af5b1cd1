{{/* The pods: image references, annotations, the pod spec and the containers in it. */}}

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
Pod metadata annotations: Prometheus scraping (unless "noScrape") and checksums that roll
pods when the Secret they read or the reader's schema changes. (dict "root" $ "service"
"app" "extra" dict "noScrape" false); "service" names agogosml.secretKeys' entry.

checksum/secret is sha256 over the chart Secret's salt and the keys the service reads
(key=value lines): it changes when one of them does, and without the salt, which pods
cannot read, it tells nothing about them. Keys from an existing Secret are not covered.
*/}}
{{- define "agogosml.podAnnotations" -}}
{{- $root := .root }}
{{- if and $root.Values.metrics.podAnnotations (not .noScrape) }}
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
agogosml.services, unless "port"), probes on it, the hardened security context, /tmp
mounted. (dict "root" $ "service" "app" "image" .. "env" <list of EnvVars, see
agogosml.serviceEnv> "values" <the component's values> "mounts" <yaml or ""> and,
for a command other than the image's entrypoint, "command" and "args" lists)
*/}}
{{- define "agogosml.container" -}}
{{- $root := .root }}
{{- $probes := $root.Values.probes }}
- name: {{ .service }}
  image: {{ .image }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  {{- with .command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .args }}
  args:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: http
      containerPort: {{ if .port }}{{ .port }}{{ else }}{{ include "agogosml.port" .service }}{{ end }}
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
The retraining dataset, checked, and how it reaches the pod: the CronJob and the retrain
server share it. Returns YAML: {dataset, mounts, volumes} (mounts and volumes as YAML
text, empty without retraining.datasetVolume.existingClaim). (dict "root" $ "for" "what
needs it, for the messages")
*/}}
{{- define "agogosml.retrainDataset" -}}
{{- $r := .root.Values.retraining }}
{{- $dataset := required (printf "retraining.dataset is required while %s: the absolute path of the training data (CSV or JSON lines) inside the pod, e.g. /datasets/transactions.csv" .for) $r.dataset }}
{{- if not (isAbs $dataset) }}
{{- fail (printf "retraining.dataset %s is relative: give the absolute path inside the pod, e.g. /datasets/transactions.csv (the working directory /data is an empty scratch volume)" $dataset) }}
{{- end }}
{{- $volume := $r.datasetVolume | default dict }}
{{- $mounts := "" }}
{{- $volumes := "" }}
{{- if $volume.existingClaim }}
{{- $mountPath := $volume.mountPath | default (dir $dataset) | clean }}
{{- if has $mountPath (list "/" "/tmp" "/data") }}
{{- fail (printf "retraining.datasetVolume.mountPath is %s, which the pod needs for itself: mount the dataset's claim on a folder of its own, e.g. /datasets (and put retraining.dataset in it)" $mountPath) }}
{{- end }}
{{- if not (hasPrefix (printf "%s/" $mountPath) $dataset) }}
{{- fail (printf "retraining.dataset %s is not inside retraining.datasetVolume.mountPath %s, where the claim %s is mounted" $dataset $mountPath $volume.existingClaim) }}
{{- end }}
{{- $mounts = printf "- name: dataset\n  mountPath: %s\n  readOnly: true" ($mountPath | quote) }}
{{- $volumes = printf "- name: dataset\n  persistentVolumeClaim:\n    claimName: %s\n    readOnly: true" ($volume.existingClaim | quote) }}
{{- else if $volume.mountPath }}
{{- fail "retraining.datasetVolume.mountPath is set but retraining.datasetVolume.existingClaim is empty: name the PersistentVolumeClaim that holds the dataset" }}
{{- end }}
{{- toYaml (dict "dataset" $dataset "mounts" $mounts "volumes" $volumes) }}
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
