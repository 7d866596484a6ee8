{{/* Chart name. */}}
{{- define "rhime-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-scoped prefix of every object. */}}
{{- define "rhime-operator.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "rhime-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "rhime-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rhime
{{- end }}

{{/* Selector labels of the operator pod. */}}
{{- define "rhime-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rhime-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "rhime-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rhime-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The watched namespaces, comma-separated; empty means every namespace. */}}
{{- define "rhime-operator.watched" -}}
{{- $watched := .Values.watchNamespaces }}
{{- if and $watched .Values.rhimeDeployment.enabled }}
{{- $watched = append $watched .Release.Namespace }}
{{- end }}
{{- $watched | uniq | join "," }}
{{- end }}

{{/* The operator's grants, in a Role per watched namespace or one ClusterRole. */}}
{{- define "rhime-operator.rules" }}
  - apiGroups: [rhime.dev]
    resources: [rhimedeployments]
    verbs: [get, list, watch, patch]
  - apiGroups: [rhime.dev]
    resources: [rhimedeployments/status]
    verbs: [get, patch]
  - apiGroups: [apps]
    resources: [deployments, statefulsets]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [""]
    resources: [services, configmaps, serviceaccounts]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [batch]
    resources: [cronjobs]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [policy]
    resources: [poddisruptionbudgets]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies, ingresses]
    verbs: [get, list, watch, create, patch, delete]
  # spec.monitoring, where the Prometheus Operator is installed
  - apiGroups: [monitoring.coreos.com]
    resources: [podmonitors, prometheusrules]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [""]
    resources: [pods]
    # delete: a stuck pod of an outdated StatefulSet revision is replaced (forced rollback)
    verbs: [get, list, watch, delete]
  - apiGroups: [""]
    resources: [persistentvolumeclaims]
    verbs: [list, patch]
  - apiGroups: [""]
    resources: [secrets]
    # get: the Secrets a RhimeDeployment names; create, patch: its stores Secret (the
    # managed Redis' and NATS' users)
    verbs: [get, create, patch]
  - apiGroups: ["", events.k8s.io]
    resources: [events]
    verbs: [create, patch]
{{- end }}
