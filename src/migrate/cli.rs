//! The `migrate` subcommands: arguments (the source's credentials as for `validate --against`,
//! the target's from `--target-*` flags or `TARGET_*` variables, defaulting to the source's) and
//! what each prints. Reports go to stdout, reasons to stderr; secrets go nowhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::client::Endpoint;
use super::cutover::{self, CutoverState, Mode, RunOptions};
use super::export::{self, SecretRef};
use super::mapping::{self, TABLE};
use super::plan::{self, ApiCheck, Plan};
use super::{
    EXIT_BLOCKED, EXIT_OK, MigrateError, SOURCE_URL_ENV, TARGET_KEY_ENV, TARGET_SECRET_ENV,
    TARGET_TOKEN_ENV, TARGET_URL_ENV,
};
use crate::remote::{API_KEY_ENV, API_SECRET_ENV, Credentials, TOKEN_ENV};

/// The source department (a supervisor).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The source supervisor's base URL.
    #[arg(id = "source_url", long = "source", env = SOURCE_URL_ENV, value_name = "URL")]
    pub url: Option<String>,
    /// API key id of the source (or CS_KEY).
    #[arg(long, env = API_KEY_ENV, hide_env_values = true)]
    pub api_key: Option<String>,
    /// API key secret of the source (or CS_SECRET).
    #[arg(long, env = API_SECRET_ENV, hide_env_values = true)]
    pub api_secret: Option<String>,
    /// Bearer token of the source (or CS_TOKEN).
    #[arg(long, env = TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
}

/// The target (Confluent Cloud's managed prefix, or another supervisor).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The target: a managed prefix (https://api.confluent.cloud/connect/v1/environments/<env>/
    /// clusters/<lkc>) or a supervisor's base URL.
    #[arg(id = "target_url", long = "to", env = TARGET_URL_ENV, value_name = "URL")]
    pub url: Option<String>,
    /// API key id of the target (or TARGET_KEY; default: the source's).
    #[arg(long, env = TARGET_KEY_ENV, hide_env_values = true)]
    pub target_api_key: Option<String>,
    /// API key secret of the target (or TARGET_SECRET).
    #[arg(long, env = TARGET_SECRET_ENV, hide_env_values = true)]
    pub target_api_secret: Option<String>,
    /// Bearer token of the target (or TARGET_TOKEN).
    #[arg(long, env = TARGET_TOKEN_ENV, hide_env_values = true)]
    pub target_token: Option<String>,
}

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// For people.
    Text,
    /// One JSON document.
    Json,
}

/// Output format of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The managed create body (`{name, config, offsets}`), one `<name>.json` per connector.
    ManagedJson,
    /// Terraform `confluent_connector` resources, one `<name>.tf` per connector and `main.tf`.
    Terraform,
}

/// `connect-supervisor migrate ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum MigrateCommand {
    /// What each connector becomes on the target (exit 0: all can move; 1: some cannot; 2: an
    /// end could not be read; 64: wrong arguments).
    Plan {
        /// Connectors (default: all).
        connectors: Vec<String>,
        /// The source.
        #[command(flatten)]
        source: SourceArgs,
        /// The target.
        #[command(flatten)]
        target: TargetArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
        /// Also write plan.json here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write each connector as managed JSON or Terraform, secrets as references.
    Export {
        /// Connectors (default: all that can move).
        connectors: Vec<String>,
        /// The source.
        #[command(flatten)]
        source: SourceArgs,
        /// The target.
        #[command(flatten)]
        target: TargetArgs,
        /// File format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Include the source's current offsets.
        #[arg(long)]
        with_offsets: bool,
        /// How managed JSON refers to secrets: env (${env:NAME}) or vault:<path>.
        #[arg(long, default_value = "env")]
        secret_refs: String,
        /// Folder of the files.
        #[arg(long, default_value = "migration")]
        out: PathBuf,
    },
    /// Move one connector to the target (resumes an unfinished move from its state file).
    Cutover {
        /// The connector.
        connector: String,
        /// The source.
        #[command(flatten)]
        source: SourceArgs,
        /// The target.
        #[command(flatten)]
        target: TargetArgs,
        /// How.
        #[arg(long, value_enum, default_value = "stop-then-create")]
        mode: Mode,
        /// Keep the source stopped instead of deleting it (for a rollback window).
        #[arg(long)]
        keep_source: bool,
        /// Its name on the target (default: the same).
        #[arg(long)]
        target_name: Option<String>,
        /// Seconds the target may take to run past the carried offsets.
        #[arg(long, default_value_t = 180)]
        verify_timeout: u64,
        /// Accept a target at the carried offsets when no new data arrives.
        #[arg(long)]
        accept_idle: bool,
        /// Folder of the state file.
        #[arg(long, default_value = "migration")]
        out: PathBuf,
    },
    /// Undo a cut-over: the source starts again at the offsets the target reached.
    Rollback {
        /// The connector (its state file is read from --out).
        connector: String,
        /// The source.
        #[command(flatten)]
        source: SourceArgs,
        /// The target.
        #[command(flatten)]
        target: TargetArgs,
        /// Folder of the state file.
        #[arg(long, default_value = "migration")]
        out: PathBuf,
    },
    /// Bring a connector of a plain Connect worker under the department's supervisor (the
    /// source flags name the supervisor), with its offsets, then stop it on the old cluster.
    Adopt {
        /// The connector.
        connector: String,
        /// The existing Connect worker.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The source.
        #[command(flatten)]
        source: SourceArgs,
        /// Keep it stopped on the old cluster instead of deleting it.
        #[arg(long)]
        keep_source: bool,
        /// Seconds the adopted connector may take to run past the carried offsets.
        #[arg(long, default_value_t = 180)]
        verify_timeout: u64,
        /// Accept it at the carried offsets when no new data arrives.
        #[arg(long)]
        accept_idle: bool,
        /// Folder of the state file.
        #[arg(long, default_value = "migration")]
        out: PathBuf,
    },
    /// Rename a connector carrying its offsets (a plain rename would lose them).
    Rename {
        /// Current name.
        old: String,
        /// New name.
        new: String,
        /// The source.
        #[command(flatten)]
        source: SourceArgs,
        /// Seconds the renamed connector may take to run past the carried offsets.
        #[arg(long, default_value_t = 180)]
        verify_timeout: u64,
        /// Accept it at the carried offsets when no new data arrives.
        #[arg(long)]
        accept_idle: bool,
        /// Folder of the state file.
        #[arg(long, default_value = "migration")]
        out: PathBuf,
    },
}

/// Credentials from an API key pair or a token.
pub fn credentials(
    key: Option<String>,
    secret: Option<String>,
    token: Option<String>,
    which: &str,
) -> Result<Credentials, MigrateError> {
    match (key, secret, token) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(MigrateError::Usage(format!(
            "give the {which} either an API key and secret or a token, not both"
        ))),
        (Some(id), Some(secret), None) => Ok(Credentials::ApiKey { id, secret }),
        (Some(_), None, None) => Err(MigrateError::Usage(format!(
            "the {which}'s API key needs its secret"
        ))),
        (None, Some(_), None) => Err(MigrateError::Usage(format!(
            "the {which}'s API secret needs its key id"
        ))),
        (None, None, Some(t)) => Ok(Credentials::Token(t)),
        (None, None, None) => Ok(Credentials::None),
    }
}

impl SourceArgs {
    fn credentials(&self) -> Result<Credentials, MigrateError> {
        credentials(
            self.api_key.clone(),
            self.api_secret.clone(),
            self.token.clone(),
            "source",
        )
    }

    async fn endpoint(&self) -> Result<Endpoint, MigrateError> {
        let url = self.url.as_deref().ok_or_else(|| {
            MigrateError::Usage(format!(
                "name the source supervisor: --source URL or {SOURCE_URL_ENV}"
            ))
        })?;
        Endpoint::resolve(url, self.credentials()?).await
    }
}

impl TargetArgs {
    async fn endpoint(
        &self,
        source: &SourceArgs,
        url: Option<&str>,
    ) -> Result<Endpoint, MigrateError> {
        let url = url.or(self.url.as_deref()).ok_or_else(|| {
            MigrateError::Usage(format!("name the target: --to URL or {TARGET_URL_ENV}"))
        })?;
        let credentials = if self.target_api_key.is_none()
            && self.target_api_secret.is_none()
            && self.target_token.is_none()
        {
            source.credentials()?
        } else {
            credentials(
                self.target_api_key.clone(),
                self.target_api_secret.clone(),
                self.target_token.clone(),
                "target",
            )?
        };
        Endpoint::resolve(url, credentials).await
    }
}

/// Reads both ends and builds the plan (asking the target's translate endpoint for each mapped
/// connector when the target is not a supervisor).
pub async fn read_plan(
    source: &Endpoint,
    target: &Endpoint,
    names: &[String],
) -> Result<Plan, MigrateError> {
    let running = source.connectors().await?;
    let on_target: Vec<String> = target.connectors().await?.into_keys().collect();
    let mut entries = plan::build(&TABLE, &running, names, target.supervisor, &on_target)
        .map_err(MigrateError::Usage)?;
    if !target.supervisor {
        for e in &mut entries {
            if e.translation.outcome != mapping::Outcome::Mapped {
                continue;
            }
            let config = &running[&e.name].config;
            e.api = match target
                .translate(&e.translation.source_class, config)
                .await?
            {
                None => ApiCheck::NotServed,
                Some(answer) => plan::compare(&e.translation, &answer),
            };
        }
    }
    Ok(Plan {
        source: source.base.clone(),
        target: target.managed(""),
        target_is_supervisor: target.supervisor,
        connectors: entries,
    })
}

/// Runs one `migrate` command; its exit code.
pub async fn run(command: MigrateCommand) -> Result<u8, MigrateError> {
    match command {
        MigrateCommand::Plan {
            connectors,
            source,
            target,
            format,
            out,
        } => {
            let s = source.endpoint().await?;
            let t = target.endpoint(&source, None).await?;
            let plan = read_plan(&s, &t, &connectors).await?;
            let json = serde_json::to_string_pretty(&plan).expect("serialisable");
            if let Some(out) = out {
                super::write_file(&out.join("plan.json"), &(json.clone() + "\n"))?;
            }
            match format {
                PlanFormat::Text => print!("{}", plan::render_text(&plan)),
                PlanFormat::Json => println!("{json}"),
            }
            Ok(plan.exit_code())
        }
        MigrateCommand::Export {
            connectors,
            source,
            target,
            format,
            with_offsets,
            secret_refs,
            out,
        } => {
            let refs = SecretRef::parse(&secret_refs).map_err(MigrateError::Usage)?;
            let s = source.endpoint().await?;
            let t = target.endpoint(&source, None).await?;
            let plan = read_plan(&s, &t, &connectors).await?;
            let written = write_export(&plan, &s, &t, format, with_offsets, &refs, &out).await?;
            for line in &written {
                println!("{line}");
            }
            Ok(plan.exit_code())
        }
        MigrateCommand::Cutover {
            connector,
            source,
            target,
            mode,
            keep_source,
            target_name,
            verify_timeout,
            accept_idle,
            out,
        } => {
            let s = source.endpoint().await?;
            let options = RunOptions {
                verify_timeout: Duration::from_secs(verify_timeout),
                accept_idle,
                push: false,
                secret_values: Default::default(),
            };
            let mut state = match CutoverState::load(&out, &connector)? {
                Some(state) if !state.rolled_back && state.next().is_some() => {
                    println!(
                        "resuming the cut-over of {connector} at {} ({})",
                        state.next().map(|s| s.as_str()).unwrap_or("-"),
                        state.path(&out).display()
                    );
                    state
                }
                _ => {
                    let t = target.endpoint(&source, None).await?;
                    let plan = read_plan(&s, &t, std::slice::from_ref(&connector)).await?;
                    let entry = &plan.connectors[0];
                    if !entry.translation.is_usable() {
                        print!("{}", plan::render_text(&plan));
                        return Ok(EXIT_BLOCKED);
                    }
                    if mode != Mode::NoOffsets
                        && entry.translation.offsets == mapping::OffsetsCarry::NotCarried
                    {
                        return Err(MigrateError::Usage(format!(
                            "the offsets of {connector} do not carry over to {}: use --mode no-offsets",
                            entry
                                .translation
                                .managed_plugin
                                .as_deref()
                                .unwrap_or("the target")
                        )));
                    }
                    let name = target_name.unwrap_or_else(|| connector.clone());
                    let mut config = entry.translation.config.clone();
                    if config.contains_key("name") {
                        config.insert("name".into(), name.clone());
                    }
                    let mut state =
                        cutover::new_state(&connector, &name, mode, keep_source, &s, &t, config);
                    state.secret_sources = entry.translation.secret_sources.clone();
                    state.source_config = s
                        .connectors()
                        .await?
                        .remove(&connector)
                        .map(|c| c.config)
                        .unwrap_or_default();
                    state.record(
                        "planned",
                        format!("{connector} -> {name} on {}", state.target),
                    );
                    state.save(&out)?;
                    state
                }
            };
            let t = target.endpoint(&source, Some(&state.target)).await?;
            finish(
                cutover::run(&mut state, &s, &t, &out, &options).await,
                &state,
                &out,
            )
        }
        MigrateCommand::Rollback {
            connector,
            source,
            target,
            out,
        } => {
            let mut state = CutoverState::load(&out, &connector)?.ok_or_else(|| {
                MigrateError::Usage(format!(
                    "no cut-over of {connector} in {}",
                    cutover::state_path(&out, &connector).display()
                ))
            })?;
            if state.rolled_back {
                println!("{connector} was rolled back already");
                return Ok(EXIT_OK);
            }
            let s = if source.url.is_some() {
                source.endpoint().await?
            } else {
                Endpoint::resolve(&state.source, source.credentials()?).await?
            };
            let t = target.endpoint(&source, Some(&state.target)).await?;
            cutover::rollback(&mut state, &s, &t, &out).await?;
            println!("{connector} rolled back: it runs on {} again", state.source);
            Ok(EXIT_OK)
        }
        MigrateCommand::Adopt {
            connector,
            from,
            source,
            keep_source,
            verify_timeout,
            accept_idle,
            out,
        } => {
            let supervisor = source.endpoint().await?;
            let old = Endpoint::plain(&from, Credentials::None)?;
            // The plain worker shows its secrets in clear: they stay in memory, the state
            // file gets them masked (the default sensitive-key patterns), and a resumed run
            // reads them from the worker again.
            let resuming = CutoverState::load(&out, &connector)?
                .is_some_and(|s| !s.rolled_back && s.next().is_some());
            let config = match old.connect_config(&connector).await {
                Ok(config) => config,
                // Resumed after the old cluster let go of it: nothing is left to create.
                Err(_) if resuming => Default::default(),
                Err(e) => return Err(e),
            };
            let rules = crate::model::SecretRules::default();
            let secret_values: std::collections::BTreeMap<String, String> = config
                .iter()
                .filter(|(k, v)| rules.is_sensitive(k) && v.as_str() != crate::translate::MASK)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let masked: std::collections::BTreeMap<String, String> = config
                .iter()
                .map(|(k, v)| {
                    let shown = if secret_values.contains_key(k) {
                        crate::translate::MASK.to_string()
                    } else {
                        v.clone()
                    };
                    (k.clone(), shown)
                })
                .collect();
            let options = RunOptions {
                verify_timeout: Duration::from_secs(verify_timeout),
                accept_idle,
                push: false,
                secret_values: secret_values.clone(),
            };
            let mut state = match CutoverState::load(&out, &connector)? {
                Some(state) if !state.rolled_back && state.next().is_some() => state,
                _ => {
                    let t = mapping::identity(&TABLE, &masked);
                    let config = masked;
                    let mut state = cutover::new_state(
                        &connector,
                        &connector,
                        Mode::StopThenCreate,
                        keep_source,
                        &old,
                        &supervisor,
                        t.config,
                    );
                    state.source_config = config;
                    state.record("adopt_planned", format!("{connector} from {from}"));
                    state
                }
            };
            // The guardrails judge the config before anything stops: a refused connector is
            // reported and keeps running where it is.
            let class = state
                .config
                .get("connector.class")
                .cloned()
                .unwrap_or_default();
            if state.done.is_empty() {
                let mut review_config = state.config.clone();
                review_config.extend(secret_values.clone());
                let review = supervisor
                    .call(
                        reqwest::Method::PUT,
                        &supervisor.managed(&format!("/connector-plugins/{class}/config/validate")),
                        Some(&json!(review_config)),
                    )
                    .await?;
                let errors = review.body["error_count"].as_u64().unwrap_or(0);
                if review.status != 200 || errors > 0 {
                    let problems: Vec<String> = review.body["configs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|c| {
                            c["value"]["errors"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(|e| e.as_str().map(str::to_string))
                        })
                        .collect();
                    println!(
                        "{connector} is not adopted: the department refuses it ({}): {}",
                        if review.status != 200 {
                            review.message()
                        } else {
                            format!("{errors} error(s)")
                        },
                        problems.join("; ")
                    );
                    return Ok(EXIT_BLOCKED);
                }
                state.save(&out)?;
            }
            finish(
                cutover::run(&mut state, &old, &supervisor, &out, &options).await,
                &state,
                &out,
            )
        }
        MigrateCommand::Rename {
            old,
            new,
            source,
            verify_timeout,
            accept_idle,
            out,
        } => {
            let end = source.endpoint().await?;
            let options = RunOptions {
                verify_timeout: Duration::from_secs(verify_timeout),
                accept_idle,
                push: false,
                secret_values: Default::default(),
            };
            let state = cutover::rename(&end, &old, &new, &out, &options).await?;
            println!(
                "{old} renamed to {new} with {} offset(s) carried",
                state.carried_offsets.len()
            );
            Ok(EXIT_OK)
        }
    }
}

fn finish(
    result: Result<(), MigrateError>,
    state: &CutoverState,
    out: &Path,
) -> Result<u8, MigrateError> {
    result?;
    println!(
        "{} moved to {} as {} ({:?}, {} offset(s) carried{}); state in {}",
        state.connector,
        state.target,
        state.target_name,
        state.mode,
        if state.mode == Mode::NoOffsets {
            0
        } else {
            state.carried_offsets.len()
        },
        state
            .seconds_stopped
            .map(|s| format!(", {s:.1}s from stop to verified"))
            .unwrap_or_default(),
        state.path(out).display()
    );
    Ok(EXIT_OK)
}

/// Writes the export files; one line per file written or connector skipped.
pub async fn write_export(
    plan: &Plan,
    source: &Endpoint,
    target: &Endpoint,
    format: ExportFormat,
    with_offsets: bool,
    refs: &SecretRef,
    out: &Path,
) -> Result<Vec<String>, MigrateError> {
    let mut lines = Vec::new();
    if format == ExportFormat::Terraform {
        let path = out.join(export::TERRAFORM_MAIN);
        super::write_file(
            &path,
            &export::terraform_main(&target.environment_id, &target.kafka_cluster_id),
        )?;
        lines.push(format!("wrote {}", path.display()));
    }
    for e in &plan.connectors {
        if !e.translation.is_usable() {
            lines.push(format!(
                "skipped {}: it cannot move (see `migrate plan`)",
                e.name
            ));
            continue;
        }
        let offsets = if with_offsets {
            Some(source.offsets(&e.name).await?)
        } else {
            None
        };
        let (path, text) = match format {
            ExportFormat::ManagedJson => (
                out.join(format!("{}.json", e.name)),
                serde_json::to_string_pretty(&export::managed_json(
                    &e.name,
                    &e.translation,
                    refs,
                    offsets.as_deref(),
                ))
                .expect("serialisable")
                    + "\n",
            ),
            ExportFormat::Terraform => (
                out.join(format!("{}.tf", e.name)),
                export::terraform(
                    &e.name,
                    &e.translation,
                    offsets.as_deref(),
                    e.exists_on_target.then_some((
                        target.environment_id.as_str(),
                        target.kafka_cluster_id.as_str(),
                    )),
                ),
            ),
        };
        super::write_file(&path, &text)?;
        lines.push(format!("wrote {}", path.display()));
    }
    Ok(lines)
}
