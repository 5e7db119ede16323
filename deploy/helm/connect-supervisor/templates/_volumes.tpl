{{/* The department file (and policies, and the [auth] Secret) as one read-only folder. */}}
{{- define "cs.configVolume" -}}
- name: config
  projected:
    sources:
    - configMap:
        name: {{ .Values.department.existingConfigMap | default (printf "%s-department" (include "cs.fullname" .)) }}
        items:
        - key: department.toml
          path: department.toml
    {{- if .Values.auth.existingSecret }}
    - secret:
        name: {{ .Values.auth.existingSecret }}
        items:
        - key: {{ .Values.auth.key }}
          path: auth/auth.toml
    {{- end }}
    {{- if .Values.department.policies }}
    - configMap:
        name: {{ include "cs.fullname" . }}-policies
        items:
        {{- range $name, $_ := .Values.department.policies }}
        - key: {{ $name }}
          path: policies/{{ $name }}
        {{- end }}
    {{- end }}
{{- end -}}

{{- define "cs.supervisorArgs" -}}
- run
- --config
- {{ include "cs.configDir" . }}/department.toml
{{- if .Values.auth.existingSecret }}
- --auth-file
- {{ include "cs.configDir" . }}/auth/auth.toml
{{- end }}
{{- end -}}
