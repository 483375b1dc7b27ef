{{/* Names and labels. */}}
{{- define "svcbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "svcbot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "svcbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "svcbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "svcbot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "svcbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "svcbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "svcbot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "svcbot.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The catalog as YAML: the values' catalog, or an empty one on the local cluster. */}}
{{- define "svcbot.catalog" -}}
{{- $empty := dict "clusters" (dict "local" (dict "in_cluster" true)) "environments" dict "services" dict -}}
{{- toYaml (.Values.catalog | default $empty) -}}
{{- end -}}

{{/* "true" when the store is PostgreSQL (its URL in database.existingSecret), else empty (SQLite). */}}
{{- define "svcbot.postgres" -}}
{{- if (.Values.database | default dict).existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The catalog ConfigMap's name: the user's own, or the chart's. */}}
{{- define "svcbot.catalogConfigMap" -}}
{{- default (printf "%s-catalog" (include "svcbot.fullname" .)) .Values.existingCatalogConfigMap -}}
{{- end -}}

{{/*
The namespaces of this cluster svcbot manages, as a JSON list (use with fromJsonArray):
rbac.namespaces when set, else the namespaces of the catalog's environments whose cluster is listed in
rbac.catalogClusters or (unless accessOnly: then this is another cluster than svcbot's) is {in_cluster: true}.
*/}}
{{- define "svcbot.managedNamespaces" -}}
{{- $namespaces := list -}}
{{- if .Values.rbac.namespaces -}}
{{- $namespaces = .Values.rbac.namespaces -}}
{{- else if not .Values.existingCatalogConfigMap -}}
{{- $clusters := .Values.catalog.clusters | default dict -}}
{{- range $name, $env := (.Values.catalog.environments | default dict) -}}
{{- $cluster := get $clusters (toString $env.cluster) | default dict -}}
{{- $here := and $cluster.in_cluster (not $.Values.accessOnly) -}}
{{- if or $here (has $env.cluster ($.Values.rbac.catalogClusters | default list)) -}}
{{- $namespaces = append $namespaces $env.namespace -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $namespaces | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
What svcbot does in each namespace it manages, and nothing more: the calls bot/clients/kube/ makes, which
tests/ship compares with these rules (and with what the sandbox API server served while every verb ran).
  deployments get/list: status, probe, diff --live; patch: set_image and rollback (template replace)
  replicasets list: rollout state, rollback's revision pick
  pods list: status, probe, a Job's pods; pods/proxy get: probe's live /healthz and /readyz
  pods/log get: the output of a pipeline Job
  events list: warning events, probe failures
  configmaps get: diff --live (the ConfigMaps a deployment mounts)
  horizontalpodautoscalers list: status shows the HPA's bounds
  leases get/create/update: one deploy at a time per service and environment; list: `status all` shows locks
  jobs create/get/delete: pipeline `job` steps (tests, migrations) and their clean-up
*/}}
{{- define "svcbot.namespaceRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["pods/proxy"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "create", "update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "delete"]
{{- end -}}

{{/*
Rules as YAML, with every write verb dropped when rbac.readOnly is set (a rule left with no verb goes).
Call with (dict "rules" (include "svcbot.namespaceRules" .) "readOnly" .Values.rbac.readOnly).
*/}}
{{- define "svcbot.renderRules" -}}
{{- $kept := list -}}
{{- range $rule := fromYamlArray .rules -}}
{{- $verbs := $rule.verbs -}}
{{- if $.readOnly -}}
{{- $verbs = without $verbs "create" "update" "patch" "delete" "deletecollection" -}}
{{- end -}}
{{- if $verbs -}}
{{- $kept = append $kept (dict "apiGroups" $rule.apiGroups "resources" $rule.resources "verbs" $verbs) -}}
{{- end -}}
{{- end -}}
{{- toYaml $kept -}}
{{- end -}}

{{/*
A git-sync container (the init one-shot or the sidecar). It runs as git-sync's own user (65533, present in
its image's /etc/passwd, which SSH needs) and writes into the profiles emptyDir, mounted at the same path
as in svcbot's container so the `link` symlink resolves the same way in both.
Call with (dict "root" $ "oneTime" true|false).
*/}}
{{- define "svcbot.gitSyncContainer" -}}
{{- $values := .root.Values -}}
{{- $git := $values.profiles.gitSync -}}
image: {{ printf "%s:%s" $git.image.repository $git.image.tag }}
imagePullPolicy: {{ $git.image.pullPolicy }}
args:
  - --repo={{ $git.repo }}
  - --ref={{ $git.ref }}
  - --root={{ $values.profiles.mountPath }}
  - --link={{ $git.link }}
  - --depth={{ $git.depth }}
  {{- if .oneTime }}
  - --one-time
  {{- else }}
  - --period={{ $git.period }}
  - --max-failures=-1
  {{- end }}
  {{- if $git.httpsSecret }}
  - --password-file=/etc/git-secret/password
  {{- end }}
  {{- if $git.sshSecret }}
  - --ssh-key-file=/etc/git-secret/ssh
  - --ssh-known-hosts-file=/etc/git-secret/known_hosts
  {{- end }}
{{- if $git.httpsSecret }}
env:
  - name: GITSYNC_USERNAME
    valueFrom:
      secretKeyRef: {name: {{ $git.httpsSecret }}, key: username}
{{- end }}
resources:
  {{- toYaml $git.resources | nindent 2 }}
securityContext:
  {{- toYaml $values.securityContext | nindent 2 }}
  runAsUser: 65533
  runAsGroup: 65533
volumeMounts:
  - {name: profiles, mountPath: {{ $values.profiles.mountPath }}}
  - {name: git-tmp, mountPath: /tmp}
  {{- if or $git.httpsSecret $git.sshSecret }}
  - {name: git-credentials, mountPath: /etc/git-secret, readOnly: true}
  {{- end }}
{{- end -}}
