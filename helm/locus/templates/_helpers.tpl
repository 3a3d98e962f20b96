{{/*
Helpers shared by every template. The chart uses Go template actions (define, include,
if, with, range) and these Helm/Sprig functions only: toYaml, fromYaml, toJson, nindent,
default, quote, print, printf, required, fail, trunc, trimSuffix, replace, contains,
b64enc, b64dec, sha256sum, lookup, randAlphaNum, add, int, int64, gt, eq, and, or, not,
has, list, append, dict, set, mergeOverwrite, index, .Files.Get. CI renders it with the
official Helm binary (e2e/tests/helm.rs), so each is Helm's own implementation.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "locus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it
already contains the chart name, else "<release>-<chart>". Cut to 50 characters so the
longest suffix ("-basic-auth", 11) still fits the 63-character limit.
*/}}
{{- define "locus.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "locus.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "locus.labels" -}}
helm.sh/chart: {{ include "locus.chart" . }}
app.kubernetes.io/name: {{ include "locus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: locus
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "provider"). */}}
{{- define "locus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "locus.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Names of the objects. */}}
{{- define "locus.provider.fullname" -}}
{{- printf "%s-provider" (include "locus.fullname" .) }}
{{- end }}

{{- define "locus.worker.fullname" -}}
{{- printf "%s-worker" (include "locus.fullname" .) }}
{{- end }}

{{/* The Secret holding the basic-auth files. */}}
{{- define "locus.basicAuth.secretName" -}}
{{- default (printf "%s-basic-auth" (include "locus.fullname" .)) .Values.basicAuth.existingSecret }}
{{- end }}

{{/* The service account of a component; call with (dict "root" $ "component" "provider"). */}}
{{- define "locus.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create }}
{{- printf "%s-%s" (include "locus.fullname" .root) .component }}
{{- else }}
{{- default "default" .root.Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "repository:tag" with the tag defaulting to the chart's appVersion; call with (dict "root" $ "image" .Values.provider.image). */}}
{{- define "locus.image" -}}
{{- $repository := required "an image repository is required" .image.repository }}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/*
The provider's worker discovery address: DNS of the workers' headless Service, which
lists the ready worker pods only.
*/}}
{{- define "locus.workersUrl" -}}
{{- printf "dns+http://%s.%s.svc:%d" (include "locus.worker.fullname" .) .Release.Namespace (int .Values.worker.port) }}
{{- end }}

{{/*
The labels of one object: the common labels, the component, then extra labels, merged
as a map so a key set twice appears once (the later wins). Call with
(dict "root" $ "component" "provider" "extra" $moreLabels); component and extra
are optional.
*/}}
{{- define "locus.labelsWith" -}}
{{- $labels := include "locus.labels" .root | fromYaml }}
{{- with .component }}
{{- $_ := set $labels "app.kubernetes.io/component" . }}
{{- end }}
{{- toYaml (mergeOverwrite $labels (default (dict) .extra)) }}
{{- end }}
