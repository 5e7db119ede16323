{{/*
Names. The release name is the department's prefix for every object; it is cut so that
"<fullname>-pool-<pool>" (pool names have at most 24 characters) stays within the 52 characters
a StatefulSet name may have.
*/}}
{{- define "cs.fullname" -}}
{{- .Release.Name | trunc 22 | trimSuffix "-" -}}
{{- end -}}

{{- define "cs.poolName" -}}
{{- printf "%s-pool-%s" (include "cs.fullname" .root) .pool -}}
{{- end -}}

{{- define "cs.labels" -}}
app.kubernetes.io/name: connect-supervisor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cs.apiSelector" -}}
app.kubernetes.io/name: connect-supervisor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end -}}

{{- define "cs.poolSelector" -}}
app.kubernetes.io/name: connect-supervisor
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: worker
connect-supervisor.io/pool: {{ .pool }}
{{- end -}}

{{- define "cs.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "cs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "cs.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the pods. */}}
{{- define "cs.configDir" -}}/etc/connect-supervisor{{- end -}}
{{- define "cs.stateDir" -}}/var/lib/connect-supervisor{{- end -}}
{{- define "cs.runtimeDir" -}}/opt/connect-runtime{{- end -}}

{{/*
CPU in millicores, as the department file writes it: a number of cores (0.5, 2) or "500m".
*/}}
{{- define "cs.millicores" -}}
{{- $v := toString . | trim -}}
{{- if hasSuffix "m" $v -}}
{{- trimSuffix "m" $v | atoi -}}
{{- else if regexMatch "^[0-9]+(\\.[0-9]+)?$" $v -}}
{{- round (mulf (float64 $v) 1000) 0 | int -}}
{{- else -}}
{{- fail (printf "CPU %q is not a number of cores (0.5, 2) or millicores (\"500m\")" $v) -}}
{{- end -}}
{{- end -}}

{{/*
Memory in bytes, with the units the department file accepts ("512MiB", "2GiB", "768Mi", "1G",
"64M", a plain number of bytes). All units are binary.
*/}}
{{- define "cs.bytes" -}}
{{- $v := toString . | trim -}}
{{- $n := regexFind "^[0-9]+" $v -}}
{{- if not $n -}}{{- fail (printf "memory %q does not start with a number, e.g. \"768MiB\"" $v) -}}{{- end -}}
{{- $unit := trimPrefix $n $v | trim -}}
{{- $factor := dict "" 1 "B" 1 "K" 1024 "KB" 1024 "Ki" 1024 "KiB" 1024 "k" 1024 "M" 1048576 "MB" 1048576 "Mi" 1048576 "MiB" 1048576 "m" 1048576 "G" 1073741824 "GB" 1073741824 "Gi" 1073741824 "GiB" 1073741824 "g" 1073741824 -}}
{{- if not (hasKey $factor $unit) -}}{{- fail (printf "memory %q has unit %q; use B, KiB, MiB or GiB" $v $unit) -}}{{- end -}}
{{- mul (atoi $n) (get $factor $unit) -}}
{{- end -}}

{{/* A Kubernetes memory quantity from bytes (Mi when it divides). */}}
{{- define "cs.quantity" -}}
{{- $b := int64 . -}}
{{- if and (gt $b 0) (eq (mod $b 1048576) 0) -}}{{ div $b 1048576 }}Mi{{- else -}}{{ $b }}{{- end -}}
{{- end -}}

{{/*
The department as the pods will read it: the parsed department file (or, with
department.existingConfigMap, the pools and budget given as values), with worker.pools
overrides applied and the in-pod paths set. Returned as TOML text; every template parses it
with fromToml, so the numbers keep the types the supervisor expects.
*/}}
{{- define "cs.departmentToml" -}}
{{- $d := dict -}}
{{- if .Values.department.existingConfigMap -}}
{{- if not .Values.department.pools -}}{{- fail "department.existingConfigMap is set: also give department.pools ([{name, workers, cpu, memory}]) as in that file" -}}{{- end -}}
{{- if not .Values.department.budget -}}{{- fail "department.existingConfigMap is set: also give department.budget ({max_workers, cpu, memory}) as in that file" -}}{{- end -}}
{{- $pools := list -}}
{{- range .Values.department.pools -}}
{{- $pools = append $pools (dict "name" .name "workers" (int .workers) "cpu" (toString .cpu) "memory" (toString .memory)) -}}
{{- end -}}
{{- $b := .Values.department.budget -}}
{{- $d = dict "pools" $pools "budget" (dict "max_workers" (int $b.max_workers) "cpu" (toString $b.cpu) "memory" (toString $b.memory)) -}}
{{- else -}}
{{- if not .Values.department.toml -}}{{- fail "department.toml is empty: give the department file's content, or department.existingConfigMap" -}}{{- end -}}
{{- $d = fromToml .Values.department.toml -}}
{{- if hasKey $d "Error" -}}{{- fail (printf "department.toml is not valid TOML: %s" (get $d "Error")) -}}{{- end -}}
{{- if not (hasKey $d "pools") -}}{{- fail "department.toml has no [[pools]]: add at least one pool with name, workers, cpu and memory" -}}{{- end -}}
{{- if not (hasKey $d "budget") -}}{{- fail "department.toml has no [budget]: add max_workers, cpu and memory" -}}{{- end -}}
{{- $sup := get $d "supervisor" | default dict -}}
{{- $_ := set $sup "listen" (printf "0.0.0.0:%d" (int .Values.api.port)) -}}
{{- $_ := set $sup "state_dir" (include "cs.stateDir" .) -}}
{{- $_ := set $d "supervisor" $sup -}}
{{- $rt := get $d "runtime" | default dict -}}
{{- $_ := set $rt "dir" (include "cs.runtimeDir" .) -}}
{{- $_ := set $d "runtime" $rt -}}
{{- $policy := get $d "policy" | default dict -}}
{{- if .Values.department.policies -}}
{{- $_ := set $policy "rego_dir" (printf "%s/policies" (include "cs.configDir" .)) -}}
{{- $_ := set $d "policy" $policy -}}
{{- else if hasKey $policy "rego_dir" -}}
{{- $_ := unset $policy "rego_dir" -}}
{{- end -}}
{{- end -}}
{{- range (get $d "pools") -}}
{{- $o := get $.Values.worker.pools .name | default dict -}}
{{- if hasKey $o "replicas" -}}{{- $_ := set . "workers" (int $o.replicas) -}}{{- end -}}
{{- if hasKey $o "cpu" -}}{{- $_ := set . "cpu" (toString $o.cpu) -}}{{- end -}}
{{- if hasKey $o "memory" -}}{{- $_ := set . "memory" (toString $o.memory) -}}{{- end -}}
{{- end -}}
{{- range $name, $_ := .Values.worker.pools -}}
{{- $found := false -}}
{{- range (get $d "pools") -}}{{- if eq .name $name -}}{{- $found = true -}}{{- end -}}{{- end -}}
{{- if not $found -}}{{- fail (printf "worker.pools.%s: the department file has no pool %q" $name $name) -}}{{- end -}}
{{- end -}}
{{- toToml $d -}}
{{- end -}}

{{- define "cs.department" -}}
{{- include "cs.departmentToml" . | fromToml | toJson -}}
{{- end -}}

{{/*
The budget check the supervisor's check-config makes, done at render time so an over-budget
release never reaches the cluster. Returns the totals as JSON: workers, millicores, bytes.
*/}}
{{- define "cs.totals" -}}
{{- $d := include "cs.department" . | fromJson -}}
{{- $workers := 0 -}}{{- $milli := 0 -}}{{- $bytes := 0 -}}
{{- range $d.pools -}}
{{- $w := int .workers -}}
{{- $workers = add $workers $w -}}
{{- $milli = add $milli (mul $w (include "cs.millicores" .cpu | atoi)) -}}
{{- $bytes = add $bytes (mul $w (include "cs.bytes" .memory | atoi)) -}}
{{- end -}}
{{- $b := $d.budget -}}
{{- $bMilli := include "cs.millicores" $b.cpu | atoi -}}
{{- $bBytes := include "cs.bytes" $b.memory | atoi -}}
{{- if gt $workers (int $b.max_workers) -}}{{- fail (printf "the pools have %d workers, over budget.max_workers = %d: lower a pool's workers (or worker.pools.<pool>.replicas) or raise the budget" $workers (int $b.max_workers)) -}}{{- end -}}
{{- if gt $milli $bMilli -}}{{- fail (printf "the pools need %dm CPU, over budget.cpu = %dm: lower a pool's workers or cpu, or raise the budget" $milli $bMilli) -}}{{- end -}}
{{- if gt $bytes $bBytes -}}{{- fail (printf "the pools need %d bytes of memory, over budget.memory = %d bytes: lower a pool's workers or memory, or raise the budget" $bytes $bBytes) -}}{{- end -}}
{{- dict "workers" $workers "millicores" $milli "bytes" $bytes "budgetWorkers" (int $b.max_workers) "budgetMillicores" $bMilli "budgetBytes" $bBytes | toJson -}}
{{- end -}}

{{- define "cs.hasAuth" -}}
{{- if .Values.auth.existingSecret -}}true{{- else if .Values.department.existingConfigMap -}}true{{- else -}}
{{- $d := fromToml .Values.department.toml -}}
{{- if hasKey $d "auth" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* Restricted Pod Security Standard, pod level. */}}
{{- define "cs.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Restricted Pod Security Standard, container level. */}}
{{- define "cs.containerSecurity" -}}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The labels a pool's objects carry on top of cs.labels. */}}
{{- define "cs.poolExtra" -}}
app.kubernetes.io/component: worker
connect-supervisor.io/pool: {{ .pool }}
{{- end -}}
