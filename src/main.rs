//! The `connect-supervisor` binary: parses arguments and calls the library.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use connect_supervisor::app::{self, DevOptions};
use connect_supervisor::auth::{self, Role};
use connect_supervisor::config::{self, EXIT_USAGE};
use connect_supervisor::gitops;
use connect_supervisor::pod;

/// Folder of the runtime declaration in a source checkout.
const RUNTIME_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/images/connect-runtime");
/// Runtime cache of a source checkout.
const RUNTIME_CACHE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/connect-runtime");
/// The example department `dev` runs by default.
const EXAMPLE_DEPARTMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/department.toml");

#[derive(Parser)]
#[command(
    name = "connect-supervisor",
    version,
    about = "Supervised Kafka Connect workers behind the managed connector API"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CONNECT_SUPERVISOR_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a department against its configured Kafka.
    Run {
        /// The department file.
        #[arg(long, short, env = "CONNECT_SUPERVISOR_CONFIG")]
        config: PathBuf,
        /// A file with the department's [auth] table only (e.g. mounted from a Kubernetes
        /// Secret); the department file then has none.
        #[arg(long, env = "CONNECT_SUPERVISOR_AUTH_FILE")]
        auth_file: Option<PathBuf>,
        /// all-in-one: the workers are this process's children. kubernetes: each worker is its
        /// own pod (`connect-supervisor worker`), reached through --pool-service.
        #[arg(long, value_enum, default_value = "all-in-one", env = pod::ENV_TOPOLOGY)]
        topology: Topology,
        /// kubernetes topology: a pool's headless Service, <pool>=<service>:<port>; the API
        /// reaches its StatefulSet's pods by name (repeat for every pool).
        #[arg(long, value_name = "POOL=SERVICE:PORT")]
        pool_service: Vec<String>,
        /// kubernetes topology: a pool's workers as a static list, <pool>=<url>,<url> (instead
        /// of --pool-service, e.g. for tests); <url>+<port> names the worker entrypoint's
        /// metrics port on the same host.
        #[arg(long, value_name = "POOL=URL,URL")]
        pool_endpoints: Vec<String>,
        /// kubernetes topology: the port of every worker pod entrypoint's /metrics, whose
        /// Connect metrics the API re-exposes on its own /metrics.
        #[arg(long, value_name = "PORT")]
        worker_metrics_port: Option<u16>,
    },
    /// Run one worker of a pool as PID 1 of a pod (kubernetes topology): sized from the pod's
    /// cgroup limits, restarted in place, probes on --listen (/healthz, /readyz, /metrics).
    Worker {
        /// The department file.
        #[arg(long, short, env = "CONNECT_SUPERVISOR_CONFIG")]
        config: PathBuf,
        /// The pool this pod belongs to.
        #[arg(long)]
        pool: String,
        /// The pod's name (logs and /status).
        #[arg(long, env = "POD_NAME")]
        pod_name: Option<String>,
        /// The name the API and the pool's other workers reach this worker by (its DNS name
        /// behind the pool's headless Service).
        #[arg(long)]
        advertised_host: String,
        /// Address Connect's REST listener binds.
        #[arg(long, default_value = "0.0.0.0")]
        bind: String,
        /// Port of Connect's REST listener.
        #[arg(long, default_value_t = pod::DEFAULT_REST_PORT)]
        rest_port: u16,
        /// Address of the entrypoint's own HTTP server.
        #[arg(long, default_value = pod::DEFAULT_WORKER_LISTEN)]
        listen: SocketAddr,
        /// Overrides supervisor.state_dir of the department file.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Run a department locally with an embedded single-node Kafka broker and temporary state.
    Dev {
        /// The department file.
        #[arg(long, short, default_value = EXAMPLE_DEPARTMENT)]
        config: PathBuf,
        /// Folder of the runtime declaration (pom.xml and config/).
        #[arg(long, default_value = RUNTIME_SOURCE)]
        runtime_source: PathBuf,
        /// Address of the supervisor's HTTP server (overrides the file).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Check a department file and print every problem.
    CheckConfig {
        /// The department file.
        config: PathBuf,
    },
    /// Generate an API key (or with --token, a bearer token) and print the entry for the
    /// department file's [auth] table. The secret is shown once and stored only hashed.
    NewKey {
        /// Role of the key: viewer, operator or admin.
        #[arg(long, default_value = "operator")]
        role: String,
        /// Generate a bearer token with this name instead of an API key.
        #[arg(long, value_name = "NAME")]
        token: Option<String>,
    },
    /// Print the hex SHA-256 of a secret read from standard input (for secrets you generate
    /// yourself; they must be long random strings).
    HashSecret,
    /// Check connector files against a department's rules (for CI). Exit 0: clean; 1: some file
    /// breaks a rule; 2: some input could not be read.
    Validate {
        /// Files or folders of connector definitions (folders are searched for *.json).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The department file whose rules apply.
        #[arg(long, short)]
        department: PathBuf,
        /// Only this environment of the <env>-<connector>.json layout (files of no environment
        /// are always checked).
        #[arg(long)]
        env: Option<String>,
        /// The workers' plugin list (the JSON of GET /connector-plugins), to resolve aliases and
        /// tell sources from sinks like the API does.
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: ValidateFormat,
        /// Check the files together with what runs now in the department, read from this
        /// supervisor (its base URL, or its managed prefix .../connect/v1/environments/<env>/
        /// clusters/<cluster>): quotas count the running connectors, and a running connector
        /// renamed in the files is flagged.
        #[arg(long, value_name = "URL")]
        against: Option<String>,
        /// API key id for --against (or the CS_KEY environment variable).
        #[arg(long, env = gitops::against::API_KEY_ENV, hide_env_values = true)]
        api_key: Option<String>,
        /// API key secret for --against (or CS_SECRET; keep it out of command lines in CI).
        #[arg(long, env = gitops::against::API_SECRET_ENV, hide_env_values = true)]
        api_secret: Option<String>,
        /// Bearer token for --against, instead of an API key (or CS_TOKEN).
        #[arg(long, env = gitops::against::TOKEN_ENV, hide_env_values = true)]
        token: Option<String>,
        /// Report renames of running connectors as notices, not errors (the rename is
        /// intended and its offsets are carried over).
        #[arg(long)]
        allow_renames: bool,
    },
    /// Compare connector files with what runs in the department (through the managed API) and
    /// print the changes apply would make. Exit 0: no changes; 2: changes pending; 1: errors.
    Plan(GitopsArgs),
    /// Plan, then make the changes: creates, updates, pauses/resumes, renames, deletes (with
    /// --prune), stopping at the first failure. Exit 0: done; 1: errors or a failure.
    Apply {
        #[command(flatten)]
        args: GitopsArgs,
        /// The Git commit recorded with each change in the audit trail (default: GITHUB_SHA,
        /// CI_COMMIT_SHA, BUILD_SOURCEVERSION, GIT_COMMIT, ... whichever is set).
        #[arg(long)]
        commit: Option<String>,
    },
    /// Move connectors to fully-managed ones (or between departments): plan, export, cutover,
    /// rollback, adopt, rename.
    Migrate {
        #[command(subcommand)]
        command: connect_supervisor::migrate::cli::MigrateCommand,
    },
    /// Manage the Connect runtime.
    Runtime {
        #[command(subcommand)]
        command: RuntimeCommand,
    },
}

/// Arguments shared by `plan` and `apply`.
#[derive(clap::Args)]
struct GitopsArgs {
    /// Files or folders of connector definitions (folders are searched for *.json).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The department file whose rules apply.
    #[arg(long, short)]
    department: PathBuf,
    /// The managed API to compare with and change: a supervisor's base URL, or a managed prefix
    /// .../connect/v1/environments/<env>/clusters/<cluster> (Confluent Cloud's too).
    #[arg(long, value_name = "URL")]
    against: String,
    /// Only this environment of the <env>-<connector>.json layout.
    #[arg(long)]
    env: Option<String>,
    /// The workers' plugin list (the JSON of GET /connector-plugins).
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// API key id (or CS_KEY).
    #[arg(long, env = gitops::against::API_KEY_ENV, hide_env_values = true)]
    api_key: Option<String>,
    /// API key secret (or CS_SECRET; keep it out of command lines in CI).
    #[arg(long, env = gitops::against::API_SECRET_ENV, hide_env_values = true)]
    api_secret: Option<String>,
    /// Bearer token, instead of an API key (or CS_TOKEN).
    #[arg(long, env = gitops::against::TOKEN_ENV, hide_env_values = true)]
    token: Option<String>,
    /// The owner label written to every connector this folder manages (default: the paths as
    /// given). Connectors of other labels, or none, are never changed or deleted.
    #[arg(long)]
    owner: Option<String>,
    /// Delete connectors of this owner that no file defines any more.
    #[arg(long)]
    prune: bool,
    /// Carry out renames as a delete and a create (the connector's offsets are lost).
    #[arg(long, conflicts_with = "allow_renames")]
    allow_destroy_create: bool,
    /// Carry out renames with the offsets: stop the old connector, create the new one at its
    /// offsets, delete the old one, then put the file's config (as `migrate rename` does).
    #[arg(long)]
    allow_renames: bool,
    /// Folder of the state files of renames (resumable with `migrate rename --out DIR`);
    /// default: a .connect-supervisor folder next to the connector folder.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Take over running connectors a file names that no folder (or another) owns.
    #[arg(long)]
    adopt: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: PlanFormatArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PlanFormatArg {
    /// For people.
    Text,
    /// One JSON document.
    Json,
    /// A Markdown pull-request comment.
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Topology {
    /// One process runs every worker.
    AllInOne,
    /// Each worker is its own pod.
    Kubernetes,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ValidateFormat {
    /// For people.
    Text,
    /// One JSON document.
    Json,
    /// GitHub Actions workflow annotations.
    Github,
}

#[derive(Subcommand)]
enum RuntimeCommand {
    /// Materialise the runtime declared in images/connect-runtime/pom.xml (idempotent; offline
    /// when already present).
    Fetch {
        /// Folder of the runtime declaration (pom.xml and config/).
        #[arg(long, default_value = RUNTIME_SOURCE)]
        source: PathBuf,
        /// Where to put the runtime.
        #[arg(long, default_value = RUNTIME_CACHE)]
        dir: PathBuf,
    },
    /// Make the class-data-sharing archive of the worker classpath (cds/connect-worker.jsa in the
    /// runtime) with one training start against an embedded broker; workers then start faster.
    Cds {
        /// The runtime.
        #[arg(long, default_value = RUNTIME_CACHE)]
        dir: PathBuf,
        /// The java the workers run (the archive only works with the JDK that wrote it).
        #[arg(long, default_value = "java")]
        java: PathBuf,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    init_logging(cli.log_format);
    if let Command::Validate {
        paths,
        department,
        env,
        plugins,
        format,
        against,
        api_key,
        api_secret,
        token,
        allow_renames,
    } = cli.command
    {
        let against = match against {
            None => None,
            Some(url) => match credentials(api_key, api_secret, token) {
                Ok(credentials) => Some(gitops::against::Against { url, credentials }),
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(EXIT_USAGE as u8);
                }
            },
        };
        return validate(
            gitops::ValidateOptions {
                paths,
                department,
                environment: env,
                plugins,
                format: match format {
                    ValidateFormat::Text => gitops::OutputFormat::Text,
                    ValidateFormat::Json => gitops::OutputFormat::Json,
                    ValidateFormat::Github => gitops::OutputFormat::Github,
                },
                baseline: gitops::Baseline::default(),
                allow_renames,
            },
            against,
        );
    }
    match cli.command {
        Command::Plan(args) => return gitops_command(args, None),
        Command::Apply { args, commit } => return gitops_command(args, Some(commit)),
        _ => {}
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), anyhow::Error> = runtime.block_on(async {
        match cli.command {
            Command::Run {
                config,
                auth_file,
                topology,
                pool_service,
                pool_endpoints,
                worker_metrics_port,
            } => {
                let discovery = match topology {
                    Topology::AllInOne
                        if !(pool_service.is_empty() && pool_endpoints.is_empty()) =>
                    {
                        return Err(anyhow::Error::new(Exit(
                            EXIT_USAGE,
                            "--pool-service and --pool-endpoints need --topology kubernetes".into(),
                        )));
                    }
                    Topology::AllInOne => None,
                    Topology::Kubernetes => Some(
                        pod::Discovery::from_flags(
                            &pool_service,
                            &pool_endpoints,
                            worker_metrics_port,
                        )
                        .map_err(|e| anyhow::Error::new(Exit(e.exit_code(), e.to_string())))?,
                    ),
                };
                app::run(&config, auth_file.as_deref(), discovery.as_ref())
                    .await
                    .map_err(exit_with)
            }
            Command::Worker {
                config,
                pool,
                pod_name,
                advertised_host,
                bind,
                rest_port,
                listen,
                state_dir,
            } => pod::worker::run(pod::worker::WorkerOptions {
                config,
                pool,
                pod_name,
                advertised_host,
                bind,
                rest_port,
                listen,
                state_dir,
            })
            .await
            .map_err(|e| anyhow::Error::new(Exit(e.exit_code(), e.to_string()))),
            Command::Dev {
                config,
                runtime_source,
                listen,
            } => app::dev(DevOptions {
                config,
                runtime_source,
                listen,
            })
            .await
            .map_err(exit_with),
            Command::CheckConfig { config } => match config::load(&config) {
                Ok(d) => {
                    println!(
                        "{}: department {} with {} pool(s) is valid",
                        config.display(),
                        d.id,
                        d.pools.len()
                    );
                    if !d.auth.configured {
                        eprintln!("warning: auth {}", app::NO_AUTH_MESSAGE);
                    }
                    Ok(())
                }
                Err(e) => Err(exit_with(app::AppError::from(e))),
            },
            Command::NewKey { role, token } => new_key(&role, token.as_deref()),
            Command::HashSecret => hash_secret(),
            Command::Validate { .. } | Command::Plan(_) | Command::Apply { .. } => {
                unreachable!("handled before the async runtime")
            }
            Command::Migrate { command } => {
                match connect_supervisor::migrate::cli::run(command).await {
                    Ok(0) => Ok(()),
                    Ok(code) => Err(anyhow::Error::new(Exit(
                        code.into(),
                        "some connector cannot move as asked (see above)".into(),
                    ))),
                    Err(e) => Err(anyhow::Error::new(Exit(
                        e.exit_code().into(),
                        e.to_string(),
                    ))),
                }
            }
            Command::Runtime {
                command: RuntimeCommand::Cds { dir, java },
            } => {
                let layout = connect_supervisor::runtime::RuntimeLayout::new(&dir);
                let work = tempfile::tempdir()?;
                match connect_supervisor::cds::build_archive(&layout, &java, work.path()).await {
                    Ok(path) => {
                        println!("class-data-sharing archive written to {}", path.display());
                        Ok(())
                    }
                    Err(e) => Err(anyhow::Error::new(Exit(1, e.to_string()))),
                }
            }
            Command::Runtime {
                command: RuntimeCommand::Fetch { source, dir },
            } => app::ensure_runtime(&source, &dir)
                .await
                .map_err(exit_with)
                .map(|layout| {
                    println!(
                        "Connect runtime (Kafka {}) ready in {}",
                        layout.kafka_version().unwrap_or_else(|| "?".into()),
                        dir.display()
                    );
                }),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map(|x| x.0).unwrap_or(1);
            eprintln!("error: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

fn usage_error(message: String) -> anyhow::Error {
    anyhow::Error::new(Exit(EXIT_USAGE, message))
}

/// `new-key`: a generated key or token and its `[auth]` entry.
fn new_key(role: &str, token: Option<&str>) -> Result<(), anyhow::Error> {
    let role = Role::parse(role).ok_or_else(|| {
        usage_error(format!(
            "\"{role}\" is not a role; use viewer, operator or admin"
        ))
    })?;
    match token {
        Some(name) => {
            let token = auth::generate_token();
            println!(
                "# Bearer token \"{name}\" ({role}). Give the token to its user; it is not stored."
            );
            println!("#   token: {token}");
            println!(
                "[[auth.tokens]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"",
                auth::hash_secret(&token)
            );
        }
        None => {
            let (id, secret) = auth::generate_api_key();
            println!(
                "# API key {id} ({role}). Give the id and secret to its user; the secret is not stored."
            );
            println!("#   id:     {id}\n#   secret: {secret}");
            println!(
                "[[auth.keys]]\nid = \"{id}\"\nsecret_sha256 = \"{}\"\nrole = \"{role}\"",
                auth::hash_secret(&secret)
            );
        }
    }
    Ok(())
}

/// `hash-secret`: SHA-256 of standard input's first line.
fn hash_secret() -> Result<(), anyhow::Error> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("cannot read the secret from standard input: {e}"))?;
    let secret = line.trim_end_matches(['\r', '\n']);
    if secret.chars().count() < auth::MIN_SECRET_LEN {
        return Err(usage_error(format!(
            "the secret is shorter than {} characters; secrets are stored as a plain SHA-256, which is safe only for long random secrets (use `new-key`)",
            auth::MIN_SECRET_LEN
        )));
    }
    println!("{}", auth::hash_secret(secret));
    Ok(())
}

/// The credentials of `validate --against`: an API key (id and secret together) or a token.
fn credentials(
    api_key: Option<String>,
    api_secret: Option<String>,
    token: Option<String>,
) -> Result<gitops::against::Credentials, String> {
    use gitops::against::{API_KEY_ENV, API_SECRET_ENV, Credentials, TOKEN_ENV};
    match (api_key, api_secret, token) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(format!(
            "give either an API key (--api-key and --api-secret, or {API_KEY_ENV} and \
             {API_SECRET_ENV}) or a token (--token or {TOKEN_ENV}), not both"
        )),
        (Some(id), Some(secret), None) => Ok(Credentials::ApiKey { id, secret }),
        (Some(_), None, None) => Err(format!(
            "--api-key needs its secret: --api-secret or {API_SECRET_ENV}"
        )),
        (None, Some(_), None) => Err(format!(
            "--api-secret needs its key id: --api-key or {API_KEY_ENV}"
        )),
        (None, None, Some(token)) => Ok(Credentials::Token(token)),
        (None, None, None) => Ok(Credentials::None),
    }
}

/// `validate`: the report on stdout, a reason on stderr when it could not run at all. With
/// `--against`, what runs in the department is read first.
fn validate(
    mut options: gitops::ValidateOptions,
    against: Option<gitops::against::Against>,
) -> ExitCode {
    if let Some(against) = against {
        let fetched = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))
            .and_then(|rt| {
                rt.block_on(gitops::fetch_baseline(&options.department, &against))
                    .map_err(|e| e.to_string())
            });
        match fetched {
            Ok(baseline) => options.baseline = baseline,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(gitops::EXIT_UNREADABLE);
            }
        }
    }
    match gitops::validate(&options) {
        Ok(outcome) => {
            print!("{}", outcome.output);
            ExitCode::from(outcome.exit_code)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(gitops::EXIT_UNREADABLE)
        }
    }
}

/// `plan` (`commit` is `None`) or `apply`: the output on stdout, a reason on stderr when it could
/// not run at all (exit 1, or 64 for bad usage).
fn gitops_command(args: GitopsArgs, commit: Option<Option<String>>) -> ExitCode {
    let credentials = match credentials(args.api_key, args.api_secret, args.token) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    let is_apply = commit.is_some();
    let request = gitops::command::PlanRequest {
        options: gitops::plan::PlanOptions {
            owner: args
                .owner
                .unwrap_or_else(|| gitops::prepare::default_owner(&args.paths)),
            prune: args.prune,
            allow_destroy_create: args.allow_destroy_create,
            allow_renames: args.allow_renames,
            adopt: args.adopt,
            digest_key: std::env::var(gitops::secrets::DIGEST_KEY_ENV)
                .unwrap_or_default()
                .into_bytes(),
        },
        state_dir: args
            .state_dir
            .unwrap_or_else(|| gitops::command::default_state_dir(&args.paths)),
        paths: args.paths,
        department: args.department,
        environment: args.env,
        plugins: args.plugins,
        against: gitops::against::Against {
            url: args.against,
            credentials,
        },
        commit: commit
            .flatten()
            .or_else(|| gitops::client::commit_from(None, &|name| std::env::var(name).ok())),
        format: match args.format {
            PlanFormatArg::Text => gitops::command::PlanFormat::Text,
            PlanFormatArg::Json => gitops::command::PlanFormat::Json,
            PlanFormatArg::Markdown => gitops::command::PlanFormat::Markdown,
        },
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|rt| {
            rt.block_on(async {
                if is_apply {
                    gitops::command::apply(&request).await
                } else {
                    gitops::command::plan(&request).await
                }
            })
            .map_err(|e| e.to_string())
        });
    match outcome {
        Ok(outcome) => {
            print!("{}", outcome.output);
            ExitCode::from(outcome.exit_code)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(gitops::EXIT_PLAN_ERRORS)
        }
    }
}

/// Carries the exit code of an application error through `anyhow`.
#[derive(Debug)]
struct Exit(i32, String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

fn exit_with(e: app::AppError) -> anyhow::Error {
    anyhow::Error::new(Exit(e.exit_code(), e.to_string()))
}
