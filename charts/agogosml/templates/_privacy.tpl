{{/*
Privacy (privacy.enabled, on by default): the reader's PII policy (a ConfigMap), the policy's
keyring and the subject keys' key-encryption keyring (KEK) (Secrets of yours, or generated
once and kept), and the privacy store the reader's subject keys and the monitor's GDPR
endpoints share. privacy.yaml renders the objects; the reader and the monitor mount them.
*/}}

{{/*
Where each file is mounted, one folder per volume (a volume cannot be mounted inside a
read-only one): (include "agogosml.privacyPath" "policy") is /etc/agogosml/privacy/policy/policy.yaml.
*/}}
{{- define "agogosml.privacyFiles" -}}
policy: {volume: privacy-policy, dir: /etc/agogosml/privacy/policy, file: policy.yaml}
keyring: {volume: privacy-keyring, dir: /etc/agogosml/privacy/keyring, file: keyring.yaml}
kek: {volume: privacy-kek, dir: /etc/agogosml/privacy/kek, file: kek.yaml}
{{- end }}

{{- define "agogosml.privacyPath" -}}
{{- $file := get (include "agogosml.privacyFiles" . | fromYaml) . }}
{{- printf "%s/%s" $file.dir $file.file }}
{{- end }}

{{/* The object names: (include "agogosml.privacyName" (list $ "keyring")). */}}
{{- define "agogosml.privacyName" -}}
{{- $root := index . 0 }}
{{- $what := index . 1 }}
{{- $values := get $root.Values.privacy $what | default dict }}
{{- if and (ne $what "policy") $values.existingSecret }}
{{- $values.existingSecret }}
{{- else }}
{{- include "agogosml.componentName" (list $root (printf "privacy-%s" $what)) }}
{{- end }}
{{- end }}

{{/*
The privacy store shared by the reader (its subject keys) and the monitor (lineage, the
forget journal, the subject keys it shreds), as an env value for agogosml.env: a YAML
(dict "secret" .. "key" ..), or empty without one. privacy.store.existingSecret; else
privacy.store.url (the chart's Secret, key privacy-store-url); else the monitor's database
(monitor.store.existingSecret), the same database. Without one the reader has no subject
keys (it encrypts under the keyring's period keys) and the monitor keeps its privacy store
in SQLite on its claim.
*/}}
{{- define "agogosml.privacyStore" -}}
{{- $s := .Values.privacy.store }}
{{- if $s.existingSecret }}
{{- toYaml (dict "secret" $s.existingSecret "key" $s.existingSecretKey) }}
{{- else if $s.url }}
{{- toYaml (dict "secret" (include "agogosml.fullname" .) "key" "privacy-store-url") }}
{{- else if .Values.monitor.store.existingSecret }}
{{- toYaml (dict "secret" .Values.monitor.store.existingSecret "key" .Values.monitor.store.existingSecretKey) }}
{{- end }}
{{- end }}

{{/* "true" when a pod mounts the KEK: the monitor, or the reader with a privacy store. */}}
{{- define "agogosml.privacyNeedsKek" -}}
{{- if or .Values.monitor.enabled (include "agogosml.privacyStore" .) }}true{{ end }}
{{- end }}

{{/*
The generated keyrings' text (keyring.yaml, kek.yaml), worked out once per render and kept
in .Values.__agogosmlPrivacyKeys ("keyring", "kek"; absent for one taken from an existing
Secret, and the KEK while no pod mounts it). A keyring already in the release's Secret is looked up and kept as it is: new
keys would change every pseudonym and leave whatever was encrypted unreadable. Otherwise a
new one (agogosml/privacy/keys.py's format, what `agogosml gdpr keygen` prints): 32 random
bytes per key, base64, this month's key id (UTC); the KEK holds no pseudonym key.
`helm template` cannot look anything up and draws new keys on every run. Call with $.
*/}}
{{- define "agogosml.privacyKeys" -}}
{{- if not (hasKey .Values "__agogosmlPrivacyKeys") }}
{{- $keys := dict }}
{{- $files := include "agogosml.privacyFiles" . | fromYaml }}
{{- $id := dateInZone "2006-01" now "UTC" }}
{{- $wanted := list "keyring" }}
{{- if include "agogosml.privacyNeedsKek" . }}
{{- $wanted = append $wanted "kek" }}
{{- end }}
{{- range $what := $wanted }}
{{- if not (get $.Values.privacy $what).existingSecret }}
{{- $file := (get $files $what).file }}
{{- $text := "" }}
{{- with lookup "v1" "Secret" $.Release.Namespace (include "agogosml.privacyName" (list $ $what)) }}
{{- $text = get (.data | default dict) $file | default "" | b64dec }}
{{- end }}
{{- if not $text }}
{{- $text = "# Made by the agogosml chart. Never replace these keys: pseudonyms and encrypted fields depend on them.\n" }}
{{- if eq $what "keyring" }}
{{- $text = printf "%spseudonym_key: %s\n" $text (randBytes 32) }}
{{- end }}
{{- $text = printf "%sencryption_keys:\n  %s: %s\ncurrent_key_id: %s\n" $text ($id | quote) (randBytes 32) ($id | quote) }}
{{- end }}
{{- $_ := set $keys $what $text }}
{{- end }}
{{- end }}
{{- $_ := set .Values "__agogosmlPrivacyKeys" $keys }}
{{- end }}
{{- end }}

{{/*
What one service gets of the privacy settings, as YAML: {env: [EnvVars], mounts: [...],
volumes: [...], checksum: <of the policy, or "">}. (dict "root" $ "service" "input-reader"),
or "monitor". Empty lists while privacy.enabled is false.

  input-reader  the policy and the keyring; with a privacy store, its subject keys (the
                store's URL from its Secret and the KEK)
  monitor       the GDPR endpoints over the privacy store (or SQLite on its claim at
                "sqliteDir"), the keyring and KEK, the training snapshots on the
                retraining data set's claim (mounted read-write: a forget rewrites them)
*/}}
{{- define "agogosml.privacyWiring" -}}
{{- $root := .root }}
{{- $p := $root.Values.privacy }}
{{- $files := include "agogosml.privacyFiles" $root | fromYaml }}
{{- $store := include "agogosml.privacyStore" $root | fromYaml }}
{{- $env := list }}
{{- $mounts := list }}
{{- $volumes := list }}
{{- $checksum := "" }}
{{- if $p.enabled }}
{{- $wanted := list "keyring" }}
{{- if eq .service "input-reader" }}
{{- $wanted = prepend $wanted "policy" }}
{{- $checksum = toYaml $p.policy | sha256sum }}
{{- $entries := list
  (list "PRIVACY_POLICY_PATH" (include "agogosml.privacyPath" "policy"))
  (list "PRIVACY_KEYRING_PATH" (include "agogosml.privacyPath" "keyring")) }}
{{- if $store }}
{{- $wanted = append $wanted "kek" }}
{{- $entries = append $entries (list "SUBJECT_KEYS_URL" $store) }}
{{- $entries = append $entries (list "SUBJECT_KEYS_KEK_PATH" (include "agogosml.privacyPath" "kek")) }}
{{- end }}
{{- $env = include "agogosml.env" (dict "prefix" "AGOGOSML_READER_" "entries" $entries) | fromYamlArray }}
{{- else }}
{{- $wanted = append $wanted "kek" }}
{{- $m := $root.Values.monitor }}
{{- $storeUrl := $store | default (printf "sqlite:///%s/privacy.db" .sqliteDir) }}
{{- $entries := list
  (list "STORE_URL" $storeUrl)
  (list "TRACKING_URI" ($m.mlflowTrackingUri | default $root.Values.app.mlflowTrackingUri))
  (list "KEYRING_PATH" (include "agogosml.privacyPath" "keyring"))
  (list "KEK_PATH" (include "agogosml.privacyPath" "kek"))
  (list "SNAPSHOTS" (toJson ($p.snapshots | default list)))
  (list "MODEL_NAME" ($p.modelName | default $root.Values.retraining.modelName))
  (list "SHARDS" ($p.shards | int)) }}
{{- with $root.Values.inputReader.subjectField }}
{{- $entries = append $entries (list "SUBJECT_COLUMN" .) }}
{{- end }}
{{- $env = include "agogosml.env" (dict "prefix" "AGOGOSML_MONITOR_" "entries" (list (list "GDPR_ENABLED" "true"))) | fromYamlArray }}
{{- $env = concat $env (include "agogosml.env" (dict "prefix" "AGOGOSML_GDPR_" "entries" $entries) | fromYamlArray) }}
{{- with $p.snapshots }}
{{- $mountPath := include "agogosml.snapshotsMountPath" $root }}
{{- $mounts = append $mounts (dict "name" "snapshots" "mountPath" $mountPath) }}
{{- $volumes = append $volumes (dict "name" "snapshots" "persistentVolumeClaim" (dict "claimName" $root.Values.retraining.datasetVolume.existingClaim)) }}
{{- end }}
{{- end }}
{{- range $what := $wanted }}
{{- $file := get $files $what }}
{{- $mounts = append $mounts (dict "name" $file.volume "mountPath" $file.dir "readOnly" true) }}
{{- if eq $what "policy" }}
{{- $volumes = append $volumes (dict "name" $file.volume "configMap" (dict "name" (include "agogosml.privacyName" (list $root "policy")))) }}
{{- else }}
{{- /* Owner-read only (0400); the kubelet gives the pod's fsGroup read access to it. */}}
{{- $volumes = append $volumes (dict "name" $file.volume "secret" (dict
  "secretName" (include "agogosml.privacyName" (list $root $what))
  "defaultMode" 256
  "items" (list (dict "key" $file.file "path" $file.file)))) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml (dict "env" $env "mounts" $mounts "volumes" $volumes "checksum" $checksum) }}
{{- end }}

{{/*
Where the monitor mounts the retraining data set's claim to rewrite the training snapshots
(privacy.snapshots): retraining.datasetVolume.mountPath, else the folder of
retraining.dataset. Every snapshot must be inside it.
*/}}
{{- define "agogosml.snapshotsMountPath" -}}
{{- $r := .Values.retraining }}
{{- $volume := $r.datasetVolume | default dict }}
{{- if not $volume.existingClaim }}
{{- fail "privacy.snapshots are rewritten by the monitor when a subject is forgotten: they must be on the retraining data set's claim (retraining.datasetVolume.existingClaim), which is empty" }}
{{- end }}
{{- $mountPath := "" }}
{{- if $volume.mountPath }}
{{- $mountPath = $volume.mountPath | clean }}
{{- else if $r.dataset }}
{{- $mountPath = dir $r.dataset | clean }}
{{- else }}
{{- fail "privacy.snapshots: set retraining.datasetVolume.mountPath (or retraining.dataset), where the monitor mounts the claim that holds them" }}
{{- end }}
{{- if has $mountPath (list "/" "/tmp" "/data" "/var/lib/agogosml-monitor") }}
{{- fail (printf "retraining.datasetVolume.mountPath is %s, which the monitor needs for itself: mount the data set's claim on a folder of its own, e.g. /datasets" $mountPath) }}
{{- end }}
{{- range .Values.privacy.snapshots }}
{{- if not (hasPrefix (printf "%s/" $mountPath) (toString .)) }}
{{- fail (printf "privacy.snapshots: %s is not inside %s, where the monitor mounts the claim %s" (toString .) $mountPath $volume.existingClaim) }}
{{- end }}
{{- end }}
{{- $mountPath }}
{{- end }}

{{/*
The policy must pseudonymize or drop the reader's subject field: the reader refuses to
start otherwise, so the chart refuses to render. Called from agogosml.validate.
*/}}
{{- define "agogosml.validatePrivacy" -}}
{{- $p := .Values.privacy }}
{{- if $p.enabled }}
{{- with .Values.inputReader.subjectField }}
{{- $field := . }}
{{- $policy := $p.policy | default dict }}
{{- $rule := get ($policy.fields | default dict) $field }}
{{- $action := $policy.default | default "keep" }}
{{- if kindIs "map" $rule }}
{{- $action = $rule.action }}
{{- else if $rule }}
{{- $action = $rule }}
{{- end }}
{{- if not (has (toString $action) (list "pseudonymize" "drop")) }}
{{- fail (printf "privacy.policy must pseudonymize or drop inputReader.subjectField %s (it would %s it): the reader refuses to start with a policy that lets the subject through in clear, e.g. --set privacy.policy.fields.%s=pseudonymize" $field (toString $action) $field) }}
{{- end }}
{{- end }}
{{- if and $p.store.url $p.store.existingSecret }}
{{- fail "set either privacy.store.url or privacy.store.existingSecret, not both" }}
{{- end }}
{{- end }}
{{- end }}
