//! Unit tests of the department file as a whole (each table's own tests sit beside its reader).

use super::*;

use crate::config::testing::{department, pool};

/// A department with every table a file usually has: client settings with an environment
/// reference, relative paths, a budget, two pools.
fn good() -> String {
    department()
        .kafka_client("security.protocol", "SASL_SSL")
        .kafka_client(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"${env:KAFKA_PASSWORD}\";",
        )
        .set("runtime", "dir", "\"../.cache/connect-runtime\"")
        .set("supervisor", "listen", "\"127.0.0.1:8080\"")
        .set("supervisor", "state_dir", "\"state\"")
        .budget(4, "4", "4GiB")
        .pool(pool("shared").workers(2).cpu("0.5").memory("768MiB"))
        .pool(
            pool("heavy")
                .workers(1)
                .cpu("\"1500m\"")
                .memory("1536MiB")
                .key("jvm_options", "[\"-XX:+UseG1GC\"]")
                .worker_config("offset.flush.interval.ms", "5000"),
        )
        .toml()
}

fn env(name: &str) -> Option<String> {
    (name == "KAFKA_PASSWORD").then(|| "s3cret".to_string())
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text, Path::new("/etc/dept"), &env) {
        Err(ParseError::Invalid(p)) => p,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn http_server_limits_have_defaults_and_can_be_set() {
    let d = parse(&good(), Path::new("/etc/dept"), &env).expect("valid");
    assert_eq!(d.supervisor.http, crate::model::HttpLimits::default());
    let text = good().replace(
        "state_dir = \"state\"\n",
        "state_dir = \"state\"\nheader_read_timeout = \"2s\"\nbody_read_timeout = \"500ms\"\nidle_timeout = \"5s\"\nmax_connections = 8\n",
    );
    let d = parse(&text, Path::new("/etc/dept"), &env).expect("valid");
    let ms = std::time::Duration::from_millis;
    assert_eq!(d.supervisor.http.header_read_timeout, ms(2000));
    assert_eq!(d.supervisor.http.body_read_timeout, ms(500));
    assert_eq!(d.supervisor.http.idle_timeout, ms(5000));
    assert_eq!(d.supervisor.http.max_connections, 8);
    let bad = good().replace(
        "state_dir = \"state\"\n",
        "state_dir = \"state\"\nidle_timeout = \"forever\"\nmax_connections = 0\n",
    );
    let p = problems(&bad);
    assert!(
        p.iter().any(|p| p.path == "supervisor.idle_timeout"),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.path == "supervisor.max_connections"),
        "{p:?}"
    );
}

#[test]
fn a_good_file_parses_into_a_department() {
    let d = parse(&good(), Path::new("/etc/dept"), &env).expect("valid");
    assert_eq!(d.id, "dept1");
    assert_eq!(d.default_pool, "shared");
    assert_eq!(d.pools.len(), 2);
    assert_eq!(d.pools[0].worker.cpu, Cpu::from_millis(500));
    assert_eq!(d.pools[1].worker.cpu, Cpu::from_millis(1500));
    assert_eq!(d.pools[1].worker.memory, ByteSize::mib(1536));
    assert_eq!(d.pools[1].worker_config["offset.flush.interval.ms"], "5000");
    assert_eq!(
        d.runtime.dir,
        PathBuf::from("/etc/dept/../.cache/connect-runtime")
    );
    assert_eq!(d.supervisor.state_dir, PathBuf::from("/etc/dept/state"));
    assert!(d.kafka.client["sasl.jaas.config"].contains("password=\"s3cret\""));
}

#[test]
fn recreate_is_fresh_unless_the_department_says_resume() {
    let d = parse(&good(), Path::new("/"), &env).expect("valid");
    assert_eq!(d.recreate, crate::model::Recreate::Fresh);
    let marker = "kafka_cluster_id = \"lkc-dept1\"\n";
    let resume = good().replacen(marker, &format!("{marker}recreate = \"resume\"\n"), 1);
    let d = parse(&resume, Path::new("/"), &env).expect("valid");
    assert_eq!(d.recreate, crate::model::Recreate::Resume);
    let bad = good().replacen(marker, &format!("{marker}recreate = \"sometimes\"\n"), 1);
    let p = problems(&bad);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, "department.recreate");
    assert!(p[0].message.contains("fresh") && p[0].message.contains("resume"));
}

#[test]
fn pools_get_their_own_connect_cluster_identity() {
    let d = parse(&good(), Path::new("/"), &env).expect("valid");
    let shared = d.cluster_identity("shared");
    let heavy = d.cluster_identity("heavy");
    assert_eq!(shared.group_id, "dept1-connect-shared");
    assert_eq!(shared.config_topic, "dept1-connect-shared-configs");
    assert_eq!(heavy.offset_topic, "dept1-connect-heavy-offsets");
    assert_ne!(shared.status_topic, heavy.status_topic);
}

#[test]
fn every_problem_is_reported_at_once_with_its_key_path() {
    let bad = r#"
[department]
id = "Dept-1"
environment_id = "env 1"

[kafka]
bootstrap_servers = 9092

[supervisor]
listen = "localhost"
colour = "blue"

[[pools]]
name = "shared"
cpu = 0
memory = "12XB"

[[pools]]
name = "shared"
workers = 100
cpu = 1
memory = "1GiB"
heap = "2GiB"
[pools.worker_config]
"group.id" = "mine"
"#;
    let p = problems(bad);
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "department.id",
        "department.environment_id",
        "department.kafka_cluster_id",
        "kafka.bootstrap_servers",
        "supervisor.listen",
        "supervisor.colour",
        "pools[0].cpu",
        "pools[0].memory",
        "pools[1].workers",
        "pools[1].heap",
        "pools[1].worker_config.\"group.id\"",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
    }
    let listen = p.iter().find(|p| p.path == "supervisor.listen").unwrap();
    assert!(listen.message.contains("ip:port"), "{}", listen.message);
}

#[test]
fn pools_over_the_budget_are_refused_naming_the_figure() {
    let text = good().replace("max_workers = 4", "max_workers = 2");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, "budget");
    assert!(p[0].message.contains("3 workers") && p[0].message.contains("2 workers"));
}

#[test]
fn missing_sections_and_environment_variables_are_problems() {
    let p = problems("");
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["department", "kafka", "pools"]);
    let p = problems(&good().replace("KAFKA_PASSWORD", "NOT_SET_ANYWHERE"));
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("NOT_SET_ANYWHERE"));
    assert!(!p[0].message.contains("s3cret"));
}

#[test]
fn duplicate_pools_and_unknown_default_pools_are_refused() {
    let text = good()
        .replace("name = \"heavy\"", "name = \"shared\"")
        .replace(
            "kafka_cluster_id = \"lkc-dept1\"",
            "kafka_cluster_id = \"lkc-dept1\"\ndefault_pool = \"nope\"",
        );
    let p = problems(&text);
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"pools[1].name"), "{paths:?}");
    assert!(paths.contains(&"department.default_pool"), "{paths:?}");
}

#[test]
fn an_xmx_in_jvm_options_is_checked_against_the_memory_limit() {
    let text = good().replace(
        "jvm_options = [\"-XX:+UseG1GC\"]",
        "jvm_options = [\"-XX:+UseG1GC\", \"-Xmx4g\"]",
    );
    assert_ne!(text, good(), "the fixture has a jvm_options line");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].path.ends_with("].jvm_options"), "{}", p[0].path);
    assert!(p[0].message.contains("4GiB"), "{}", p[0].message);
}

#[test]
fn every_path_is_absolute_even_from_a_relative_file_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("d.toml"),
        good().replace("${env:KAFKA_PASSWORD}", "x"),
    )
    .unwrap();
    // A path relative to the working directory, as `--config conf/d.toml` gives it.
    let cwd = std::env::current_dir().unwrap();
    let relative = pathdiff(&dir.join("d.toml"), &cwd);
    assert!(relative.is_relative(), "{relative:?}");
    let d = load(&relative).unwrap();
    for path in [&d.runtime.dir, &d.supervisor.state_dir] {
        assert!(path.is_absolute(), "{path:?} is relative");
    }
    let folder = cwd.join(relative.parent().unwrap());
    assert_eq!(d.supervisor.state_dir, folder.join("state"));
    assert_eq!(d.runtime.dir, folder.join("../.cache/connect-runtime"));
    assert_eq!(folder.canonicalize().unwrap(), dir.canonicalize().unwrap());
    // Text parsed against a relative base resolves against the working directory.
    let d = parse(&good(), Path::new("rel"), &env).unwrap();
    assert_eq!(d.supervisor.state_dir, cwd.join("rel/state"));
}

/// `path` relative to `base` (both absolute), with as many `..` as needed.
fn pathdiff(path: &Path, base: &Path) -> PathBuf {
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}

#[test]
fn syntax_errors_carry_the_parser_position() {
    match parse("[department\nid=1", Path::new("/"), &env) {
        Err(ParseError::Syntax(m)) => assert!(m.contains("line"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_debug_form_of_kafka_settings_shows_no_client_values() {
    let d = parse(&good(), Path::new("/"), &env).expect("valid");
    let debug = format!("{d:?}");
    assert!(!debug.contains("s3cret"));
    assert!(debug.contains("sasl.jaas.config"));
}

#[test]
fn the_auth_table_may_come_from_its_own_file_but_only_from_one_place() {
    let tmp = tempfile::tempdir().unwrap();
    let department = tmp.path().join("department.toml");
    let auth = tmp.path().join("auth.toml");
    let good = good().replace("${env:KAFKA_PASSWORD}", "x");
    std::fs::write(&department, &good).unwrap();
    let entry = format!(
        "[[auth.keys]]\nid = \"ops\"\nrole = \"admin\"\nsecret_sha256 = \"{}\"\n",
        "ab".repeat(32)
    );
    std::fs::write(&auth, &entry).unwrap();
    let d = load_with_auth(&department, &auth).unwrap();
    assert!(d.auth.configured);
    assert_eq!(d.auth.keys.len(), 1);
    // [auth] in both files: refused, naming the table.
    std::fs::write(&department, format!("{good}\n{entry}")).unwrap();
    let Err(ConfigError::Invalid { problems, .. }) = load_with_auth(&department, &auth) else {
        panic!("accepted [auth] twice");
    };
    assert_eq!(problems[0].path, "auth");
    // Anything but [auth] in the auth file: refused, naming the key.
    std::fs::write(&department, &good).unwrap();
    std::fs::write(&auth, format!("{entry}\n[budget]\nmax_workers = 99\n")).unwrap();
    let Err(ConfigError::Invalid { problems, .. }) = load_with_auth(&department, &auth) else {
        panic!("accepted a budget from the auth file");
    };
    assert_eq!(problems[0].path, "budget");
    // A missing auth file names itself.
    let missing = tmp.path().join("nope.toml");
    let Err(ConfigError::Read { path, .. }) = load_with_auth(&department, &missing) else {
        panic!("a missing auth file was accepted");
    };
    assert_eq!(path, missing);
}
