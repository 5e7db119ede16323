//! The Kubernetes manifests in deploy/: the Helm chart rendered for both topologies and several
//! values files, the Kustomize overlays, the Argo CD ApplicationSet. Every rendered object is
//! validated against the Kubernetes JSON schemas (`kubernetes-validate`, strict), the quota is
//! checked against the department budget parsed by the supervisor's own config reader, and the
//! kubernetes topology is checked for the "restricted" Pod Security Standard.
//!
//! Real tools, no cluster: `helm`, `kustomize` and `kubernetes-validate` must be installed
//! (.ci/run installs them); a missing one fails the test with how to install it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use connect_supervisor::config;
use connect_supervisor::model::Department;
use serde::Deserialize;
use serde_json::Value;

const PROJECT: &str = env!("CARGO_MANIFEST_DIR");
/// Kubernetes version the objects are validated against (AKS and EKS both serve it).
const KUBE_VERSION: &str = "1.33.0";
/// Custom resources the chart may render, which the Kubernetes schemas do not cover.
const CUSTOM_KINDS: &[&str] = &["ServiceMonitor", "PodMonitor", "PrometheusRule"];

const HELM_HINT: &str =
    "go install helm.sh/helm/v3/cmd/helm@v3.22.0 (Go module proxy; puts it in ~/go/bin)";
const KUSTOMIZE_HINT: &str =
    "go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1 (Go module proxy; puts it in ~/go/bin)";
const VALIDATE_HINT: &str = "pip install kubernetes-validate==1.37.0 (PyPI)";

fn chart() -> PathBuf {
    Path::new(PROJECT).join("deploy/helm/connect-supervisor")
}

/// A tool from PATH or from where `go install` puts it; panics with how to install it.
fn tool(name: &str, hint: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(gopath) = std::env::var_os("GOPATH") {
        dirs.push(PathBuf::from(gopath).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join("go/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed; install it with: {hint}"))
}

fn run(program: &Path, args: &[&str], cwd: &Path) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A values file in a temporary folder.
fn values_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const AUTH_VALUES: &str = "auth:\n  existingSecret: dept1-auth\n";

/// `helm template` of the chart with these values files and `--set`s; Err(stderr) on failure.
fn helm_template(values: &[&Path], sets: &[&str]) -> Result<String, String> {
    helm_template_chart(&chart(), values, sets)
}

fn helm_template_chart(chart: &Path, values: &[&Path], sets: &[&str]) -> Result<String, String> {
    let helm = tool("helm", HELM_HINT);
    let mut args = vec![
        "template".to_string(),
        "dept1".into(),
        chart.display().to_string(),
        "--namespace".into(),
        "dept1".into(),
    ];
    for v in values {
        args.push("-f".into());
        args.push(v.display().to_string());
    }
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = run(&helm, &args, Path::new(PROJECT));
    if ok { Ok(out) } else { Err(err) }
}

fn render(values: &[&Path], sets: &[&str]) -> String {
    helm_template(values, sets).unwrap_or_else(|e| panic!("helm template failed: {e}"))
}

/// Every YAML document of a stream, as JSON values (empty documents left out).
fn documents(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn named<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == k).collect()
}

/// Validates a stream of objects with `kubernetes-validate --strict`; custom resources (the
/// Prometheus Operator's) are the only kinds allowed without a schema.
fn validate(text: &str, what: &str) {
    let validator = tool("kubernetes-validate", VALIDATE_HINT);
    let dir = tempfile::tempdir().unwrap();
    let file = values_file(dir.path(), "objects.yaml", text);
    let (ok, out, err) = run(
        &validator,
        &["--strict", "-k", KUBE_VERSION, file.to_str().unwrap()],
        dir.path(),
    );
    let all = format!("{out}{err}");
    assert!(ok, "{what}: objects do not validate:\n{all}");
    let passed = all.matches(" passed for resource ").count();
    let docs = documents(text);
    let custom = docs
        .iter()
        .filter(|d| CUSTOM_KINDS.contains(&kind(d)))
        .count();
    assert_eq!(
        passed + custom,
        docs.len(),
        "{what}: every object validates or is a known custom resource:\n{all}"
    );
    for line in all.lines().filter(|l| l.contains("Couldn't find schema")) {
        assert!(
            CUSTOM_KINDS
                .iter()
                .any(|k| line.contains(&format!("kind {k} "))),
            "{what}: no schema for an object that should have one: {line}"
        );
    }
}

/// The department file as the pods read it, from the rendered ConfigMap, parsed by the
/// supervisor's own reader (every problem of check-config would fail here).
fn rendered_department(docs: &[Value]) -> Department {
    let cm = named(docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "dept1-department")
        .expect("a department ConfigMap");
    let text = cm["data"]["department.toml"].as_str().unwrap();
    config::parse(text, Path::new("/etc/connect-supervisor"), &|_| None)
        .unwrap_or_else(|e| panic!("the rendered department file is refused: {e:?}\n{text}"))
}

/// A Kubernetes CPU quantity in millicores.
fn millicores(q: &Value) -> u64 {
    let s = match q {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match s.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => (s.parse::<f64>().unwrap() * 1000.0).round() as u64,
    }
}

/// A Kubernetes memory quantity in bytes (binary suffixes and plain numbers).
fn bytes(q: &Value) -> u64 {
    let s = match q {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (suffix, factor) in [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)] {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * factor;
        }
    }
    s.parse().unwrap()
}

/// Every pod template (Deployments and StatefulSets) with its owner's name.
fn pod_specs(docs: &[Value]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet"))
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_string(),
                &d["spec"]["template"]["spec"],
            )
        })
        .collect()
}

/// The restricted Pod Security Standard's requirements of one pod spec, as a list of breaches.
fn restricted_breaches(owner: &str, spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod = &spec["securityContext"];
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[key] == true {
            out.push(format!("{owner}: {key}"));
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if v.get("hostPath").is_some() {
            out.push(format!("{owner}: hostPath volume {}", v["name"]));
        }
    }
    let containers = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten());
    for c in containers {
        let name = format!("{owner}/{}", c["name"].as_str().unwrap_or("?"));
        let sc = &c["securityContext"];
        let non_root = sc["runAsNonRoot"] == true || pod["runAsNonRoot"] == true;
        if !non_root {
            out.push(format!("{name}: runAsNonRoot is not true"));
        }
        if sc["runAsUser"] == 0 || pod["runAsUser"] == 0 {
            out.push(format!("{name}: runs as uid 0"));
        }
        if sc["privileged"] == true {
            out.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            out.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        let drops: Vec<&str> = sc["capabilities"]["drop"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !drops.contains(&"ALL") {
            out.push(format!("{name}: capabilities do not drop ALL"));
        }
        if sc["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c != "NET_BIND_SERVICE"))
        {
            out.push(format!("{name}: adds capabilities"));
        }
        let seccomp = sc["seccompProfile"]["type"]
            .as_str()
            .or(pod["seccompProfile"]["type"].as_str());
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            out.push(format!("{name}: seccompProfile is not RuntimeDefault"));
        }
        // Not required by the standard, but promised by the chart.
        if sc["readOnlyRootFilesystem"] != true {
            out.push(format!("{name}: root filesystem is writable"));
        }
    }
    out
}

#[test]
fn helm_lint_passes_for_every_values_file() {
    let helm = tool("helm", HELM_HINT);
    let tmp = tempfile::tempdir().unwrap();
    let auth = values_file(tmp.path(), "auth.yaml", AUTH_VALUES);
    let mut files = vec![auth.clone()];
    files.extend(department_values_files());
    for file in &files {
        let (ok, out, err) = run(
            &helm,
            &[
                "lint",
                "--strict",
                chart().to_str().unwrap(),
                "-f",
                file.to_str().unwrap(),
            ],
            Path::new(PROJECT),
        );
        assert!(ok, "helm lint with {}:\n{out}{err}", file.display());
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
    // Without any [auth] the chart does not render, and says what to set.
    let err = helm_template(&[], &[]).expect_err("a release without [auth] must not render");
    assert!(err.contains("auth.existingSecret"), "{err}");
}

/// The example departments of the ApplicationSet's Git generator.
fn department_values_files() -> Vec<PathBuf> {
    let dir = Path::new(PROJECT).join("deploy/argocd/departments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("values.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "example departments in {}", dir.display());
    files
}

#[test]
fn both_topologies_and_the_example_departments_render_valid_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = values_file(tmp.path(), "auth.yaml", AUTH_VALUES);
    let everything = [
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.podMonitor.enabled=true",
        "monitoring.prometheusRule.enabled=true",
        "persistence.enabled=true",
    ];
    let cases: Vec<(String, Vec<PathBuf>, Vec<&str>)> = vec![
        ("kubernetes".into(), vec![auth.clone()], vec![]),
        (
            "kubernetes, everything on".into(),
            vec![auth.clone()],
            everything.to_vec(),
        ),
        (
            "all-in-one".into(),
            vec![auth.clone()],
            vec!["topology=all-in-one"],
        ),
        (
            "all-in-one privileged".into(),
            vec![auth.clone()],
            vec!["topology=all-in-one", "allInOne.privileged=true"],
        ),
    ];
    let departments = department_values_files()
        .into_iter()
        .map(|f| (f.display().to_string(), vec![f], vec![]));
    for (what, files, sets) in cases.into_iter().chain(departments) {
        let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let text = render(&files, &sets);
        let docs = documents(&text);
        assert!(docs.len() >= 5, "{what}: {text}");
        validate(&text, &what);
        // Every department renders a valid department file, and its pools as pods.
        let department = rendered_department(&docs);
        let topology = docs
            .iter()
            .find(|d| kind(d) == "Deployment")
            .map(|d| {
                d["spec"]["template"]["metadata"]["labels"]["connect-supervisor.io/topology"]
                    .clone()
            })
            .unwrap();
        if topology == "kubernetes" {
            assert_eq!(
                named(&docs, "StatefulSet").len(),
                department.pools.len(),
                "{what}: one StatefulSet per pool"
            );
        } else {
            assert!(named(&docs, "StatefulSet").is_empty(), "{what}");
        }
    }
}

#[test]
fn the_kubernetes_topology_runs_each_pool_as_a_statefulset_of_single_worker_pods() {
    let tmp = tempfile::tempdir().unwrap();
    let dept2 = Path::new(PROJECT).join("deploy/argocd/departments/dept2/values.yaml");
    let over = values_file(
        tmp.path(),
        "over.yaml",
        "topology: kubernetes\nworker:\n  pools:\n    etl: {replicas: 1, cpu: 1, memory: 1GiB}\n",
    );
    let docs = documents(&render(&[&dept2, &over], &[]));
    let department = rendered_department(&docs);
    // The override reached the department file, so the API and check-config see it too.
    let etl = department.pools.iter().find(|p| p.name == "etl").unwrap();
    assert_eq!(etl.workers, 1);
    assert_eq!(etl.worker.memory.bytes(), 1 << 30);
    for pool in &department.pools {
        let sts = named(&docs, "StatefulSet")
            .into_iter()
            .find(|s| s["metadata"]["name"] == format!("dept1-pool-{}", pool.name))
            .unwrap_or_else(|| panic!("a StatefulSet for pool {}", pool.name));
        assert_eq!(sts["spec"]["replicas"], pool.workers);
        let c = &sts["spec"]["template"]["spec"]["containers"][0];
        for side in ["limits", "requests"] {
            assert_eq!(
                millicores(&c["resources"][side]["cpu"]),
                u64::from(pool.worker.cpu.millis()),
                "pool {} {side}.cpu",
                pool.name
            );
            assert_eq!(
                bytes(&c["resources"][side]["memory"]),
                pool.worker.memory.bytes(),
                "pool {} {side}.memory",
                pool.name
            );
        }
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[0], "worker");
        assert!(
            args.windows(2).any(|w| w == ["--pool", pool.name.as_str()]),
            "{args:?}"
        );
        assert_eq!(
            sts["spec"]["serviceName"], sts["metadata"]["name"],
            "the headless Service names the pods"
        );
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            assert!(
                c[probe]["httpGet"]["path"].is_string(),
                "{probe} of pool {}",
                pool.name
            );
        }
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        let pdb = named(&docs, "PodDisruptionBudget")
            .into_iter()
            .find(|p| p["metadata"]["name"] == sts["metadata"]["name"])
            .expect("a PodDisruptionBudget per pool");
        assert_eq!(pdb["spec"]["selector"], sts["spec"]["selector"]);
        let svc = named(&docs, "Service")
            .into_iter()
            .find(|s| s["metadata"]["name"] == sts["metadata"]["name"])
            .expect("a headless Service per pool");
        assert_eq!(svc["spec"]["clusterIP"], "None");
        assert_eq!(
            svc["spec"]["selector"],
            sts["spec"]["selector"]["matchLabels"]
        );
    }
    // The API reaches each pool through its headless Service.
    let api = named(&docs, "Deployment")[0];
    let c = &api["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--worker-metrics-port", "8090"]),
        "the API scrapes the worker entrypoints: {args:?}"
    );
    assert!(
        args.windows(2).any(|w| w == ["--topology", "kubernetes"]),
        "{args:?}"
    );
    for pool in &department.pools {
        let service = format!(
            "{}=dept1-pool-{}.$(POD_NAMESPACE).svc:8083",
            pool.name, pool.name
        );
        assert!(args.contains(&service.as_str()), "{service} in {args:?}");
    }
    // One pool restarting must not take the department API out of its Service.
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"],
        "/readyz?exclude=pools"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
}

#[test]
fn the_resource_quota_is_the_department_budget_plus_the_supervisors_allowance() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = values_file(tmp.path(), "auth.yaml", AUTH_VALUES);
    for (topology, sets) in [
        ("kubernetes", vec![]),
        ("all-in-one", vec!["topology=all-in-one"]),
    ] {
        let docs = documents(&render(&[&auth], &sets));
        let budget = rendered_department(&docs).budget;
        let quota = named(&docs, "ResourceQuota");
        assert_eq!(quota.len(), 1, "{topology}");
        let hard = &quota[0]["spec"]["hard"];
        let annotations = &quota[0]["metadata"]["annotations"];
        assert_eq!(
            annotations["connect-supervisor.io/budget-workers"],
            budget.max_workers.to_string()
        );
        assert_eq!(
            millicores(&annotations["connect-supervisor.io/budget-cpu"]),
            u64::from(budget.cpu.millis())
        );
        assert_eq!(
            bytes(&annotations["connect-supervisor.io/budget-memory"]),
            budget.memory.bytes()
        );
        // The supervisor's allowance: the API pod's limits, or the all-in-one pod's overhead.
        let api = &named(&docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0];
        let (extra_cpu, extra_mem, pods) = if topology == "kubernetes" {
            (
                millicores(&api["resources"]["limits"]["cpu"]),
                bytes(&api["resources"]["limits"]["memory"]),
                u64::from(budget.max_workers) + 1,
            )
        } else {
            // The one pod's limits are the budget plus the overhead (500m, 256Mi by default).
            assert_eq!(
                millicores(&api["resources"]["limits"]["cpu"]),
                u64::from(budget.cpu.millis()) + 500
            );
            assert_eq!(
                bytes(&api["resources"]["limits"]["memory"]),
                budget.memory.bytes() + (256 << 20)
            );
            (500, 256 << 20, 1)
        };
        assert_eq!(hard["pods"], pods.to_string(), "{topology}");
        for key in ["limits.cpu", "requests.cpu"] {
            assert_eq!(
                millicores(&hard[key]),
                u64::from(budget.cpu.millis()) + extra_cpu,
                "{topology} {key}"
            );
        }
        for key in ["limits.memory", "requests.memory"] {
            assert_eq!(
                bytes(&hard[key]),
                budget.memory.bytes() + extra_mem,
                "{topology} {key}"
            );
        }
        // The pods fit in the quota.
        let pod_cpu: u64 = pod_specs(&docs)
            .iter()
            .zip(
                docs.iter()
                    .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet")),
            )
            .map(|((_, spec), owner)| {
                owner["spec"]["replicas"].as_u64().unwrap()
                    * millicores(&spec["containers"][0]["resources"]["limits"]["cpu"])
            })
            .sum();
        assert!(
            pod_cpu <= millicores(&hard["limits.cpu"]),
            "{topology}: {pod_cpu}m"
        );
    }
}

#[test]
fn a_release_over_the_department_budget_is_refused_with_what_to_change() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = values_file(tmp.path(), "auth.yaml", AUTH_VALUES);
    let cases = [
        ("worker.pools.shared.replicas=5", "max_workers"),
        ("worker.pools.shared.memory=2GiB", "budget.memory"),
        ("worker.pools.shared.cpu=2", "budget.cpu"),
        ("worker.pools.nosuch.replicas=1", "no pool \"nosuch\""),
        (
            "topology=everywhere",
            "use \"kubernetes\" or \"all-in-one\"",
        ),
    ];
    for (set, expected) in cases {
        let err = helm_template(&[&auth], &[set]).expect_err(set);
        assert!(err.contains(expected), "{set}: {err}");
    }
}

#[test]
fn the_kubernetes_topology_passes_the_restricted_pod_security_standard() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = values_file(tmp.path(), "auth.yaml", AUTH_VALUES);
    let mut renders = vec![render(&[&auth], &[])];
    renders.push(render(
        &[&Path::new(PROJECT).join("deploy/argocd/departments/dept1/values.yaml")],
        &[],
    ));
    for text in &renders {
        let docs = documents(text);
        let specs = pod_specs(&docs);
        assert!(specs.len() >= 2, "the API and at least one pool");
        let breaches: Vec<String> = specs
            .iter()
            .flat_map(|(owner, spec)| restricted_breaches(owner, spec))
            .collect();
        assert!(breaches.is_empty(), "{breaches:#?}");
        assert!(!text.contains("privileged: true"));
    }
    // The opt-in privileged all-in-one pod is the one exception, and the check sees it.
    let docs = documents(&render(
        &[&auth],
        &["topology=all-in-one", "allInOne.privileged=true"],
    ));
    let breaches: Vec<String> = pod_specs(&docs)
        .iter()
        .flat_map(|(owner, spec)| restricted_breaches(owner, spec))
        .collect();
    assert!(
        breaches.iter().any(|b| b.contains("privileged")),
        "{breaches:?}"
    );
}

#[test]
fn only_the_api_and_the_pools_own_workers_reach_a_workers_rest_port() {
    let tmp = tempfile::tempdir().unwrap();
    let dept2 = Path::new(PROJECT).join("deploy/argocd/departments/dept2/values.yaml");
    let docs = documents(&render(&[&dept2], &["topology=kubernetes"]));
    let api_labels = &named(&docs, "Deployment")[0]["spec"]["selector"]["matchLabels"];
    let _ = tmp;
    for sts in named(&docs, "StatefulSet") {
        let selector = &sts["spec"]["selector"]["matchLabels"];
        let policy = named(&docs, "NetworkPolicy")
            .into_iter()
            .find(|p| &p["spec"]["podSelector"]["matchLabels"] == selector)
            .expect("a NetworkPolicy for the pool");
        assert_eq!(
            policy["spec"]["policyTypes"],
            serde_json::json!(["Ingress"])
        );
        let rules = policy["spec"]["ingress"].as_array().unwrap();
        let rest: Vec<&Value> = rules
            .iter()
            .filter(|r| {
                r["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["port"] == "rest")
            })
            .collect();
        assert_eq!(rest.len(), 1);
        let from: BTreeSet<String> = rest[0]["from"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["podSelector"]["matchLabels"].to_string())
            .collect();
        let expected: BTreeSet<String> = [api_labels.to_string(), selector.to_string()].into();
        assert_eq!(from, expected, "REST port of {}", sts["metadata"]["name"]);
        // The pool's REST port is named as the policy names it.
        let ports = &sts["spec"]["template"]["spec"]["containers"][0]["ports"];
        assert!(
            ports
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "rest")
        );
    }
}

#[test]
fn notes_say_when_all_in_one_runs_degraded() {
    // NOTES.txt is the template cs.notes; render it through a copy of the chart with one extra
    // template, since `helm template` does not print notes and `helm install` needs a cluster.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("chart");
    copy_dir(&chart(), &copy);
    std::fs::write(
        copy.join("templates/zz-notes.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ include \"cs.notes\" . | quote }}\n",
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(chart().join("templates/NOTES.txt"))
            .unwrap()
            .trim(),
        "{{ include \"cs.notes\" . }}"
    );
    let auth = values_file(tmp.path(), "auth.yaml", AUTH_VALUES);
    let notes = |sets: &[&str]| -> String {
        let docs = documents(
            &helm_template_chart(&copy, &[&auth], sets).unwrap_or_else(|e| panic!("{e}")),
        );
        named(&docs, "ConfigMap")
            .into_iter()
            .find(|c| c["metadata"]["name"] == "notes")
            .unwrap()["data"]["notes"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let degraded = notes(&["topology=all-in-one"]);
    assert!(degraded.contains("DEGRADED"), "{degraded}");
    assert!(degraded.contains("topology=kubernetes"), "{degraded}");
    let privileged = notes(&["topology=all-in-one", "allInOne.privileged=true"]);
    assert!(!privileged.contains("DEGRADED"), "{privileged}");
    assert!(privileged.contains("privileged"), "{privileged}");
    let kubernetes = notes(&[]);
    assert!(!kubernetes.contains("DEGRADED"), "{kubernetes}");
    assert!(
        kubernetes.contains("enforced by the kernel"),
        "{kubernetes}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_charts_alert_rules_are_the_repositorys() {
    let repo = std::fs::read_to_string(
        Path::new(PROJECT).join("deploy/prometheus/connect-supervisor-rules.yaml"),
    )
    .unwrap();
    let copy =
        std::fs::read_to_string(chart().join("files/connect-supervisor-rules.yaml")).unwrap();
    assert_eq!(
        copy, repo,
        "copy deploy/prometheus/connect-supervisor-rules.yaml to the chart's files/"
    );
    let tmp = tempfile::tempdir().unwrap();
    let auth = values_file(tmp.path(), "auth.yaml", AUTH_VALUES);
    let docs = documents(&render(
        &[&auth],
        &["monitoring.prometheusRule.enabled=true"],
    ));
    let rule = named(&docs, "PrometheusRule");
    assert_eq!(rule.len(), 1);
    let plain: Value = yaml_serde::from_str(&repo).unwrap();
    assert_eq!(
        rule[0]["spec"], plain,
        "the rules pass through Helm untouched"
    );
}

#[test]
fn every_kustomize_overlay_builds_valid_objects_in_its_own_namespace() {
    let kustomize = tool("kustomize", KUSTOMIZE_HINT);
    // kustomize inflates the chart with helm.
    let helm = tool("helm", HELM_HINT);
    let root = Path::new(PROJECT).join("deploy/kustomize");
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(root.join("overlays"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    overlays.sort();
    assert!(overlays.len() >= 2);
    let mut namespaces = BTreeSet::new();
    for dir in std::iter::once(root.join("base")).chain(overlays) {
        let (ok, out, err) = run(
            &kustomize,
            &[
                "build",
                "--enable-helm",
                "--helm-command",
                helm.to_str().unwrap(),
                "--load-restrictor",
                "LoadRestrictionsNone",
                dir.to_str().unwrap(),
            ],
            Path::new(PROJECT),
        );
        assert!(ok, "kustomize build {}:\n{err}", dir.display());
        validate(&out, &dir.display().to_string());
        let docs = documents(&out);
        let ns = named(&docs, "Namespace");
        assert_eq!(ns.len(), 1, "{}", dir.display());
        let name = ns[0]["metadata"]["name"].as_str().unwrap().to_string();
        assert_eq!(
            ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        for d in docs.iter().filter(|d| kind(d) != "Namespace") {
            assert_eq!(
                d["metadata"]["namespace"],
                name,
                "{} {} in {}",
                kind(d),
                d["metadata"]["name"],
                dir.display()
            );
        }
        let breaches: Vec<String> = pod_specs(&docs)
            .iter()
            .flat_map(|(owner, spec)| restricted_breaches(owner, spec))
            .collect();
        assert!(breaches.is_empty(), "{}: {breaches:#?}", dir.display());
        // The overlay's values reach the department file, and the pools follow it.
        let department = rendered_department(&docs);
        for pool in &department.pools {
            let sts = named(&docs, "StatefulSet")
                .into_iter()
                .find(|s| s["metadata"]["name"] == format!("dept1-pool-{}", pool.name))
                .unwrap_or_else(|| panic!("pool {} in {}", pool.name, dir.display()));
            assert_eq!(sts["spec"]["replicas"], pool.workers, "{}", dir.display());
        }
        assert!(
            namespaces.insert(name),
            "each overlay has its own namespace"
        );
    }
}

#[test]
fn the_applicationset_makes_one_application_per_department_folder() {
    let text =
        std::fs::read_to_string(Path::new(PROJECT).join("deploy/argocd/applicationset.yaml"))
            .unwrap();
    let set: Value = yaml_serde::from_str(&text).unwrap();
    assert_eq!(set["kind"], "ApplicationSet");
    assert_eq!(set["apiVersion"], "argoproj.io/v1alpha1");
    let git = &set["spec"]["generators"][0]["git"];
    let pattern = git["directories"][0]["path"].as_str().unwrap();
    let prefix = pattern.strip_suffix("/*").expect("a folder glob");
    assert!(
        Path::new(PROJECT).join(prefix).is_dir(),
        "{prefix} exists here"
    );
    let template = &set["spec"]["template"];
    assert_eq!(
        template["spec"]["destination"]["namespace"],
        "{{ .path.basename }}"
    );
    let sources = template["spec"]["sources"].as_array().unwrap();
    let chart_source = sources.iter().find(|s| s["path"].is_string()).unwrap();
    assert_eq!(chart_source["path"], "deploy/helm/connect-supervisor");
    assert!(
        Path::new(PROJECT)
            .join("deploy/helm/connect-supervisor/Chart.yaml")
            .is_file()
    );
    assert_eq!(
        chart_source["helm"]["valueFiles"][0],
        "$values/{{ .path.path }}/values.yaml"
    );
    assert!(sources.iter().any(|s| s["ref"] == "values"));
    assert!(
        template["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .unwrap()
            .contains(&Value::from("CreateNamespace=true"))
    );
    assert_eq!(
        template["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // What the generator finds renders (as Argo CD would run helm: release = folder name).
    for file in department_values_files() {
        let text = render(&[&file], &[]);
        validate(&text, &file.display().to_string());
    }
}
