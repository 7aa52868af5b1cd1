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
