//! `webscaler cloud`: the operator's commands on the configured provider (the seed's
//! `nova.py main()`): list, create, start, stop, delete, quota.
//!
//! [`ProviderArgs`] (the provider choice and its settings) is shared with the commands that
//! drive a cloud (`webscaler run`): flatten it into their arguments and call
//! [`ProviderArgs::open`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use common::cli::UsageError;
use common::table::Table;

use crate::cloud::local::{self, LocalCloud, LocalOptions};
use crate::cloud::openstack::config::{self as osconfig, Env, Overrides};
use crate::cloud::openstack::{OpenStack, OpenStackOptions, ServerSpec};
use crate::cloud::{Backend, Cloud, CloudError, Status};

/// The cloud-init script sent as `user_data` when `--user-data` is not given: the seed's
/// `etc/clouddata.txt` (installs Apache; its default page says "It works!").
pub const DEFAULT_CLOUD_INIT: &str = include_str!("../../../../etc/clouddata.txt");

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Local processes on 127.0.0.1.
    Local,
    /// OpenStack (Keystone v3 + Nova).
    Openstack,
}

/// The provider and its settings.
#[derive(Debug, Clone, Args)]
pub struct ProviderArgs {
    /// The provider [default: openstack if a cloud is configured (--os-cloud, OS_CLOUD,
    /// OS_AUTH_URL, --openstack-cfg or ./etc/openstack.cfg), else local].
    #[arg(long, value_enum, env = "WEBSCALER_PROVIDER", global = true)]
    pub provider: Option<Provider>,

    /// Name prefix of the backends [default: node-].
    #[arg(long, global = true)]
    pub prefix: Option<String>,

    /// Local: where the state file and backend logs live [default:
    /// $XDG_STATE_HOME/webscaler or ~/.local/state/webscaler].
    #[arg(long, env = "WEBSCALER_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Local: the command of a backend; {port}, {name}, {id} and {host} are replaced
    /// [default: lbbench backend --port {port} --name {name}].
    #[arg(long, env = "WEBSCALER_BACKEND_COMMAND", global = true)]
    pub command: Option<String>,

    /// Local: seconds a backend takes to "boot", imitating a cloud [default: 0].
    #[arg(long, global = true, value_name = "SECS")]
    pub boot_delay: Option<f64>,

    /// Local: how many backends may exist (running or stopped); 0 = unlimited [default: 20].
    #[arg(long, global = true, value_name = "N")]
    pub max_backends: Option<u64>,

    /// Local: seconds between SIGTERM and SIGKILL when stopping a backend [default: 5].
    #[arg(long, global = true, value_name = "SECS")]
    pub grace: Option<f64>,

    /// OpenStack: the cloud of clouds.yaml to use (or OS_CLOUD).
    #[arg(long, global = true, value_name = "NAME")]
    pub os_cloud: Option<String>,
    /// OpenStack: the seed's credentials file ([main] USERNAME, PASSWORD, AUTH_URL, TENANT_NAME).
    #[arg(long, global = true, value_name = "FILE")]
    pub openstack_cfg: Option<PathBuf>,
    /// OpenStack: Keystone URL (or OS_AUTH_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub os_auth_url: Option<String>,
    /// OpenStack: password or v3applicationcredential (or OS_AUTH_TYPE).
    #[arg(long, global = true, value_name = "TYPE")]
    pub os_auth_type: Option<String>,
    /// OpenStack: user name (or OS_USERNAME).
    #[arg(long, global = true)]
    pub os_username: Option<String>,
    /// OpenStack: user id (or OS_USER_ID).
    #[arg(long, global = true)]
    pub os_user_id: Option<String>,
    /// OpenStack: password (or OS_PASSWORD; better in secure.yaml than on a command line).
    #[arg(long, global = true, hide_env_values = true)]
    pub os_password: Option<String>,
    /// OpenStack: project name (or OS_PROJECT_NAME, OS_TENANT_NAME).
    #[arg(long, global = true)]
    pub os_project_name: Option<String>,
    /// OpenStack: project id (or OS_PROJECT_ID).
    #[arg(long, global = true)]
    pub os_project_id: Option<String>,
    /// OpenStack: the user's domain name (or OS_USER_DOMAIN_NAME).
    #[arg(long, global = true)]
    pub os_user_domain_name: Option<String>,
    /// OpenStack: the user's domain id (or OS_USER_DOMAIN_ID).
    #[arg(long, global = true)]
    pub os_user_domain_id: Option<String>,
    /// OpenStack: the project's domain name (or OS_PROJECT_DOMAIN_NAME).
    #[arg(long, global = true)]
    pub os_project_domain_name: Option<String>,
    /// OpenStack: the project's domain id (or OS_PROJECT_DOMAIN_ID).
    #[arg(long, global = true)]
    pub os_project_domain_id: Option<String>,
    /// OpenStack: application credential id (or OS_APPLICATION_CREDENTIAL_ID).
    #[arg(long, global = true)]
    pub os_application_credential_id: Option<String>,
    /// OpenStack: application credential name (or OS_APPLICATION_CREDENTIAL_NAME).
    #[arg(long, global = true)]
    pub os_application_credential_name: Option<String>,
    /// OpenStack: application credential secret (or OS_APPLICATION_CREDENTIAL_SECRET).
    #[arg(long, global = true)]
    pub os_application_credential_secret: Option<String>,
    /// OpenStack: region (or OS_REGION_NAME).
    #[arg(long, global = true)]
    pub os_region_name: Option<String>,
    /// OpenStack: endpoint interface, public, internal or admin (or OS_INTERFACE).
    #[arg(long, global = true)]
    pub os_interface: Option<String>,
    /// OpenStack: CA bundle to verify TLS with (or OS_CACERT, `cacert` in clouds.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    pub os_cacert: Option<PathBuf>,
    /// OpenStack: client certificate (or OS_CERT).
    #[arg(long, global = true, value_name = "FILE")]
    pub os_cert: Option<PathBuf>,
    /// OpenStack: client key (or OS_KEY).
    #[arg(long, global = true, value_name = "FILE")]
    pub os_key: Option<PathBuf>,
    /// OpenStack: do not verify TLS certificates (or OS_INSECURE).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// OpenStack: Nova microversion to request, e.g. 2.37 [default: 2.1].
    #[arg(long, global = true, value_name = "VERSION")]
    pub os_compute_api_version: Option<String>,

    /// OpenStack: image of new backends, by name or id (or WEBSCALER_IMAGE).
    #[arg(long, env = "WEBSCALER_IMAGE", global = true)]
    pub image: Option<String>,
    /// OpenStack: flavor of new backends (or WEBSCALER_FLAVOR).
    #[arg(long, env = "WEBSCALER_FLAVOR", global = true)]
    pub flavor: Option<String>,
    /// OpenStack: network of new backends (or WEBSCALER_NETWORK).
    #[arg(long, env = "WEBSCALER_NETWORK", global = true)]
    pub network: Option<String>,
    /// OpenStack: keypair of new backends (or WEBSCALER_KEY_NAME).
    #[arg(long, env = "WEBSCALER_KEY_NAME", global = true)]
    pub key_name: Option<String>,
    /// OpenStack: security group of new backends (repeatable).
    #[arg(long = "security-group", global = true, value_name = "NAME")]
    pub security_groups: Vec<String>,
    /// OpenStack: cloud-init user data of new backends [default: the built-in
    /// etc/clouddata.txt].
    #[arg(long, global = true, value_name = "FILE")]
    pub user_data: Option<PathBuf>,
    /// OpenStack: seconds before one HTTP request times out [default: 30].
    #[arg(long, global = true, value_name = "SECS")]
    pub http_timeout: Option<f64>,
}

fn secs(what: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        UsageError::new(format!("{what} must be a number of seconds ≥ 0, got {v}")).into()
    })
}

/// A cloud error as the CLI reports it: configuration problems are bad input (exit 2).
pub fn cli_error(e: CloudError) -> anyhow::Error {
    match e {
        CloudError::Config { message } => UsageError::new(message).into(),
        e => e.into(),
    }
}

impl ProviderArgs {
    /// The OpenStack overrides given by flags.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides {
            cloud: self.os_cloud.clone(),
            openstack_cfg: self.openstack_cfg.clone(),
            ..Overrides::default()
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        o.set("auth_url", self.os_auth_url.clone());
        o.set("auth_type", self.os_auth_type.clone());
        o.set("username", self.os_username.clone());
        o.set("user_id", self.os_user_id.clone());
        o.set("password", self.os_password.clone());
        o.set("project_name", self.os_project_name.clone());
        o.set("project_id", self.os_project_id.clone());
        o.set("user_domain_name", self.os_user_domain_name.clone());
        o.set("user_domain_id", self.os_user_domain_id.clone());
        o.set("project_domain_name", self.os_project_domain_name.clone());
        o.set("project_domain_id", self.os_project_domain_id.clone());
        o.set(
            "application_credential_id",
            self.os_application_credential_id.clone(),
        );
        o.set(
            "application_credential_name",
            self.os_application_credential_name.clone(),
        );
        o.set(
            "application_credential_secret",
            self.os_application_credential_secret.clone(),
        );
        o.set("region_name", self.os_region_name.clone());
        o.set("interface", self.os_interface.clone());
        o.set("cacert", path(&self.os_cacert));
        o.set("cert", path(&self.os_cert));
        o.set("key", path(&self.os_key));
        if self.insecure {
            o.set("insecure", Some("true".into()));
        }
        o.set("compute_api_version", self.os_compute_api_version.clone());
        o
    }

    /// The name prefix of backends.
    pub fn prefix(&self) -> &str {
        self.prefix
            .as_deref()
            .unwrap_or(crate::cloud::DEFAULT_PREFIX)
    }

    /// The state directory of the local provider (and of `webscaler run`).
    pub fn state_dir(&self, env: &Env) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| local::default_state_dir(|k| env.vars.get(k).cloned()))
    }

    /// Fills the settings that were given neither as flags nor as variables from a
    /// configuration file's `[cloud]` table (flags and variables win over the file).
    pub fn fill_from(&mut self, file: &crate::config::CloudFile) {
        fn fill<T: Clone>(slot: &mut Option<T>, v: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(v);
            }
        }
        fill(&mut self.provider, &file.provider);
        fill(&mut self.prefix, &file.prefix);
        fill(&mut self.state_dir, &file.state_dir);
        fill(&mut self.command, &file.command);
        fill(
            &mut self.boot_delay,
            &file.boot_delay.map(|d| d.0.as_secs_f64()),
        );
        fill(&mut self.max_backends, &file.max_backends);
        fill(&mut self.grace, &file.grace.map(|d| d.0.as_secs_f64()));
        fill(&mut self.os_cloud, &file.os_cloud);
        fill(&mut self.openstack_cfg, &file.openstack_cfg);
        fill(&mut self.os_region_name, &file.os_region_name);
        fill(&mut self.image, &file.image);
        fill(&mut self.flavor, &file.flavor);
        fill(&mut self.network, &file.network);
        fill(&mut self.key_name, &file.key_name);
        if self.security_groups.is_empty() {
            self.security_groups = file.security_groups.clone().unwrap_or_default();
        }
        fill(&mut self.user_data, &file.user_data);
        fill(
            &mut self.http_timeout,
            &file.http_timeout.map(|d| d.0.as_secs_f64()),
        );
    }

    /// The provider these arguments select in this environment.
    pub fn provider(&self, env: &Env) -> Provider {
        self.provider.unwrap_or_else(|| {
            if osconfig::is_configured(env, &self.overrides()) {
                Provider::Openstack
            } else {
                Provider::Local
            }
        })
    }

    /// Opens the selected provider.
    pub fn open(&self, env: &Env) -> Result<Box<dyn Cloud + Send + Sync>> {
        if self.prefix().is_empty() {
            bail!(UsageError::new("--prefix must not be empty"));
        }
        match self.provider(env) {
            Provider::Local => {
                let state_dir = self.state_dir(env);
                let opts = LocalOptions {
                    state_dir,
                    command: self
                        .command
                        .clone()
                        .unwrap_or_else(|| local::DEFAULT_COMMAND.to_owned()),
                    prefix: self.prefix().to_owned(),
                    boot_delay: secs("--boot-delay", self.boot_delay.unwrap_or(0.0))?,
                    grace: secs("--grace", self.grace.unwrap_or(5.0))?,
                    max_backends: match self.max_backends.unwrap_or(local::DEFAULT_MAX_BACKENDS) {
                        0 => None,
                        n => Some(n),
                    },
                };
                Ok(Box::new(LocalCloud::new(opts).map_err(cli_error)?))
            }
            Provider::Openstack => {
                let cfg = osconfig::resolve(env, &self.overrides()).map_err(cli_error)?;
                let user_data = match &self.user_data {
                    Some(p) => std::fs::read(p)
                        .with_context(|| format!("cannot read user data {}", p.display()))?,
                    None => DEFAULT_CLOUD_INIT.as_bytes().to_vec(),
                };
                let opts = OpenStackOptions {
                    prefix: self.prefix().to_owned(),
                    server: ServerSpec {
                        image: self.image.clone(),
                        flavor: self.flavor.clone(),
                        network: self.network.clone(),
                        key_name: self.key_name.clone(),
                        security_groups: self.security_groups.clone(),
                        user_data: Some(user_data),
                    },
                    timeout: secs("--http-timeout", self.http_timeout.unwrap_or(30.0))?,
                    ..OpenStackOptions::default()
                };
                Ok(Box::new(OpenStack::new(&cfg, opts).map_err(cli_error)?))
            }
        }
    }
}

/// `webscaler cloud`.
#[derive(Debug, Args)]
pub struct CloudArgs {
    /// The provider.
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: CloudCommand,
}

/// The subcommands of `webscaler cloud`.
#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// List the backends: name, status, address, id, creation time.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create N backends, named after the highest existing number.
    Create {
        /// How many.
        count: usize,
        /// Wait until they are ACTIVE.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 600.0, value_name = "SECS")]
        timeout: f64,
        /// With --wait: seconds between polls [default: 0.2 local, 2 OpenStack].
        #[arg(long, value_name = "SECS")]
        poll_interval: Option<f64>,
    },
    /// Start stopped backends.
    Start {
        /// Backend names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop backends (they stay, and start again quickly).
    Stop {
        /// Backend names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Delete backends.
    Delete {
        /// Backend names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show the resolved configuration of the provider (secrets redacted), without
    /// contacting the cloud: for OpenStack, what clouds.yaml, secure.yaml, the OS_*
    /// variables and the flags resolve to.
    Config {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the quota: instances used and limit, and how many more backends fit.
    Quota {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `webscaler cloud` with the process environment.
pub fn run(args: CloudArgs) -> Result<()> {
    let env = Env::from_process();
    let mut out = std::io::stdout().lock();
    run_with(args, &env, &mut out)
}

fn status_text(b: &Backend) -> String {
    match &b.task {
        Some(t) => format!("{} ({t})", b.status),
        None => b.status.to_string(),
    }
}

/// Runs `webscaler cloud` in `env`, writing the results to `out`.
pub fn run_with(args: CloudArgs, env: &Env, out: &mut dyn std::io::Write) -> Result<()> {
    let provider = args.provider.provider(env);
    if let CloudCommand::Config { json } = args.command {
        return show_config(&args.provider, provider, env, json, out);
    }
    let cloud = args.provider.open(env)?;
    match args.command {
        CloudCommand::List { json } => {
            let backends = cloud.list().map_err(cli_error)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &backends)?;
                writeln!(out)?;
            } else {
                let mut table = Table::new(["NAME", "STATUS", "ADDRESS", "ID", "CREATED"]);
                for b in &backends {
                    table.row([
                        b.name.clone(),
                        status_text(b),
                        b.address
                            .map(|a| a.to_string())
                            .unwrap_or_else(|| "-".into()),
                        b.id.clone(),
                        b.created
                            .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                write!(out, "{table}")?;
            }
        }
        CloudCommand::Create {
            count,
            wait,
            timeout,
            poll_interval,
        } => {
            let created = cloud.create(count).map_err(cli_error)?;
            let mut failed = Vec::new();
            let mut ok = Vec::new();
            for c in created {
                match c.result {
                    Ok(b) => {
                        writeln!(out, "created {} ({}, id {})", b.name, status_text(&b), b.id)?;
                        ok.push(b.name);
                    }
                    Err(e) => failed.push(format!("{}: {e}", c.name)),
                }
            }
            if wait && !ok.is_empty() {
                let every = poll_interval.unwrap_or(match provider {
                    Provider::Local => 0.2,
                    Provider::Openstack => 2.0,
                });
                wait_active(
                    cloud.as_ref(),
                    &ok,
                    secs("--timeout", timeout)?,
                    secs("--poll-interval", every)?,
                )?;
                writeln!(out, "active: {}", ok.join(" "))?;
            }
            if !failed.is_empty() {
                bail!(
                    "{} of {count} not created: {}",
                    failed.len(),
                    failed.join("; ")
                );
            }
        }
        CloudCommand::Start { names } => {
            act(cloud.as_ref(), &names, out, "started", |c, b| c.start(b))?
        }
        CloudCommand::Stop { names } => {
            act(cloud.as_ref(), &names, out, "stopped", |c, b| c.stop(b))?
        }
        CloudCommand::Delete { names } => {
            act(cloud.as_ref(), &names, out, "deleted", |c, b| c.delete(b))?
        }
        CloudCommand::Config { .. } => unreachable!("handled before the provider is opened"),
        CloudCommand::Quota { json } => {
            let q = cloud.quota().map_err(cli_error)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &q)?;
                writeln!(out)?;
            } else {
                let lim = |l: &crate::cloud::Limit| match l.max {
                    Some(m) => format!("{} used of {m}", l.used),
                    None => format!("{} used, unlimited", l.used),
                };
                writeln!(out, "instances: {}", lim(&q.instances))?;
                if let Some(c) = &q.cores {
                    writeln!(out, "cores: {}", lim(c))?;
                }
                if let Some(r) = &q.ram_mb {
                    writeln!(out, "ram (MiB): {}", lim(r))?;
                }
                match q.left {
                    Some(n) => writeln!(out, "backends that still fit: {n}")?,
                    None => writeln!(out, "backends that still fit: unlimited")?,
                }
            }
        }
    }
    Ok(())
}

/// `webscaler cloud config`: resolves, never connects.
fn show_config(
    args: &ProviderArgs,
    provider: Provider,
    env: &Env,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let v = match provider {
        Provider::Local => serde_json::json!({
            "provider": "local",
            "state_dir": args.state_dir(env).display().to_string(),
            "command": args.command.clone().unwrap_or_else(|| local::DEFAULT_COMMAND.to_owned()),
            "prefix": args.prefix(),
        }),
        Provider::Openstack => {
            let cfg = osconfig::resolve(env, &args.overrides()).map_err(cli_error)?;
            let mut v = cfg.to_redacted_json();
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("provider".into(), "openstack".into());
                m.insert("prefix".into(), args.prefix().into());
            }
            v
        }
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
    } else if let serde_json::Value::Object(m) = &v {
        for (k, val) in m {
            match val {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => writeln!(out, "{k}: {s}")?,
                other => writeln!(out, "{k}: {other}")?,
            }
        }
    }
    Ok(())
}

fn act(
    cloud: &(dyn Cloud + Send + Sync),
    names: &[String],
    out: &mut dyn std::io::Write,
    done: &str,
    f: impl Fn(&(dyn Cloud + Send + Sync), &Backend) -> Result<(), CloudError>,
) -> Result<()> {
    let backends = cloud.list().map_err(cli_error)?;
    let mut chosen = Vec::new();
    let mut unknown = Vec::new();
    for n in names {
        match backends.iter().filter(|b| &b.name == n).collect::<Vec<_>>()[..] {
            [b] => chosen.push(b),
            [] => unknown.push(n.as_str()),
            ref several => bail!(UsageError::new(format!(
                "{} backends are named {n} ({}); refusing to guess",
                several.len(),
                several
                    .iter()
                    .map(|b| b.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
    if !unknown.is_empty() {
        bail!(UsageError::new(format!(
            "no backend named {} (see `webscaler cloud list`)",
            unknown.join(", ")
        )));
    }
    let mut failed = Vec::new();
    for b in chosen {
        match f(cloud, b) {
            Ok(()) => writeln!(out, "{done} {}", b.name)?,
            Err(e) => failed.push(e.to_string()),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

fn wait_active(
    cloud: &(dyn Cloud + Send + Sync),
    names: &[String],
    timeout: Duration,
    every: Duration,
) -> Result<()> {
    let mut last = String::new();
    let r = common::wait::poll_until("the new backends to be ACTIVE", timeout, every, || {
        let list = match cloud.list() {
            Ok(l) => l,
            Err(e) => {
                last = e.to_string();
                return None;
            }
        };
        let mine: Vec<&Backend> = list.iter().filter(|b| names.contains(&b.name)).collect();
        if let Some(b) = mine.iter().find(|b| b.status == Status::Error) {
            return Some(Err(anyhow::anyhow!("{} went to ERROR", b.name)));
        }
        last = mine
            .iter()
            .map(|b| format!("{} {}", b.name, b.status))
            .collect::<Vec<_>>()
            .join(", ");
        (mine.len() == names.len() && mine.iter().all(|b| b.is_running())).then_some(Ok(()))
    });
    match r {
        Ok(r) => r,
        Err(e) => bail!("{e} (last seen: {last})"),
    }
}
