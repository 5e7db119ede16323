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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), anyhow::Error> = runtime.block_on(async {
        match cli.command {
            Command::Run { config } => app::run(&config).await.map_err(exit_with),
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
            Command::Validate { .. } => unreachable!("handled before the async runtime"),
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
