//! The config-resolution oracle: for a matrix of clouds.yaml / secure.yaml / OS_* / flag
//! cases, what `webscaler cloud config --json` resolves must agree with what the real
//! OpenStack CLI (python-openstackclient, osc-lib, openstacksdk, keystoneauth1; Debian's
//! python3-openstackclient, installed by scripts/setup.sh) would authenticate with.
//!
//! The CLI side is `tests/openstack/osc_resolve.py`: it builds the `openstack` shell from the
//! same arguments and environment and runs `ClientManager.setup_auth()`, which loads the
//! keystoneauth plugin without sending anything. Both programs run with a cleared
//! environment, a temporary HOME and working directory, and the same argv of `--os-*` flags.
//!
//! Compared: auth_url (both normalized to the v3 root), the auth type, the user (id, or name
//! and domain), the project (id, or name and domain), the application credential (id, or
//! name and user), whether the secret is there, region_name, interface, verify, cacert,
//! cert and key. Ids beat names the way keystoneauth builds its request (a user or project
//! given by id is sent without a domain), so the comparison is of what would be sent.
//!
//! Every auth_url points at 127.0.0.1, at a port this test holds open and checks nobody
//! connected to: resolution must never touch the network.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

const ORACLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/openstack/osc_resolve.py"
);

/// Where a file of a case goes.
#[derive(Clone, Copy)]
enum Dir {
    /// The working directory.
    Cwd,
    /// `~/.config/openstack`.
    HomeConfig,
    /// `$XDG_CONFIG_HOME/openstack`, with XDG_CONFIG_HOME=<tmp>/xdg.
    Xdg,
    /// `<tmp>/elsewhere`, for OS_CLIENT_CONFIG_FILE / OS_CLIENT_SECURE_FILE.
    Elsewhere,
}

struct Case {
    name: &'static str,
    files: Vec<(Dir, &'static str, String)>,
    vars: Vec<(&'static str, String)>,
    flags: Vec<String>,
    /// Both must refuse the configuration.
    error: bool,
    /// A documented deviation (docs/webscaler-cloud.md, notes §5): both sides are printed
    /// and must differ, so the deviation cannot disappear unnoticed.
    deviation: Option<&'static str>,
}

impl Case {
    fn new(name: &'static str) -> Case {
        Case {
            name,
            files: Vec::new(),
            vars: Vec::new(),
            flags: Vec::new(),
            error: false,
            deviation: None,
        }
    }
    fn file(mut self, dir: Dir, name: &'static str, text: &str) -> Case {
        self.files.push((dir, name, text.to_owned()));
        self
    }
    fn var(mut self, k: &'static str, v: &str) -> Case {
        self.vars.push((k, v.to_owned()));
        self
    }
    fn flag(mut self, f: &str, v: &str) -> Case {
        self.flags.push(f.to_owned());
        if !v.is_empty() {
            self.flags.push(v.to_owned());
        }
        self
    }
    fn fails(mut self) -> Case {
        self.error = true;
        self
    }
    fn deviates(mut self, why: &'static str) -> Case {
        self.deviation = Some(why);
        self
    }
}

/// `{AUTH}` in case texts becomes this test's closed-to-the-world auth URL.
fn subst(s: &str, auth: &str) -> String {
    s.replace("{AUTH}", auth)
}

const LAB_NAMES: &str = r#"
clouds:
  lab:
    auth:
      auth_url: {AUTH}/v3
      username: alice
      password: pw-lab
      project_name: webfarm
      user_domain_name: Users
      project_domain_name: Projects
    region_name: RegionOne
    interface: internal
    identity_api_version: 3
"#;

const LAB_IDS: &str = r#"
clouds:
  ids:
    auth:
      auth_url: {AUTH}
      user_id: 0a1b2c
      password: pw-ids
      project_id: 9f8e7d
    region_name: RegionTwo
  names:
    auth:
      auth_url: {AUTH}/v3/
      username: bob
      password: pw-names
      project_name: shop
      user_domain_id: d-users
      project_domain_id: d-projects
"#;

const REGIONS: &str = r#"
clouds:
  multi:
    auth:
      auth_url: {AUTH}/v3
      username: carol
      password: pw
      project_name: p
    identity_api_version: 3
    regions:
      - North
      - South
"#;

const NO_SECRET: &str = r#"
clouds:
  lab:
    auth:
      auth_url: {AUTH}/v3
      username: alice
      project_name: webfarm
      user_domain_name: Users
      project_domain_id: default
    region_name: RegionOne
"#;

// The documented deviations (docs/webscaler-cloud.md, "Where webscaler differs from the
// openstack CLI"). Each has a case below that must still show it.

/// A user or project name with no domain anywhere.
const DEFAULT_DOMAIN: &str = "without identity_api_version 3 the CLI sends a user or project name \
     with no domain, which Keystone v3 refuses (400 'Expecting to find domain'); webscaler uses \
     the default domain (OS_DEFAULT_DOMAIN, else `default`), as the CLI does with version 3";
/// One cloud in clouds.yaml and none named.
const ONLY_CLOUD: &str = "the openstack CLI 6.0 passes cloud=None and ignores the only cloud; \
     webscaler uses it, as openstacksdk's loader (openstack/config/loader.py) does";
/// Flags and OS_* variables over clouds.yaml's project and domain keys.
const PROJECT_KEYS: &str = "for project and domain keys openstacksdk's _fix_backwards_project \
     lets clouds.yaml's auth: value beat OS_* and flags; webscaler keeps flags > OS_* > \
     clouds.yaml for every key, as the CLI does for the region and the interface";
/// Application-credential variables without OS_AUTH_TYPE.
const APP_CRED_INFERRED: &str = "the CLI resolves auth_type password and then lacks a user; \
     webscaler infers v3applicationcredential, the type Horizon's application-credential \
     openrc sets";

fn cases() -> Vec<Case> {
    use Dir::*;
    vec![
        // clouds.yaml alone.
        Case::new("password by names with domain names, OS_CLOUD")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab"),
        Case::new("password by ids, --os-cloud, unversioned auth_url")
            .file(HomeConfig, "clouds.yaml", LAB_IDS)
            .flag("--os-cloud", "ids"),
        Case::new("password by names with domain ids, trailing slash")
            .file(HomeConfig, "clouds.yaml", LAB_IDS)
            .var("OS_CLOUD", "names"),
        Case::new("--os-cloud beats OS_CLOUD")
            .file(HomeConfig, "clouds.yaml", LAB_IDS)
            .var("OS_CLOUD", "ids")
            .flag("--os-cloud", "names"),
        Case::new("no domain given: the default domain (identity_api_version 3)")
            .file(
                Cwd,
                "clouds.yaml",
                "clouds:\n  d:\n    identity_api_version: 3\n    auth:\n      auth_url: {AUTH}/v3\n      username: u\n      password: p\n      project_name: pr\n",
            )
            .var("OS_CLOUD", "d"),
        Case::new("domain_id in auth: both domains")
            .file(
                Cwd,
                "clouds.yaml",
                "clouds:\n  d:\n    auth:\n      auth_url: {AUTH}/v3\n      username: u\n      password: p\n      project_name: pr\n      domain_id: dom-1\n",
            )
            .var("OS_CLOUD", "d"),
        Case::new("domain_name in auth, user_domain_id given")
            .file(
                Cwd,
                "clouds.yaml",
                "clouds:\n  d:\n    auth:\n      auth_url: {AUTH}/v3\n      username: u\n      password: p\n      project_name: pr\n      domain_name: Dom\n      user_domain_id: d-u\n",
            )
            .var("OS_CLOUD", "d"),
        Case::new("default_domain in clouds.yaml is overridden by the CLI's default")
            .file(
                Cwd,
                "clouds.yaml",
                "clouds:\n  d:\n    identity_api_version: 3\n    default_domain: dom-7\n    auth:\n      auth_url: {AUTH}/v3\n      username: u\n      password: p\n      project_name: pr\n",
            )
            .var("OS_CLOUD", "d"),
        Case::new("OS_DEFAULT_DOMAIN")
            .var("OS_AUTH_URL", "{AUTH}/v3")
            .var("OS_IDENTITY_API_VERSION", "3")
            .var("OS_DEFAULT_DOMAIN", "dom-8")
            .var("OS_USERNAME", "u")
            .var("OS_PASSWORD", "p")
            .var("OS_PROJECT_NAME", "pr")
            .var("OS_USER_DOMAIN_NAME", "Users"),
        Case::new("no domain and no identity_api_version")
            .file(
                Cwd,
                "clouds.yaml",
                "clouds:\n  d:\n    auth:\n      auth_url: {AUTH}/v3\n      username: u\n      password: p\n      project_name: pr\n",
            )
            .var("OS_CLOUD", "d")
            .deviates(DEFAULT_DOMAIN),
        Case::new("legacy tenant_name in clouds.yaml")
            .file(
                Cwd,
                "clouds.yaml",
                "clouds:\n  old:\n    auth:\n      auth_url: {AUTH}/v2.0\n      username: s171201\n      password: p\n      tenant_name: MS016A\n",
            )
            .var("OS_CLOUD", "old")
            .deviates(DEFAULT_DOMAIN),
        Case::new("the only cloud is used without naming it")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .deviates(ONLY_CLOUD),
        Case::new("several clouds and none named: refused")
            .file(HomeConfig, "clouds.yaml", LAB_IDS)
            .fails(),
        Case::new("OS_CLOUD names a missing cloud: refused")
            .file(HomeConfig, "clouds.yaml", LAB_IDS)
            .var("OS_CLOUD", "nope")
            .fails(),
        Case::new("clouds.json")
            .file(
                HomeConfig,
                "clouds.json",
                r#"{"clouds": {"j": {"auth": {"auth_url": "{AUTH}/v3", "user_id": "u1", "password": "p", "project_id": "p1"}, "interface": "admin"}}}"#,
            )
            .var("OS_CLOUD", "j"),
        // secure.yaml.
        Case::new("secure.yaml supplies the password")
            .file(Cwd, "clouds.yaml", NO_SECRET)
            .file(HomeConfig, "secure.yaml", "clouds:\n  lab:\n    auth:\n      password: from-secure\n")
            .var("OS_CLOUD", "lab"),
        Case::new("secure.yaml wins over clouds.yaml, key by key")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .file(
                HomeConfig,
                "secure.yaml",
                "clouds:\n  lab:\n    auth:\n      password: s\n      project_name: secure-project\n    interface: admin\n",
            )
            .var("OS_CLOUD", "lab"),
        Case::new("OS_CLIENT_CONFIG_FILE and OS_CLIENT_SECURE_FILE")
            .file(Elsewhere, "my-clouds.yaml", NO_SECRET)
            .file(Elsewhere, "my-secure.yaml", "clouds:\n  lab:\n    auth:\n      password: x\n")
            .file(HomeConfig, "clouds.yaml", LAB_IDS)
            .var("OS_CLIENT_CONFIG_FILE", "{ELSEWHERE}/my-clouds.yaml")
            .var("OS_CLIENT_SECURE_FILE", "{ELSEWHERE}/my-secure.yaml")
            .var("OS_CLOUD", "lab"),
        // Search paths: the first clouds.yaml found wins.
        Case::new("./clouds.yaml beats ~/.config/openstack")
            .file(Cwd, "clouds.yaml", "clouds:\n  lab:\n    auth:\n      auth_url: {AUTH}/v3\n      user_id: from-cwd\n      password: p\n      project_id: x\n")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab"),
        Case::new("$XDG_CONFIG_HOME/openstack beats ~/.config/openstack")
            .file(Xdg, "clouds.yaml", "clouds:\n  lab:\n    auth:\n      auth_url: {AUTH}/v3\n      user_id: from-xdg\n      password: p\n      project_id: x\n")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab"),
        Case::new("~/.config/openstack is still searched when XDG_CONFIG_HOME has none")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("XDG_CONFIG_HOME", "{XDG}")
            .var("OS_CLOUD", "lab"),
        // Application credentials.
        Case::new("application credential by id in clouds.yaml")
            .file(
                HomeConfig,
                "clouds.yaml",
                "clouds:\n  ac:\n    auth_type: v3applicationcredential\n    identity_api_version: 3\n    auth:\n      auth_url: {AUTH}/v3\n      application_credential_id: ac-123\n      application_credential_secret: shh\n    region_name: RegionOne\n    interface: public\n",
            )
            .var("OS_CLOUD", "ac"),
        Case::new("application credential by name with its user")
            .file(
                HomeConfig,
                "clouds.yaml",
                "clouds:\n  ac:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {AUTH}/v3\n      application_credential_name: monitoring\n      application_credential_secret: shh\n      username: alice\n      user_domain_name: Users\n",
            )
            .var("OS_CLOUD", "ac"),
        Case::new("application credential openrc (Horizon's)")
            .var("OS_AUTH_TYPE", "v3applicationcredential")
            .var("OS_AUTH_URL", "{AUTH}/v3")
            .var("OS_IDENTITY_API_VERSION", "3")
            .var("OS_REGION_NAME", "RegionOne")
            .var("OS_INTERFACE", "public")
            .var("OS_APPLICATION_CREDENTIAL_ID", "ac-9")
            .var("OS_APPLICATION_CREDENTIAL_SECRET", "shh"),
        Case::new("application credential variables without OS_AUTH_TYPE")
            .var("OS_AUTH_URL", "{AUTH}/v3")
            .var("OS_APPLICATION_CREDENTIAL_ID", "ac-9")
            .var("OS_APPLICATION_CREDENTIAL_SECRET", "shh")
            .deviates(APP_CRED_INFERRED),
        // OS_* variables alone (the "envvars" cloud).
        Case::new("user openrc (Horizon's)")
            .var("OS_AUTH_URL", "{AUTH}/v3")
            .var("OS_PROJECT_ID", "p-id-1")
            .var("OS_PROJECT_NAME", "webfarm")
            .var("OS_USER_DOMAIN_NAME", "Default")
            .var("OS_PROJECT_DOMAIN_ID", "default")
            .var("OS_USERNAME", "alice")
            .var("OS_PASSWORD", "pw")
            .var("OS_REGION_NAME", "RegionOne")
            .var("OS_INTERFACE", "public")
            .var("OS_IDENTITY_API_VERSION", "3"),
        Case::new("legacy openrc: OS_TENANT_NAME")
            .var("OS_AUTH_URL", "{AUTH}/v2.0")
            .var("OS_USERNAME", "s171201")
            .var("OS_PASSWORD", "pw")
            .var("OS_TENANT_NAME", "MS016A")
            .deviates(DEFAULT_DOMAIN),
        Case::new("OS_* variables with ids and domain ids")
            .var("OS_AUTH_URL", "{AUTH}")
            .var("OS_USER_ID", "u-1")
            .var("OS_PASSWORD", "pw")
            .var("OS_PROJECT_NAME", "pr")
            .var("OS_PROJECT_DOMAIN_ID", "d-9")
            .var("OS_INTERFACE", "internal"),
        Case::new("OS_* variables and flags without any file")
            .var("OS_AUTH_URL", "{AUTH}/v3")
            .var("OS_USERNAME", "alice")
            .var("OS_PROJECT_NAME", "pr")
            .var("OS_IDENTITY_API_VERSION", "3")
            .flag("--os-password", "pw")
            .flag("--os-user-domain-id", "d-u")
            .flag("--os-region-name", "R9"),
        // Precedence: flags > OS_* > clouds.yaml.
        Case::new("OS_* variables override the clouds.yaml entry")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab")
            .var("OS_USERNAME", "bob")
            .var("OS_PASSWORD", "env-pw")
            .var("OS_PROJECT_ID", "p-from-env")
            .var("OS_USER_DOMAIN_ID", "d-env")
            .var("OS_INTERFACE", "admin"),
        Case::new("flags override OS_* and clouds.yaml")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab")
            .var("OS_USERNAME", "bob")
            .var("OS_INTERFACE", "admin")
            .flag("--os-username", "dave")
            .flag("--os-interface", "public")
            .flag("--os-password", "flag-pw")
            .flag("--os-auth-url", "{AUTH}/identity"),
        Case::new("--os-project-name over clouds.yaml's project_name")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab")
            .flag("--os-project-name", "flagged")
            .deviates(PROJECT_KEYS),
        Case::new("OS_PROJECT_NAME and OS_USER_DOMAIN_NAME over clouds.yaml's")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab")
            .var("OS_PROJECT_NAME", "env-project")
            .var("OS_USER_DOMAIN_NAME", "EnvUsers")
            .deviates(PROJECT_KEYS),
        // Regions.
        Case::new("regions: the first is the default")
            .file(HomeConfig, "clouds.yaml", REGIONS)
            .var("OS_CLOUD", "multi"),
        Case::new("regions: OS_REGION_NAME picks a listed one")
            .file(HomeConfig, "clouds.yaml", REGIONS)
            .var("OS_CLOUD", "multi")
            .var("OS_REGION_NAME", "South"),
        Case::new("regions: region_name of the entry is ignored (the first region wins)")
            .file(HomeConfig, "clouds.yaml", REGIONS)
            .file(HomeConfig, "secure.yaml", "clouds:\n  multi:\n    region_name: South\n")
            .var("OS_CLOUD", "multi"),
        Case::new("regions: an unlisted region is refused")
            .file(HomeConfig, "clouds.yaml", REGIONS)
            .var("OS_CLOUD", "multi")
            .flag("--os-region-name", "East")
            .fails(),
        Case::new("region_name in clouds.yaml and the same OS_REGION_NAME")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab")
            .var("OS_REGION_NAME", "RegionOne"),
        Case::new("region_name in clouds.yaml and another OS_REGION_NAME: refused")
            .file(HomeConfig, "clouds.yaml", LAB_NAMES)
            .var("OS_CLOUD", "lab")
            .var("OS_REGION_NAME", "RegionTwo")
            .fails(),
        // TLS.
        Case::new("cacert in clouds.yaml")
            .file(
                HomeConfig,
                "clouds.yaml",
                "clouds:\n  t:\n    cacert: /etc/ssl/lab-ca.pem\n    auth:\n      auth_url: {AUTH}/v3\n      user_id: u\n      password: p\n      project_id: x\n",
            )
            .var("OS_CLOUD", "t"),
        Case::new("verify: false in clouds.yaml")
            .file(
                HomeConfig,
                "clouds.yaml",
                "clouds:\n  t:\n    verify: false\n    auth:\n      auth_url: {AUTH}/v3\n      user_id: u\n      password: p\n      project_id: x\n",
            )
            .var("OS_CLOUD", "t"),
        Case::new("OS_CACERT, OS_CERT and OS_KEY")
            .var("OS_AUTH_URL", "{AUTH}/v3")
            .var("OS_USER_ID", "u")
            .var("OS_PASSWORD", "p")
            .var("OS_PROJECT_ID", "x")
            .var("OS_CACERT", "/etc/ssl/env-ca.pem")
            .var("OS_CERT", "/etc/ssl/client.pem")
            .var("OS_KEY", "/etc/ssl/client.key"),
        Case::new("--os-cacert overrides cacert of clouds.yaml")
            .file(
                HomeConfig,
                "clouds.yaml",
                "clouds:\n  t:\n    cacert: /etc/ssl/file-ca.pem\n    auth:\n      auth_url: {AUTH}/v3\n      user_id: u\n      password: p\n      project_id: x\n",
            )
            .var("OS_CLOUD", "t")
            .flag("--os-cacert", "/etc/ssl/flag-ca.pem"),
        Case::new("--insecure")
            .var("OS_AUTH_URL", "{AUTH}/v3")
            .var("OS_USER_ID", "u")
            .var("OS_PASSWORD", "p")
            .var("OS_PROJECT_ID", "x")
            .flag("--insecure", ""),
        // Missing pieces.
        Case::new("no auth_url anywhere: refused")
            .var("OS_USERNAME", "u")
            .var("OS_PASSWORD", "p")
            .var("OS_PROJECT_NAME", "x")
            .fails(),
    ]
}

/// A case's directories.
struct Dirs {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    cwd: PathBuf,
    xdg: PathBuf,
    elsewhere: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let d = |n: &str| {
            let p = tmp.path().join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        Dirs {
            home: d("home"),
            cwd: d("work"),
            xdg: d("xdg"),
            elsewhere: d("elsewhere"),
            _tmp: tmp,
        }
    }

    fn expand(&self, s: &str, auth: &str) -> String {
        subst(s, auth)
            .replace("{XDG}", &self.xdg.display().to_string())
            .replace("{ELSEWHERE}", &self.elsewhere.display().to_string())
    }

    fn dir(&self, d: Dir) -> PathBuf {
        match d {
            Dir::Cwd => self.cwd.clone(),
            Dir::HomeConfig => self.home.join(".config/openstack"),
            Dir::Xdg => self.xdg.join("openstack"),
            Dir::Elsewhere => self.elsewhere.clone(),
        }
    }
}

/// A command with nothing of this process's environment: the case's variables, HOME, PATH.
fn isolated(program: &Path, dirs: &Dirs, vars: &BTreeMap<String, String>) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("HOME", &dirs.home)
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .envs(vars)
        .current_dir(&dirs.cwd)
        .stdin(Stdio::null());
    if dirs.xdg.join("openstack").is_dir() && !vars.contains_key("XDG_CONFIG_HOME") {
        c.env("XDG_CONFIG_HOME", &dirs.xdg);
    }
    c
}

/// What the real CLI resolves: `Ok(json)` or `Err(message)`.
fn run_oracle(
    dirs: &Dirs,
    vars: &BTreeMap<String, String>,
    flags: &[String],
) -> Result<Value, String> {
    let out = isolated(Path::new("/usr/bin/python3"), dirs, vars)
        .arg(ORACLE)
        .args(flags)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the oracle crashed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the oracle printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    match v.get("error").and_then(Value::as_str) {
        Some(e) => Err(e.to_owned()),
        None => Ok(v),
    }
}

/// What webscaler resolves: `Ok(json)` or `Err(message)`.
fn run_webscaler(
    dirs: &Dirs,
    vars: &BTreeMap<String, String>,
    flags: &[String],
) -> Result<Value, String> {
    let out = isolated(Path::new(env!("CARGO_BIN_EXE_webscaler")), dirs, vars)
        .args(["cloud", "--provider", "openstack"])
        .args(flags)
        .args(["config", "--json"])
        .output()
        .expect("run webscaler");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(2),
            "a configuration error is bad input (exit 2): {err}"
        );
        return Err(err);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "webscaler cloud config printed the secret {secret:?}: {text}"
        );
    }
    Ok(serde_json::from_slice(&out.stdout).expect("webscaler cloud config --json prints JSON"))
}

/// Every password and secret the cases use: none may ever be printed.
const SECRETS: &[&str] = &[
    "pw-lab",
    "pw-ids",
    "pw-names",
    "from-secure",
    "env-pw",
    "flag-pw",
    "shh",
];

#[test]
fn cloud_config_shows_the_resolved_settings_without_secrets() {
    let dirs = Dirs::new();
    let vars = BTreeMap::from([("OS_PASSWORD".to_owned(), "pw-lab".to_owned())]);
    let out = isolated(Path::new(env!("CARGO_BIN_EXE_webscaler")), &dirs, &vars)
        .args([
            "cloud",
            "--os-auth-url",
            "https://keystone.invalid:5000",
            "--os-username",
            "alice",
            "--os-project-id",
            "p-1",
            "--os-region-name",
            "North",
            "config",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "provider: openstack",
        "auth_url: https://keystone.invalid:5000/v3",
        "auth_type: password",
        "username: alice",
        "user_domain_id: default",
        "project_id: p-1",
        "password: <redacted>",
        "region_name: North",
        "interface: public",
        "verify: true",
        "source: OS_* variables",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    assert!(!text.contains("pw-lab"), "{text}");

    // Nothing configured: the local provider, and where its state lives.
    let out = isolated(
        Path::new(env!("CARGO_BIN_EXE_webscaler")),
        &dirs,
        &BTreeMap::new(),
    )
    .args(["cloud", "config", "--json"])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["provider"], "local");
    assert_eq!(
        v["state_dir"],
        dirs.home
            .join(".local/state/webscaler")
            .display()
            .to_string()
    );

    // A configuration error is bad input, named.
    let out = isolated(
        Path::new(env!("CARGO_BIN_EXE_webscaler")),
        &dirs,
        &BTreeMap::new(),
    )
    .args(["cloud", "--provider", "openstack", "config"])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("auth_url is missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `.../v3`, whatever the version suffix or trailing slash.
fn v3(url: &str) -> String {
    let u = url.trim_end_matches('/');
    let u = u
        .strip_suffix("/v3")
        .or_else(|| u.strip_suffix("/v2.0"))
        .unwrap_or(u);
    format!("{u}/v3")
}

/// The oracle's answer as what keystoneauth would send, in webscaler's flat form.
fn effective_oracle(v: &Value) -> BTreeMap<String, Value> {
    let auth = v["auth"].as_object().cloned().unwrap_or_default();
    let s = |k: &str| auth.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), Value::String(v));
        }
    };
    put("auth_url", s("auth_url").map(|u| v3(&u)));
    let auth_type = v["auth_type"].as_str().unwrap_or("password");
    let user = |put: &mut dyn FnMut(&str, Option<String>)| {
        // keystoneauth: a user id goes alone; a name goes with the domain id, else its name.
        if s("user_id").is_some() {
            put("user_id", s("user_id"));
        } else if s("username").is_some() {
            put("username", s("username"));
            if s("user_domain_id").is_some() {
                put("user_domain_id", s("user_domain_id"));
            } else {
                put("user_domain_name", s("user_domain_name"));
            }
        }
    };
    match auth_type {
        "password" | "v3password" => {
            put("auth_type", Some("password".into()));
            user(&mut put);
            put("password", s("password"));
            if s("project_id").is_some() {
                put("project_id", s("project_id"));
            } else if s("project_name").is_some() {
                put("project_name", s("project_name"));
                if s("project_domain_id").is_some() {
                    put("project_domain_id", s("project_domain_id"));
                } else {
                    put("project_domain_name", s("project_domain_name"));
                }
            }
        }
        "v3applicationcredential" => {
            put("auth_type", Some(auth_type.into()));
            if s("application_credential_id").is_some() {
                put("application_credential_id", s("application_credential_id"));
            } else {
                put(
                    "application_credential_name",
                    s("application_credential_name"),
                );
                user(&mut put);
            }
            put(
                "application_credential_secret",
                s("application_credential_secret"),
            );
        }
        other => put("auth_type", Some(other.into())),
    }
    for k in ["region_name", "interface", "cacert", "cert", "key"] {
        m.insert(k.into(), v[k].clone());
    }
    m.insert("verify".into(), v["verify"].clone());
    m
}

/// webscaler's answer, without what the CLI has no counterpart for.
fn effective_webscaler(v: &Value) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, Value> = v
        .as_object()
        .cloned()
        .unwrap_or_else(Map::new)
        .into_iter()
        .collect();
    for k in ["source", "provider", "prefix", "compute_api_version"] {
        m.remove(k);
    }
    m
}

fn diff(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: openstack CLI {} / webscaler {}",
                a.get(k).unwrap_or(&Value::Null),
                b.get(k).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

/// Fails with the fix when the real client is not installed: never a silent skip.
fn require_openstackclient() {
    let ok = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import openstackclient.shell, osc_lib, openstack.config",
        ])
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the OpenStack CLI (python3-openstackclient) is not installed: run `sudo bash scripts/setup.sh`"
    );
}

#[test]
fn webscaler_resolves_configuration_like_the_openstack_cli() {
    require_openstackclient();
    // Every auth_url points here; nothing may connect.
    let guard = TcpListener::bind("127.0.0.1:0").unwrap();
    guard.set_nonblocking(true).unwrap();
    let auth = format!("http://127.0.0.1:{}", guard.local_addr().unwrap().port());

    let cases = cases();
    let results: Vec<(usize, String)> = std::thread::scope(|s| {
        let chunks: Vec<Vec<(usize, &Case)>> = (0..3)
            .map(|w| {
                cases
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 3 == w)
                    .collect()
            })
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let auth = auth.clone();
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .filter_map(|(i, c)| check(c, &auth).map(|e| (i, e)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case thread panicked"))
            .collect()
    });
    match guard.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("something connected to the auth_url during resolution: {other:?}"),
    }
    let mut failures = results;
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with the OpenStack CLI:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .map(|(_, f)| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Runs one case on both sides; `Some(description)` if they disagree.
fn check(case: &Case, auth: &str) -> Option<String> {
    let dirs = Dirs::new();
    for (d, name, text) in &case.files {
        let dir = dirs.dir(*d);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), dirs.expand(text, auth)).unwrap();
    }
    let vars: BTreeMap<String, String> = case
        .vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), dirs.expand(v, auth)))
        .collect();
    let flags: Vec<String> = case.flags.iter().map(|f| dirs.expand(f, auth)).collect();
    let oracle = run_oracle(&dirs, &vars, &flags);
    let ours = run_webscaler(&dirs, &vars, &flags);
    let name = case.name;
    match (oracle, ours, case.error) {
        (Err(_), Err(_), true) => None,
        (o, w, true) => Some(format!(
            "[{name}] both should refuse it: openstack CLI {o:?} / webscaler {w:?}"
        )),
        (Ok(o), Ok(w), false) => {
            let (o, w) = (effective_oracle(&o), effective_webscaler(&w));
            let d = diff(&o, &w);
            match (case.deviation, d.is_empty()) {
                (None, true) => None,
                (None, false) => Some(format!("[{name}] {}", d.join("; "))),
                (Some(why), false) => {
                    eprintln!("[{name}] documented deviation ({why}): {}", d.join("; "));
                    None
                }
                (Some(_), true) => Some(format!(
                    "[{name}] documented as a deviation but both agree: update the docs and the case"
                )),
            }
        }
        (Err(o), Ok(w), false) if case.deviation.is_some() => {
            eprintln!(
                "[{name}] documented deviation: the CLI refuses it ({o}); webscaler resolves {w}"
            );
            None
        }
        (o, w, false) => Some(format!("[{name}] openstack CLI {o:?} / webscaler {w:?}")),
    }
}
