{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "purser.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name: the release name when it already contains the chart name. */}}
{{- define "purser.fullname" -}}
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
{{- define "purser.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "purser.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: purser
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the controller's pods. */}}
{{- define "purser.controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "purser.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Selector labels of the webhook's pods. */}}
{{- define "purser.webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "purser.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* The controller's ServiceAccount. */}}
{{- define "purser.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "purser.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The webhook's name (Deployment, Service, ServiceAccount). */}}
{{- define "purser.webhook.fullname" -}}
{{- printf "%s-webhook" (include "purser.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate. */}}
{{- define "purser.webhook.tlsSecretName" -}}
{{- printf "%s-tls" (include "purser.webhook.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The container image: tag defaults to the chart's appVersion; a digest wins over the tag. */}}
{{- define "purser.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Lease the controller replicas elect a leader on (Settings::lease_name in the code). */}}
{{- define "purser.leaseName" -}}
purser-controller
{{- end }}

{{/* Checks values that would give a broken install, with a message naming the value. */}}
{{- define "purser.validate" -}}
{{- if not (has .Values.provider (list "kwok" "aws")) }}
{{- fail (printf "provider: is %q; expected kwok or aws" .Values.provider) }}
{{- end }}
{{- if and (gt (int .Values.controller.replicas) 1) (not .Values.controller.leaderElection.enabled) }}
{{- fail "controller.replicas: more than one replica needs controller.leaderElection.enabled" }}
{{- end }}
{{- if eq .Values.provider "aws" }}
{{- if not .Values.aws.clusterName }}
{{- fail "aws.clusterName: required with provider aws (instances are tagged with it)" }}
{{- end }}
{{- if not .Values.aws.region }}
{{- fail "aws.region: required with provider aws" }}
{{- end }}
{{- end }}
{{- if not (has .Values.webhook.failurePolicy (list "Ignore" "Fail")) }}
{{- fail (printf "webhook.failurePolicy: is %q; expected Ignore (fail-open) or Fail (fail-closed)" .Values.webhook.failurePolicy) }}
{{- end }}
{{- end }}
