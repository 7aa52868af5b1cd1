{{/*
KEDA (keda.yaml): which components it scales, what it may not be combined with, and the
pieces of its triggers.
*/}}

{{/*
Refuse KEDA settings that values.schema.json cannot compare or that depend on other
settings, with the reason. (HPA and KEDA on the app at once: the schema refuses it.)
*/}}
{{- define "agogosml.validateKeda" -}}
{{- $v := .Values }}
{{- $r := $v.inputReader.keda }}
{{- if $r.enabled }}
{{- if gt (int $r.maxReplicaCount) (int $r.partitions) }}
{{- fail (printf "inputReader.keda.maxReplicaCount %d is above inputReader.keda.partitions %d: one consumer group gives each partition to one reader, so readers beyond the partition count would sit idle; add partitions to %s first, or lower maxReplicaCount" (int $r.maxReplicaCount) (int $r.partitions) $v.inputReader.inputStream) }}
{{- end }}
{{- if and (eq $v.transport "kafka") (include "agogosml.kafkaUsesEventhubs" .) }}
{{- fail "inputReader.keda with kafka.eventhubsEndpoint is not supported: KEDA's kafka trigger needs the namespace's bootstrap address and the $ConnectionString user, which the chart does not know; use transport: eventhubs (KEDA's azure-eventhub trigger) or scale the reader with replicas" }}
{{- end }}
{{- if and (eq $v.transport "eventhubs") (not (or $v.eventhubs.existingSecret $v.eventhubs.checkpointBlobConnectionString)) }}
{{- fail "inputReader.keda with transport eventhubs needs the checkpoint store (eventhubs.checkpointBlobConnectionString or eventhubs.existingSecret): KEDA counts unprocessed events from the reader's checkpoints" }}
{{- end }}
{{- end }}
{{- range $path, $keda := dict "inputReader.keda" $r "app.keda" $v.app.keda "outputWriter.keda" $v.outputWriter.keda }}
{{- if and $keda.enabled (gt (int $keda.minReplicaCount) (int $keda.maxReplicaCount)) }}
{{- fail (printf "%s.minReplicaCount %d is above %s.maxReplicaCount %d" $path (int $keda.minReplicaCount) $path (int $keda.maxReplicaCount)) }}
{{- end }}
{{- end }}
{{- if and (or $v.app.keda.enabled $v.outputWriter.keda.enabled) (not $v.keda.prometheus.selector) (not $v.metrics.serviceMonitor.enabled) }}
{{- fail "app.keda and outputWriter.keda query Prometheus for series labelled by the chart's ServiceMonitor (agogosml_release, component, slot): set metrics.serviceMonitor.enabled=true, or keda.prometheus.selector to matchers that pick this release's series" }}
{{- end }}
{{- end }}

{{/* The PromQL label matchers of this release's series (as the PrometheusRule's). */}}
{{- define "agogosml.kedaSelector" -}}
{{- .Values.keda.prometheus.selector | default (printf "namespace=%q,agogosml_release=%q" .Release.Namespace .Release.Name) }}
{{- end }}

{{/*
The reader's trigger on the records waiting in its input stream, and the parameters of
its TriggerAuthentication: a list of secretTargetRef and env entries, empty when the
broker needs no credentials. Returns (dict "trigger" ... "secretTargetRef" ... "env" ...).
*/}}
{{- define "agogosml.kedaReaderTrigger" -}}
{{- $v := .Values }}
{{- $r := $v.inputReader }}
{{- $secrets := list }}
{{- $env := list }}
{{- $trigger := dict }}
{{- if eq $v.transport "kafka" }}
{{- $k := $v.kafka }}
{{- $metadata := dict
  "bootstrapServers" $k.bootstrapServers
  "consumerGroup" $r.consumerGroup
  "topic" $r.inputStream
  "lagThreshold" (toString (int $r.keda.lagThreshold))
  "activationLagThreshold" (toString (int $r.keda.activationLagThreshold))
  "offsetResetPolicy" "earliest"
  "tls" (ternary "enable" "disable" (has $k.securityProtocol (list "SSL" "SASL_SSL"))) }}
{{- if include "agogosml.kafkaUsesSasl" . }}
{{- $_ := set $metadata "sasl" (get (dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512") $k.sasl.mechanism) }}
{{- $secret := $k.existingSecret | default (include "agogosml.fullname" .) }}
{{- $key := ternary $k.existingSecretKeys.saslPassword "kafka-sasl-password" (not (empty $k.existingSecret)) }}
{{- $secrets = append $secrets (dict "parameter" "password" "name" $secret "key" $key) }}
{{- $env = append $env (dict "parameter" "username" "name" "AGOGOSML_READER_KAFKA_SASL_USERNAME" "containerName" "input-reader") }}
{{- end }}
{{- $trigger = dict "type" "kafka" "metadata" $metadata }}
{{- else }}
{{- $e := $v.eventhubs }}
{{- $secret := $e.existingSecret | default (include "agogosml.fullname" .) }}
{{- $secrets = append $secrets (dict "parameter" "connection" "name" $secret "key" (ternary $e.existingSecretKeys.connectionString "eventhubs-connection-string" (not (empty $e.existingSecret)))) }}
{{- $secrets = append $secrets (dict "parameter" "storageConnection" "name" $secret "key" (ternary $e.existingSecretKeys.checkpointBlobConnectionString "eventhubs-checkpoint-blob-connection-string" (not (empty $e.existingSecret)))) }}
{{- /* azure-eventhub-checkpointstoreblob keeps a partition's checkpoint in its blob's metadata */}}
{{- $trigger = dict "type" "azure-eventhub" "metadata" (dict
  "eventHubName" $r.inputStream
  "consumerGroup" $r.consumerGroup
  "blobContainer" $e.checkpointContainer
  "checkpointStrategy" "blobMetadata"
  "unprocessedEventThreshold" (toString (int $r.keda.lagThreshold))
  "activationUnprocessedEventThreshold" (toString (int $r.keda.activationLagThreshold))) }}
{{- end }}
{{- toYaml (dict "trigger" $trigger "secretTargetRef" $secrets "env" $env) }}
{{- end }}

{{/*
The Prometheus triggers of an app slot or a writer: its own events per second per
replica, and the reader's batches in flight, which wait while no pod of the target
answers and so wake it from zero. (dict "root" $ "keda" <its keda values> "series"
<matchers of its own series> "rate" <the counter of its events>)
*/}}
{{- define "agogosml.kedaPrometheusTriggers" -}}
{{- $root := .root }}
{{- $sel := include "agogosml.kedaSelector" $root }}
{{- $address := $root.Values.keda.prometheus.serverAddress }}
{{- $triggers := list (dict "type" "prometheus" "name" "events-per-second" "metadata" (dict
  "serverAddress" $address
  "query" (printf "sum(rate(%s{%s,%s}[2m]))" .rate $sel .series)
  "threshold" (toString (int .keda.eventsPerSecondPerReplica))
  "activationThreshold" "0")) }}
{{- $triggers = append $triggers (dict "type" "prometheus" "name" "reader-batches-in-flight" "metadata" (dict
  "serverAddress" $address
  "query" (printf "sum(agogosml_reader_batches_in_flight{%s,component=\"input-reader\"})" $sel)
  "threshold" (toString (int $root.Values.inputReader.maxInFlight))
  "activationThreshold" "0")) }}
{{- toYaml $triggers }}
{{- end }}

{{/* A ScaledObject on a Deployment of the same name. (dict "root" $ "component" <labels dict> "keda" <values> "triggers" <list>) */}}
{{- define "agogosml.scaledObject" -}}
{{- $root := .root }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ .component.name }}
  labels:
    {{- include "agogosml.componentLabels" .component | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .component.name }}
  minReplicaCount: {{ .keda.minReplicaCount }}
  maxReplicaCount: {{ .keda.maxReplicaCount }}
  pollingInterval: {{ $root.Values.keda.pollingInterval }}
  cooldownPeriod: {{ $root.Values.keda.cooldownPeriod }}
  triggers:
    {{- toYaml .triggers | nindent 4 }}
{{- end }}
