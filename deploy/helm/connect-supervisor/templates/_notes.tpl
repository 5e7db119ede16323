{{/* NOTES.txt, as a template so that tests can render it without a cluster. */}}
{{- define "cs.notes" -}}
{{- $d := include "cs.department" . | fromJson -}}
Department API: http://{{ include "cs.fullname" . }}-api.{{ .Release.Namespace }}.svc:{{ .Values.api.port }}
  kubectl -n {{ .Release.Namespace }} port-forward svc/{{ include "cs.fullname" . }}-api {{ .Values.api.port }}
  curl -u "$CS_KEY:$CS_SECRET" http://127.0.0.1:{{ .Values.api.port }}/readyz

Topology: {{ .Values.topology }}
{{- if eq .Values.topology "kubernetes" }}
{{- range $d.pools }}
  pool {{ .name }}: StatefulSet {{ include "cs.poolName" (dict "root" $ "pool" .name) }}, {{ int .workers }} pod(s), each limited by the kernel to cpu {{ .cpu }} and memory {{ .memory }}
{{- end }}
Every worker's CPU and memory limits are its pod's resources.limits, enforced by the kernel
through the kubelet; no container is privileged (Pod Security Standard "restricted").
Scaling a pool is a chart value (worker.pools.<pool>.replicas), not an API call.
{{- else if .Values.allInOne.privileged }}
One privileged pod runs the supervisor and every worker: each worker gets its own cgroup with
its CPU and memory limits from the department file (the pod's cgroupfs is writable).
This pod is privileged and cannot run in a namespace enforcing the "restricted" or "baseline"
Pod Security Standard.
{{- else }}
WARNING: DEGRADED. One unprivileged pod runs the supervisor and every worker, and its cgroupfs is
read-only: the kernel enforces only the pod's total limit (the department budget plus
allInOne.overhead). Per-worker limits are JVM flags (heap, processor count) and memory is
watched from outside, so one worker can starve the others. /status and the metrics report
the enforcement mode as "degraded". For kernel-enforced per-worker limits use
topology=kubernetes (recommended) or allInOne.privileged=true.
{{- end }}

{{- end -}}
