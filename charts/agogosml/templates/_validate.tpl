{{/* What values.schema.json cannot check alone, refused while rendering, with the reason. */}}

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
{{- include "agogosml.validatePrivacy" . }}
{{- include "agogosml.validateKeda" . }}
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
