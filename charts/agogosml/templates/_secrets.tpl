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
generated values. Inline connection secrets that a setting uses (the privacy store's URL
while privacy is on); the auth tokens unless auth.existingSecret (a value given, else the
one already in the Secret, else a new random one): the pipeline token and API key, the
monitor's API token while the monitor is on, the retrain token while the retrain server
is; and, when there is anything at all, the checksum salt. Call with $, then read
(index .Values "__agogosmlChartSecret"). The privacy keyrings have Secrets of their own
(agogosml.privacyKeys).
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
{{- $privacy := .Values.privacy }}
{{- if and $privacy.enabled $privacy.store.url (not $privacy.store.existingSecret) }}
{{- $_ := set $data "privacy-store-url" $privacy.store.url }}
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
{{- if .Values.monitor.enabled }}
{{- $_ := set $data "monitor-api-token" ($a.monitorApiToken | default (get $stored "monitor-api-token" | b64dec) | default (randAlphaNum 48)) }}
{{- with $a.monitorApiTokenSecondary }}
{{- $_ := set $data "monitor-api-token-secondary" . }}
{{- end }}
{{- end }}
{{- if .Values.retraining.server.enabled }}
{{- $_ := set $data "retrain-token" ($a.retrainToken | default (get $stored "retrain-token" | b64dec) | default (randAlphaNum 48)) }}
{{- with $a.retrainTokenSecondary }}
{{- $_ := set $data "retrain-token-secondary" . }}
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

{{/* The chart Secret keys each service reads (those the Secret holds count). */}}
{{- define "agogosml.secretKeys" -}}
{{- $transport := list "kafka-sasl-password" "kafka-eventhubs-connection-string" "eventhubs-connection-string" }}
{{- $keys := dict
  "input-reader" (concat $transport (list "eventhubs-checkpoint-blob-connection-string" "pipeline-token" "privacy-store-url"))
  "output-writer" (concat $transport (list "pipeline-token" "pipeline-token-secondary"))
  "app" (list "pipeline-token" "pipeline-token-secondary" "api-key" "api-key-secondary")
  "monitor" (concat $transport (list "eventhubs-checkpoint-blob-connection-string" "monitor-api-token" "monitor-api-token-secondary" "retrain-token" "privacy-store-url"))
  "retrain-server" (list "retrain-token" "retrain-token-secondary") }}
{{- get $keys . | join "," }}
{{- end }}
