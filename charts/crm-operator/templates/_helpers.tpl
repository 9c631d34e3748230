{{- define "crm-operator.name" -}}crm-operator{{- end -}}
{{- define "crm-operator.labels" -}}
app.kubernetes.io/name: {{ include "crm-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "crm-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crm-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crm-operator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
