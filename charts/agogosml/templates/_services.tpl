{{/*
The four services, by the name their component label and container carry: the port each
listens on (its container port named http; reader, writer and monitor Services too) and
its settings' env prefix. The chart's one copy of agogosml/services/registry.py, which
tests/packaging/test_registry.py holds to it.
*/}}
{{- define "agogosml.services" -}}
input-reader: {port: 8002, envPrefix: AGOGOSML_READER_}
app: {port: 8000, envPrefix: AGOGOSML_APP_}
output-writer: {port: 8001, envPrefix: AGOGOSML_WRITER_}
monitor: {port: 8005, envPrefix: AGOGOSML_MONITOR_}
{{- end }}

{{/*
The retrain server (`agogosml retrain-server`, not a registered service: the app image's
CLI runs it): its port, and its settings' env prefix (agogosml.modelloop.http).
*/}}
{{- define "agogosml.retrainServerPort" -}}8080{{- end }}
{{- define "agogosml.retrainServerPrefix" -}}AGOGOSML_RETRAIN_{{- end }}

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

{{- define "agogosml.readerUrl" -}}
http://{{ include "agogosml.componentName" (list . "input-reader") }}:{{ include "agogosml.port" "input-reader" }}
{{- end }}

{{- define "agogosml.retrainServerUrl" -}}
http://{{ include "agogosml.componentName" (list . "retrain-server") }}:{{ include "agogosml.retrainServerPort" . }}
{{- end }}

{{- define "agogosml.shadowWriterUrl" -}}
http://{{ include "agogosml.componentName" (list . "output-writer-shadow") }}:{{ include "agogosml.port" "output-writer" }}
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
