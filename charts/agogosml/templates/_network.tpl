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
