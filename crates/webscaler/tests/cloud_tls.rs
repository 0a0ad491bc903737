//! TLS: verified by default, a private CA through `cacert`, and `--insecure` only when asked.

mod openstack;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use openstack::fake_openstack::FakeOpenStack;
use webscaler::cloud::openstack::auth::RetryPolicy;
use webscaler::cloud::openstack::config::{Env, Overrides, resolve};
use webscaler::cloud::openstack::{OpenStack, OpenStackOptions};
use webscaler::cloud::{Cloud, CloudError};

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn fake() -> FakeOpenStack {
    let cert = std::fs::read(tls_file("server.pem")).unwrap();
    let key = std::fs::read(tls_file("server.key")).unwrap();
    let f = FakeOpenStack::start_tls(&cert, &key);
    f.add_server("node-1", "ACTIVE");
    f
}

fn open(fake: &FakeOpenStack, extra: &[(&str, &str)]) -> OpenStack {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        vars: BTreeMap::new(),
        home: Some(dir.path().to_path_buf()),
        cwd: dir.path().to_path_buf(),
        system_dirs: vec![],
    };
    let mut ov = Overrides::default();
    for (k, v) in [
        ("auth_url", fake.auth_url().as_str()),
        ("username", "s171201"),
        ("password", "correct horse"),
        ("project_name", "admin"),
    ]
    .iter()
    .chain(extra)
    {
        ov.set(k, Some((*v).to_owned()));
    }
    let cfg = resolve(&env, &ov).unwrap();
    let opts = OpenStackOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(5),
        },
        ..OpenStackOptions::default()
    };
    OpenStack::new(&cfg, opts).unwrap()
}

#[test]
fn an_unknown_certificate_authority_is_refused_by_default() {
    let fake = fake();
    assert!(fake.auth_url().starts_with("https://127.0.0.1:"));
    let err = open(&fake, &[]).list().unwrap_err();
    let text = err.to_string();
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(
        !matches!(err, CloudError::Transient { .. }),
        "a bad certificate is not worth retrying: {err:?}"
    );
    assert_eq!(fake.count("POST", "/auth/tokens"), 0, "nothing was sent");
}

#[test]
fn a_private_ca_given_as_cacert_is_trusted() {
    let fake = fake();
    let ca = tls_file("ca.pem");
    let os = open(&fake, &[("cacert", ca.to_str().unwrap())]);
    let l = os.list().unwrap();
    assert_eq!(l[0].name, "node-1");
}

#[test]
fn insecure_skips_verification_only_when_asked() {
    let fake = fake();
    let os = open(&fake, &[("insecure", "true")]);
    assert_eq!(os.list().unwrap().len(), 1);
}

#[test]
fn a_cacert_that_is_not_pem_is_a_config_error() {
    let fake = fake();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let env = Env {
        vars: BTreeMap::new(),
        home: None,
        cwd: dir.path().to_path_buf(),
        system_dirs: vec![],
    };
    let mut ov = Overrides::default();
    for (k, v) in [
        ("auth_url", fake.auth_url()),
        ("username", "u".into()),
        ("password", "p".into()),
        ("project_name", "x".into()),
        ("cacert", bad.display().to_string()),
    ] {
        ov.set(k, Some(v));
    }
    let cfg = resolve(&env, &ov).unwrap();
    match OpenStack::new(&cfg, OpenStackOptions::default()) {
        Err(CloudError::Config { message }) => assert!(message.contains("bad.pem"), "{message}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}
