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
How the reader, a writer or the monitor reaches its stream. (dict "root" $ "prefix" "AGOGOSML_READER_"
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
The auth env entries of one service, read from the auth Secret. (dict "root" $ "prefix"
"AGOGOSML_APP_" "receives" true "apiKey" true): the pipeline token on the pipeline
services; its secondary where the service receives pipeline batches; the API keys on the
app. With "monitor" true instead: the monitor's API token and its secondary, and the
retrain token it sends while the retrain server is on. Secondary keys are optional:
absent from the Secret, the variable is unset. Returns EnvVars as agogosml.env.
*/}}
{{- define "agogosml.authEnv" -}}
{{- $root := .root }}
{{- $secret := include "agogosml.authSecret" $root }}
{{- $entries := list }}
{{- if .monitor }}
{{- $entries = append $entries (list "API_TOKEN" (dict "secret" $secret "key" "monitor-api-token")) }}
{{- $entries = append $entries (list "API_TOKEN_SECONDARY" (dict "secret" $secret "key" "monitor-api-token-secondary" "optional" true)) }}
{{- if $root.Values.retraining.server.enabled }}
{{- $entries = append $entries (list "RETRAIN_TOKEN" (dict "secret" $secret "key" "retrain-token")) }}
{{- end }}
{{- else }}
{{- $entries = append $entries (list "PIPELINE_TOKEN" (dict "secret" $secret "key" "pipeline-token")) }}
{{- end }}
{{- if .receives }}
{{- $entries = append $entries (list "PIPELINE_TOKEN_SECONDARY" (dict "secret" $secret "key" "pipeline-token-secondary" "optional" true)) }}
{{- end }}
{{- if and .apiKey $root.Values.auth.apiKey.enabled }}
{{- $entries = append $entries (list "API_KEY" (dict "secret" $secret "key" "api-key")) }}
{{- $entries = append $entries (list "API_KEY_SECONDARY" (dict "secret" $secret "key" "api-key-secondary" "optional" true)) }}
{{- end }}
{{- include "agogosml.env" (dict "prefix" .prefix "entries" $entries) }}
{{- end }}
