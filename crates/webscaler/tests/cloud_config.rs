//! OpenStack configuration resolution: clouds.yaml and secure.yaml in the usual places, the
//! OS_* variables, flags, and the lab report's openstack.cfg. Each case runs with a temporary
//! home and working directory and an explicit environment, never the real one.

mod openstack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use webscaler::cloud::CloudError;
use webscaler::cloud::openstack::config::{
    AppCredRef, AuthMethod, DomainRef, Env, Interface, OpenStackConfig, Overrides, ProjectRef,
    UserRef, is_configured, resolve,
};

struct Case {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    cwd: PathBuf,
    etc: PathBuf,
    vars: BTreeMap<String, String>,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let cwd = tmp.path().join("work");
        let etc = tmp.path().join("etc-openstack");
        for d in [&home, &cwd, &etc] {
            std::fs::create_dir_all(d).unwrap();
        }
        Case {
            _tmp: tmp,
            home,
            cwd,
            etc,
            vars: BTreeMap::new(),
        }
    }

    fn var(mut self, k: &str, v: &str) -> Case {
        self.vars.insert(k.into(), v.into());
        self
    }

    fn file(self, path: impl Fn(&Case) -> PathBuf, text: &str) -> Case {
        let path = path(&self);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        self
    }

    fn env(&self) -> Env {
        Env {
            vars: self.vars.clone(),
            home: Some(self.home.clone()),
            cwd: self.cwd.clone(),
            system_dirs: vec![self.etc.clone()],
        }
    }

    fn resolve(&self, ov: &Overrides) -> Result<OpenStackConfig, CloudError> {
        resolve(&self.env(), ov)
    }
}

const CLOUDS: &str = r#"
clouds:
  lab:
    auth:
      auth_url: https://keystone.lab.example:5000
      username: alice
      project_name: webfarm
      user_domain_name: Users
      project_domain_id: default
    region_name: RegionOne
    interface: internal
    identity_api_version: 3
  other:
    auth:
      auth_url: https://other.example/identity/v3
      user_id: u-123
      password: other-pass
      project_id: p-456
    regions:
      - North
      - name: South
    verify: false
"#;

const SECURE: &str = "clouds:\n  lab:\n    auth:\n      password: s3cret\n";

fn flags(pairs: &[(&str, &str)]) -> Overrides {
    let mut o = Overrides::default();
    for (k, v) in pairs {
        o.set(k, Some((*v).to_owned()));
    }
    o
}

fn cloud(name: &str) -> Overrides {
    Overrides {
        cloud: Some(name.into()),
        ..Overrides::default()
    }
}

#[test]
fn clouds_yaml_in_the_home_config_dir_merged_with_secure_yaml() {
    let c = Case::new();
    let c = c
        .file(|c| c.home.join(".config/openstack/clouds.yaml"), CLOUDS)
        .file(|c| c.home.join(".config/openstack/secure.yaml"), SECURE)
        .var("OS_CLOUD", "lab");
    let cfg = c.resolve(&Overrides::default()).unwrap();
    assert_eq!(cfg.auth_url, "https://keystone.lab.example:5000/v3");
    assert_eq!(
        cfg.auth,
        AuthMethod::Password {
            user: UserRef::Name {
                name: "alice".into(),
                domain: DomainRef::Name("Users".into())
            },
            password: webscaler::cloud::openstack::Secret::new("s3cret"),
            project: ProjectRef::Name {
                name: "webfarm".into(),
                domain: DomainRef::Id("default".into())
            },
        }
    );
    assert_eq!(cfg.region.as_deref(), Some("RegionOne"));
    assert_eq!(cfg.interface, Interface::Internal);
    assert!(!cfg.tls.insecure);
    assert!(
        cfg.source.contains("lab") && cfg.source.contains("secure.yaml"),
        "{}",
        cfg.source
    );
}

#[test]
fn the_first_clouds_yaml_found_wins_in_the_documented_order() {
    let other_cwd = CLOUDS.replace("keystone.lab.example", "cwd.example");
    let other_xdg = CLOUDS.replace("keystone.lab.example", "xdg.example");
    let other_etc = CLOUDS.replace("keystone.lab.example", "etc.example");
    let explicit = CLOUDS.replace("keystone.lab.example", "explicit.example");
    let c = Case::new();
    let secure = c.home.join(".config/openstack/secure.yaml");
    let c = c.file(|_| secure.clone(), SECURE);
    let xdg = c.home.join("xdg");
    let c = c
        .file(|c| c.etc.join("clouds.yaml"), &other_etc)
        .var("OS_CLOUD", "lab");
    let url = |c: &Case| c.resolve(&Overrides::default()).unwrap().auth_url;
    assert_eq!(url(&c), "https://etc.example:5000/v3");
    let c = c.file(|c| c.home.join(".config/openstack/clouds.yaml"), CLOUDS);
    assert_eq!(url(&c), "https://keystone.lab.example:5000/v3");
    let c = c
        .file(|_| xdg.join("openstack/clouds.yml"), &other_xdg)
        .var("XDG_CONFIG_HOME", xdg.to_str().unwrap());
    assert_eq!(url(&c), "https://xdg.example:5000/v3");
    let c = c.file(|c| c.cwd.join("clouds.yaml"), &other_cwd);
    assert_eq!(url(&c), "https://cwd.example:5000/v3");
    let path = c.home.join("elsewhere/my-clouds.yaml");
    let c = c
        .file(|_| path.clone(), &explicit)
        .var("OS_CLIENT_CONFIG_FILE", path.to_str().unwrap());
    assert_eq!(url(&c), "https://explicit.example:5000/v3");
}

#[test]
fn clouds_json_is_read_too() {
    let c = Case::new();
    let c = c.file(|c| c.cwd.join("clouds.json"),
        r#"{"clouds": {"j": {"auth": {"auth_url": "http://k:5000", "username": "u", "password": "p", "project_name": "x"}}}}"#,
    );
    let cfg = c.resolve(&cloud("j")).unwrap();
    assert_eq!(cfg.auth_url, "http://k:5000/v3");
}

#[test]
fn precedence_is_flags_then_os_variables_then_clouds_yaml() {
    let c = Case::new();
    let c = c
        .file(|c| c.cwd.join("clouds.yaml"), CLOUDS)
        .file(|c| c.cwd.join("secure.yaml"), SECURE)
        .var("OS_CLOUD", "lab")
        .var("OS_REGION_NAME", "RegionOne")
        .var("OS_INTERFACE", "admin")
        .var("OS_PASSWORD", "from-env");
    let cfg = c.resolve(&Overrides::default()).unwrap();
    assert_eq!(cfg.region.as_deref(), Some("RegionOne"));
    assert_eq!(cfg.interface, Interface::Admin);
    let AuthMethod::Password { password, .. } = &cfg.auth else {
        panic!()
    };
    assert_eq!(password.expose(), "from-env");

    // As in the openstack CLI, a cloud's region_name is its only region: another one, from
    // a variable or a flag, is refused.
    let e = Case::new()
        .file(|c| c.cwd.join("clouds.yaml"), CLOUDS)
        .file(|c| c.cwd.join("secure.yaml"), SECURE)
        .var("OS_CLOUD", "lab")
        .var("OS_REGION_NAME", "RegionEnv")
        .resolve(&Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("RegionEnv") && e.contains("RegionOne"), "{e}");
    let e = c
        .resolve(&flags(&[("region_name", "RegionFlag")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("RegionFlag"), "{e}");

    let cfg = c
        .resolve(&flags(&[
            ("interface", "public"),
            ("password", "from-flag"),
        ]))
        .unwrap();
    assert_eq!(cfg.region.as_deref(), Some("RegionOne"));
    assert_eq!(cfg.interface, Interface::Public);
    let AuthMethod::Password { password, .. } = &cfg.auth else {
        panic!()
    };
    assert_eq!(password.expose(), "from-flag");

    // --os-cloud beats OS_CLOUD.
    let cfg = c
        .resolve(&Overrides {
            cloud: Some("other".into()),
            ..flags(&[("region_name", "South")])
        })
        .unwrap();
    assert_eq!(cfg.auth_url, "https://other.example/identity/v3");
}

#[test]
fn a_region_must_be_one_of_the_clouds_regions() {
    let c = Case::new();
    let c = c.file(|c| c.cwd.join("clouds.yaml"), CLOUDS);
    let cfg = c.resolve(&cloud("other")).unwrap();
    assert_eq!(
        cfg.region.as_deref(),
        Some("North"),
        "the first of `regions`"
    );
    assert!(cfg.tls.insecure, "verify: false");
    assert_eq!(
        cfg.auth,
        AuthMethod::Password {
            user: UserRef::Id("u-123".into()),
            password: webscaler::cloud::openstack::Secret::new("other-pass"),
            project: ProjectRef::Id("p-456".into()),
        }
    );
    let c = c.var("OS_REGION_NAME", "East");
    let e = c.resolve(&cloud("other")).unwrap_err().to_string();
    assert!(e.contains("East") && e.contains("North, South"), "{e}");
}

#[test]
fn openrc_variables_alone_make_a_cloud_and_legacy_names_work() {
    let c = Case::new();
    // A clouds.yaml with one cloud exists, but OS_* auth variables take over (openstacksdk's
    // "envvars" cloud).
    let c = c
        .file(
            |c| c.cwd.join("clouds.yaml"),
            "clouds:\n  only:\n    auth:\n      auth_url: http://ignored:5000\n",
        )
        .var("OS_AUTH_URL", "http://keystone:5000/v2.0")
        .var("OS_USERNAME", "s171201")
        .var("OS_PASSWORD", "pw")
        .var("OS_TENANT_NAME", "MS016A")
        .var("OS_ENDPOINT_TYPE", "internalURL")
        .var("OS_CACERT", "/etc/ssl/ca.pem")
        .var("OS_TEST_IGNORED", "x");
    let cfg = c.resolve(&Overrides::default()).unwrap();
    assert_eq!(cfg.auth_url, "http://keystone:5000/v3");
    assert_eq!(
        cfg.auth,
        AuthMethod::Password {
            user: UserRef::Name {
                name: "s171201".into(),
                domain: DomainRef::Id("default".into())
            },
            password: webscaler::cloud::openstack::Secret::new("pw"),
            project: ProjectRef::Name {
                name: "MS016A".into(),
                domain: DomainRef::Id("default".into())
            },
        }
    );
    assert_eq!(cfg.interface, Interface::Internal);
    assert_eq!(
        cfg.tls.cacert.as_deref(),
        Some(Path::new("/etc/ssl/ca.pem"))
    );
    assert!(is_configured(&c.env(), &Overrides::default()));
}

#[test]
fn application_credential_variables_resolve_with_or_without_auth_type() {
    for with_type in [true, false] {
        let mut c = Case::new()
            .var("OS_AUTH_URL", "https://k/identity")
            .var("OS_APPLICATION_CREDENTIAL_ID", "ac-1")
            .var("OS_APPLICATION_CREDENTIAL_SECRET", "sh");
        if with_type {
            c = c.var("OS_AUTH_TYPE", "v3applicationcredential");
        }
        let cfg = c.resolve(&Overrides::default()).unwrap();
        assert_eq!(
            cfg.auth,
            AuthMethod::ApplicationCredential {
                credential: AppCredRef::Id("ac-1".into()),
                secret: webscaler::cloud::openstack::Secret::new("sh"),
            }
        );
    }
    let c = Case::new()
        .var("OS_AUTH_URL", "https://k")
        .var("OS_AUTH_TYPE", "v3applicationcredential")
        .var("OS_APPLICATION_CREDENTIAL_NAME", "monitoring")
        .var("OS_APPLICATION_CREDENTIAL_SECRET", "sh");
    let e = c.resolve(&Overrides::default()).unwrap_err().to_string();
    assert!(e.contains("username or user_id"), "{e}");
    let c = c.var("OS_USERNAME", "alice");
    assert!(matches!(
        c.resolve(&Overrides::default()).unwrap().auth,
        AuthMethod::ApplicationCredential {
            credential: AppCredRef::Name { .. },
            ..
        }
    ));
}

#[test]
fn only_one_cloud_is_used_without_naming_it_and_several_need_a_name() {
    let one = "clouds:\n  solo:\n    auth:\n      auth_url: http://solo:5000\n      username: u\n      password: p\n      project_id: x\n";
    let c = Case::new();
    let c = c.file(|c| c.home.join(".config/openstack/clouds.yaml"), one);
    assert_eq!(
        c.resolve(&Overrides::default()).unwrap().auth_url,
        "http://solo:5000/v3"
    );
    assert!(
        !is_configured(&c.env(), &Overrides::default()),
        "a clouds.yaml alone does not pick OpenStack"
    );

    let c = Case::new();
    let c = c.file(|c| c.cwd.join("clouds.yaml"), CLOUDS);
    let e = c.resolve(&Overrides::default()).unwrap_err().to_string();
    assert!(
        e.contains("several clouds (lab, other)") && e.contains("--os-cloud"),
        "{e}"
    );
    let e = c.resolve(&cloud("nope")).unwrap_err().to_string();
    assert!(
        e.contains("no cloud named \"nope\"") && e.contains("lab, other"),
        "{e}"
    );
}

#[test]
fn the_lab_report_openstack_cfg_is_read_from_a_flag_or_etc() {
    let cfg_text = "[main]\nAPI_VERSION = 2\nUSERNAME = s171201\nPASSWORD = pw\nAUTH_URL = http://keystone:5000/v2.0\nTENANT_NAME = MS016A\n";
    let c = Case::new();
    let c = c.file(|c| c.cwd.join("etc/openstack.cfg"), cfg_text);
    assert!(is_configured(&c.env(), &Overrides::default()));
    let cfg = c.resolve(&Overrides::default()).unwrap();
    assert_eq!(cfg.auth_url, "http://keystone:5000/v3");
    assert!(cfg.source.ends_with("etc/openstack.cfg"), "{}", cfg.source);
    let AuthMethod::Password { project, .. } = &cfg.auth else {
        panic!()
    };
    assert_eq!(
        project,
        &ProjectRef::Name {
            name: "MS016A".into(),
            domain: DomainRef::Id("default".into())
        }
    );

    let c = Case::new();
    let p = c.home.join("creds.cfg");
    let c = c.file(|_| p.clone(), &cfg_text.replace("MS016A", "Other"));
    let ov = Overrides {
        openstack_cfg: Some(p.clone()),
        ..Overrides::default()
    };
    assert!(is_configured(&c.env(), &ov));
    let cfg = c.resolve(&ov).unwrap();
    let AuthMethod::Password { project, .. } = &cfg.auth else {
        panic!()
    };
    assert!(matches!(project, ProjectRef::Name { name, .. } if name == "Other"));

    let c = c.file(|_| p.clone(), "[main]\nUSERNAME = x\nPASSWRD = typo\n");
    let e = c.resolve(&ov).unwrap_err().to_string();
    assert!(e.contains("PASSWRD") && e.contains("creds.cfg"), "{e}");
}

#[test]
fn bad_input_is_named() {
    let c = Case::new();
    let c = c.file(|c| c.cwd.join("clouds.yaml"), "clouds: [unclosed\n");
    let e = c.resolve(&cloud("x")).unwrap_err().to_string();
    assert!(e.contains("clouds.yaml"), "{e}");

    let c = Case::new().var("OS_AUTH_URL", "keystone:5000");
    assert!(
        c.resolve(&Overrides::default())
            .unwrap_err()
            .to_string()
            .contains("http://")
    );
    let c = Case::new()
        .var("OS_AUTH_URL", "http://k")
        .var("OS_USERNAME", "u")
        .var("OS_PROJECT_NAME", "p");
    let e = c.resolve(&Overrides::default()).unwrap_err().to_string();
    assert!(e.contains("password is missing"), "{e}");
    let c = c
        .var("OS_PASSWORD", "x")
        .var("OS_AUTH_TYPE", "v3oidcpassword");
    assert!(
        c.resolve(&Overrides::default())
            .unwrap_err()
            .to_string()
            .contains("v3oidcpassword")
    );
    let c = Case::new()
        .var("OS_AUTH_URL", "http://k")
        .var("OS_USERNAME", "u")
        .var("OS_PASSWORD", "p")
        .var("OS_PROJECT_NAME", "p")
        .var("OS_IDENTITY_API_VERSION", "2.0");
    assert!(
        c.resolve(&Overrides::default())
            .unwrap_err()
            .to_string()
            .contains("v3")
    );
    let e = Case::new().resolve(&cloud("lab")).unwrap_err().to_string();
    assert!(e.contains("no clouds.yaml found"), "{e}");
}

#[test]
fn the_openstacksdk_fixture_clouds_yaml_resolves() {
    let text =
        std::fs::read_to_string(openstack::fixture("openstacksdk/clouds/clouds.yaml")).unwrap();
    let c = Case::new();
    let c = c.file(|c| c.cwd.join("clouds.yaml"), &text);
    let cfg = c.resolve(&cloud("_test_cloud_")).unwrap();
    assert_eq!(cfg.auth_url, "https://identity.example.com/v3");
    assert_eq!(cfg.region.as_deref(), Some("RegionOne"));
    assert!(matches!(
        cfg.auth,
        AuthMethod::Password {
            user: UserRef::Name { ref name, domain: DomainRef::Name(ref d) },
            ..
        } if name == "admin" && d == "default"
    ));
    // Its v2 cloud and its bogus auth type are refused with a reason.
    assert!(
        c.resolve(&cloud("_test_cloud_v2_"))
            .unwrap_err()
            .to_string()
            .contains("v3")
    );
    assert!(
        c.resolve(&cloud("_bogus_test_"))
            .unwrap_err()
            .to_string()
            .contains("bogus")
    );
}
