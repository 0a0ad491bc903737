//! The OpenStack provider against the fake OpenStack of `openstack/fake_openstack.rs`, which
//! answers with the official samples and checks every request body.

mod openstack;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use openstack::fake_openstack::{
    FLAVOR_ID, FakeOpenStack, Fault, IMAGE_ID, IMAGE_NAME, NETWORK_ID, NETWORK_NAME,
};
use serde_json::json;
use webscaler::cloud::openstack::auth::RetryPolicy;
use webscaler::cloud::openstack::config::{Env, OpenStackConfig, Overrides, resolve};
use webscaler::cloud::openstack::{OpenStack, OpenStackOptions, ServerSpec};
use webscaler::cloud::{Backend, Cloud, CloudError, Status};
use webscaler::settings::cloud::DEFAULT_CLOUD_INIT;

fn env(dir: &std::path::Path) -> Env {
    Env {
        vars: BTreeMap::new(),
        home: Some(dir.to_path_buf()),
        cwd: dir.to_path_buf(),
        system_dirs: vec![],
    }
}

fn password_config(fake: &FakeOpenStack, extra: &[(&str, &str)]) -> OpenStackConfig {
    let dir = tempfile::tempdir().unwrap();
    let mut ov = Overrides::default();
    for (k, v) in [
        ("auth_url", fake.auth_url().as_str()),
        ("username", "s171201"),
        ("password", "correct horse"),
        ("project_name", "admin"),
        ("user_domain_name", "Default"),
        ("project_domain_id", "default"),
        ("region_name", "RegionOne"),
    ]
    .iter()
    .chain(extra)
    {
        ov.set(k, Some((*v).to_owned()));
    }
    resolve(&env(dir.path()), &ov).unwrap()
}

fn options() -> OpenStackOptions {
    OpenStackOptions {
        server: ServerSpec {
            image: Some(IMAGE_NAME.into()),
            flavor: Some("m1.tiny".into()),
            network: Some(NETWORK_NAME.into()),
            key_name: Some("webscaler".into()),
            security_groups: vec!["web".into()],
            user_data: Some(DEFAULT_CLOUD_INIT.as_bytes().to_vec()),
        },
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        },
        timeout: Duration::from_secs(20),
        ..OpenStackOptions::default()
    }
}

fn fake() -> FakeOpenStack {
    let f = FakeOpenStack::start();
    f.world().expected_user_data = Some(DEFAULT_CLOUD_INIT.as_bytes().to_vec());
    f
}

fn by_name<'a>(l: &'a [Backend], n: &str) -> &'a Backend {
    l.iter()
        .find(|b| b.name == n)
        .unwrap_or_else(|| panic!("{n} not in {l:?}"))
}

fn names(l: &[Backend]) -> Vec<&str> {
    l.iter().map(|b| b.name.as_str()).collect()
}

#[test]
fn password_auth_then_create_poll_stop_start_delete_and_quota() {
    let fake = fake();
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    assert!(os.list().unwrap().is_empty());

    // The token request: password, user by name in a domain, project scope.
    let auth = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/auth/tokens"))
        .unwrap();
    assert_eq!(
        auth.body.unwrap(),
        json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "s171201", "domain": {"name": "Default"}, "password": "correct horse"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}
        }})
    );

    let created = os.create(3).unwrap();
    assert_eq!(
        created.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["node-1", "node-2", "node-3"]
    );
    for c in &created {
        let b = c.result.as_ref().unwrap();
        assert_eq!(b.status, Status::Build);
        assert!(b.address.is_none(), "no address while building");
    }
    // Every create body: image, flavor, network by id, key, groups, base64 user_data.
    let creates: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/servers"))
        .collect();
    assert_eq!(creates.len(), 3);
    for r in &creates {
        let s = &r.body.as_ref().unwrap()["server"];
        assert_eq!(s["imageRef"], IMAGE_ID);
        assert_eq!(s["flavorRef"], FLAVOR_ID);
        assert_eq!(s["networks"], json!([{"uuid": NETWORK_ID}]));
        assert_eq!(s["key_name"], "webscaler");
        assert_eq!(s["security_groups"], json!([{"name": "web"}]));
        let ud = base64::engine::general_purpose::STANDARD
            .decode(s["user_data"].as_str().unwrap())
            .unwrap();
        assert!(String::from_utf8(ud).unwrap().contains("It works!"));
        assert!(
            r.path.starts_with("/r1pub/"),
            "public RegionOne endpoint: {}",
            r.path
        );
        assert!(r.header("X-Auth-Token").is_some());
        assert!(
            r.header("OpenStack-API-Version").is_none(),
            "2.1 by default"
        );
    }
    // Looked up once, cached: one Glance call, one Neutron call, one flavor listing.
    assert_eq!(fake.count("GET", "/image/v2/images"), 1);
    assert_eq!(fake.count("GET", "/network/v2.0/networks"), 1);
    assert_eq!(fake.count("GET", "/flavors/detail"), 1);

    // BUILD turns ACTIVE after a few polls, with the fixed address on net1.
    let l = common::wait::poll_until(
        "3 ACTIVE",
        Duration::from_secs(20),
        Duration::from_millis(1),
        || {
            let l = os.list().unwrap();
            l.iter().all(|b| b.status == Status::Active).then_some(l)
        },
    )
    .unwrap();
    assert_eq!(names(&l), ["node-1", "node-2", "node-3"]);
    for b in &l {
        let a = b.address.unwrap();
        assert!(a.ip.to_string().starts_with("10.0.0."), "{a}");
        assert_eq!(a.port, None);
        assert!(b.created.is_some());
    }
    // More creations continue the sequence, without new lookups.
    let c = os.create(1).unwrap();
    assert_eq!(c[0].name, "node-4");
    assert_eq!(fake.count("GET", "/image/v2/images"), 1);

    // Stop: ACTIVE (powering-off) then SHUTOFF.
    let n2 = by_name(&l, "node-2").clone();
    os.stop(&n2).unwrap();
    let after = os.list().unwrap();
    let b = by_name(&after, "node-2");
    assert!(
        b.status == Status::Shutoff || b.task.as_deref() == Some("powering-off"),
        "{b:?}"
    );
    assert!(!b.is_running());
    common::wait::poll_until(
        "SHUTOFF",
        Duration::from_secs(20),
        Duration::from_millis(1),
        || (by_name(&os.list().unwrap(), "node-2").status == Status::Shutoff).then_some(()),
    )
    .unwrap();
    let stop_req = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/action"))
        .unwrap();
    assert_eq!(stop_req.body.unwrap(), json!({"os-stop": null}));
    assert!(stop_req.path.contains(&n2.id));

    // Start again.
    os.start(&n2).unwrap();
    common::wait::poll_until(
        "ACTIVE",
        Duration::from_secs(20),
        Duration::from_millis(1),
        || {
            by_name(&os.list().unwrap(), "node-2")
                .is_running()
                .then_some(())
        },
    )
    .unwrap();

    // Quota from /limits.
    let q = os.quota().unwrap();
    assert_eq!((q.instances.used, q.instances.max), (4, Some(10)));
    assert_eq!(q.left, Some(6));
    assert_eq!(q.cores.unwrap().max, Some(20));

    // Delete: 204, then gone.
    os.delete(&n2).unwrap();
    assert_eq!(names(&os.list().unwrap()), ["node-1", "node-3", "node-4"]);
    assert!(matches!(os.delete(&n2), Err(CloudError::NotFound { .. })));

    assert_eq!(
        fake.count("POST", "/auth/tokens"),
        1,
        "one token for everything"
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn application_credentials_authenticate_without_a_scope() {
    let fake = fake();
    let dir = tempfile::tempdir().unwrap();
    let mut e = env(dir.path());
    e.vars = [
        ("OS_AUTH_TYPE", "v3applicationcredential"),
        ("OS_AUTH_URL", fake.auth_url().as_str()),
        (
            "OS_APPLICATION_CREDENTIAL_ID",
            "423f19a4ac1e4f48bbb4180756e6eb6c",
        ),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "rEaqvJka48mpv"),
        ("OS_IDENTITY_API_VERSION", "3"),
        ("OS_INTERFACE", "public"),
        ("OS_REGION_NAME", "RegionOne"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let cfg = resolve(&e, &Overrides::default()).unwrap();
    let os = OpenStack::new(&cfg, options()).unwrap();
    fake.add_server("node-7", "ACTIVE");
    assert_eq!(names(&os.list().unwrap()), ["node-7"]);
    let auth = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/auth/tokens"))
        .unwrap();
    let body = auth.body.unwrap();
    assert_eq!(
        body,
        json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": "423f19a4ac1e4f48bbb4180756e6eb6c", "secret": "rEaqvJka48mpv"}}}})
    );
    assert!(body["auth"].get("scope").is_none());
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn a_wrong_password_is_an_authentication_error_with_keystones_message() {
    let fake = fake();
    let cfg = password_config(&fake, &[("password", "wrong")]);
    let os = OpenStack::new(&cfg, options()).unwrap();
    match os.list() {
        Err(CloudError::Auth { message }) => {
            assert!(message.contains("requires authentication"), "{message}")
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[test]
fn listing_follows_pages_filters_by_prefix_and_sorts_naturally() {
    let fake = fake();
    fake.world().page_size = 2;
    for n in [
        "node-10", "web-1", "node-2", "node-x", "xnode-3", "node-1", "node-9",
    ] {
        fake.add_server(n, "ACTIVE");
    }
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    let l = os.list().unwrap();
    assert_eq!(
        names(&l),
        ["node-1", "node-2", "node-9", "node-10", "node-x"]
    );
    // 5 matching servers at 2 per page: 3 pages, each following the previous marker.
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/servers/detail"))
        .collect();
    assert_eq!(pages.len(), 3);
    assert!(
        pages[0].query.starts_with("name=%5Enode-"),
        "{}",
        pages[0].query
    );
    assert!(pages[1].query.contains("marker="));
    assert!(pages.iter().all(|p| p.path.starts_with("/r1pub/")));
    // New names continue after node-10.
    assert_eq!(os.create(1).unwrap()[0].name, "node-11");
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn quota_exceeded_is_a_typed_error_and_the_quota_says_so() {
    let fake = fake();
    fake.world().max_instances = 2;
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    let c = os.create(3).unwrap();
    let ok = c.iter().filter(|c| c.result.is_ok()).count();
    assert_eq!(ok, 2);
    let failed: Vec<_> = c.iter().filter_map(|c| c.result.as_ref().err()).collect();
    assert_eq!(failed.len(), 1);
    match failed[0] {
        CloudError::QuotaExceeded { message } => {
            assert!(
                message.contains("Quota exceeded for instances"),
                "{message}"
            )
        }
        e => panic!("expected a quota error, got {e:?}"),
    }
    let q = os.quota().unwrap();
    assert_eq!(
        (q.instances.used, q.instances.left(), q.left),
        (2, Some(0), Some(0))
    );
}

#[test]
fn start_or_stop_in_a_transitional_state_is_typed_as_transitional() {
    let fake = fake();
    fake.world().build_polls = 1000;
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    let b = os.create(1).unwrap().remove(0).result.unwrap();
    assert_eq!(b.status, Status::Build);
    match os.stop(&b) {
        Err(e @ CloudError::Transitional { .. }) => {
            assert!(e.is_retryable());
            assert!(e.to_string().contains("vm_state building"), "{e}");
        }
        other => panic!("expected Transitional, got {other:?}"),
    }
    assert!(matches!(os.start(&b), Err(CloudError::Transitional { .. })));
    // A 400 on an action is treated the same way.
    fake.inject(Fault {
        method: "POST",
        path_part: "/action",
        status: 400,
        body: json!({"badRequest": {"code": 400, "message": "There is no such action currently supported"}}),
        count: 1,
        after: false,
    });
    assert!(matches!(os.stop(&b), Err(CloudError::Transitional { .. })));
}

#[test]
fn server_errors_are_retried_with_backoff_then_reported_as_transient() {
    let fake = fake();
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    fake.add_server("node-1", "ACTIVE");
    let unavailable = json!({"serviceUnavailable": {"code": 503, "message": "try later"}});
    fake.inject(Fault {
        method: "GET",
        path_part: "/servers/detail",
        status: 503,
        body: unavailable.clone(),
        count: 2,
        after: false,
    });
    assert_eq!(names(&os.list().unwrap()), ["node-1"]);
    assert_eq!(fake.count("GET", "/servers/detail"), 3);

    fake.inject(Fault {
        method: "GET",
        path_part: "/servers/detail",
        status: 503,
        body: unavailable,
        count: 3,
        after: false,
    });
    match os.list() {
        Err(e @ CloudError::Transient { attempts: 3, .. }) => assert!(e.is_retryable()),
        other => panic!("expected Transient after 3 attempts, got {other:?}"),
    }
}

#[test]
fn a_create_whose_reply_was_lost_is_found_by_name_and_never_duplicated() {
    let fake = fake();
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    // Nova creates the server, but the 202 never arrives (a 500 from a proxy).
    fake.inject(Fault {
        method: "POST",
        path_part: "/servers",
        status: 500,
        body: json!({"computeFault": {"code": 500, "message": "proxy error"}}),
        count: 1,
        after: true,
    });
    let c = os.create(1).unwrap();
    let b = c[0].result.as_ref().unwrap();
    assert_eq!(b.name, "node-1");
    assert_eq!(fake.count("POST", "/servers"), 1, "never posted twice");
    assert_eq!(fake.world().servers.len(), 1);

    // A 503 that did not create anything: posted again, once.
    fake.inject(Fault {
        method: "POST",
        path_part: "/servers",
        status: 503,
        body: json!({"serviceUnavailable": {"code": 503, "message": "busy"}}),
        count: 1,
        after: false,
    });
    let c = os.create(1).unwrap();
    assert_eq!(c[0].result.as_ref().unwrap().name, "node-2");
    assert_eq!(fake.count("POST", "/servers"), 3);
    assert_eq!(fake.world().servers.len(), 2);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn a_revoked_token_is_renewed_once_on_401() {
    let fake = fake();
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    os.list().unwrap();
    fake.revoke_tokens();
    os.list().unwrap();
    assert_eq!(fake.count("POST", "/auth/tokens"), 2);
    assert_eq!(fake.world().unauthorized_replies, 1);
    assert_eq!(os.session().authentications(), 2);
}

#[test]
fn a_token_is_renewed_before_it_expires() {
    let fake = fake();
    fake.world().token_ttl = chrono::Duration::seconds(2);
    let os = OpenStack::new(&password_config(&fake, &[]), options()).unwrap();
    os.list().unwrap();
    // Keep working: the client renews ahead of expiry, so Keystone never has to refuse.
    common::wait::poll_until(
        "a second token",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || {
            os.list().unwrap();
            (fake.count("POST", "/auth/tokens") >= 2).then_some(())
        },
    )
    .unwrap();
    assert_eq!(fake.world().unauthorized_replies, 0);
}

#[test]
fn region_and_interface_choose_the_endpoint() {
    let fake = fake();
    let os = OpenStack::new(
        &password_config(&fake, &[("region_name", "RegionTwo")]),
        options(),
    )
    .unwrap();
    os.list().unwrap();
    let os = OpenStack::new(
        &password_config(&fake, &[("interface", "internal")]),
        options(),
    )
    .unwrap();
    os.list().unwrap();
    let zones: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/servers/detail"))
        .map(|r| r.path.split('/').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(zones, ["r2pub", "r1int"]);
    let os = OpenStack::new(
        &password_config(&fake, &[("region_name", "RegionNine")]),
        options(),
    )
    .unwrap();
    match os.list() {
        Err(CloudError::NotFound { what }) => assert!(what.contains("RegionNine"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn microversion_2_37_is_sent_and_its_schema_holds() {
    let fake = fake();
    let os = OpenStack::new(
        &password_config(&fake, &[("compute_api_version", "2.37")]),
        options(),
    )
    .unwrap();
    os.create(1).unwrap().remove(0).result.unwrap();
    let create = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/servers"))
        .unwrap();
    assert_eq!(create.header("OpenStack-API-Version"), Some("compute 2.37"));
    assert_eq!(create.header("X-OpenStack-Nova-API-Version"), Some("2.37"));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn a_missing_image_is_not_found_and_nothing_is_created() {
    let fake = fake();
    let mut o = options();
    o.server.image = Some("ubuntu-24".into());
    let os = OpenStack::new(&password_config(&fake, &[]), o).unwrap();
    match os.create(2) {
        Err(CloudError::NotFound { what }) => assert!(what.contains("ubuntu-24"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(fake.count("POST", "/servers"), 0);
}

#[test]
fn secrets_never_show_in_debug_output() {
    let fake = fake();
    let cfg = password_config(&fake, &[]);
    let os = OpenStack::new(&cfg, options()).unwrap();
    os.list().unwrap();
    let token = fake.world().tokens[0].0.clone();
    let shown = format!("{cfg:?} {os:?} {:?}", os.session().token().unwrap());
    assert!(!shown.contains("correct horse"), "{shown}");
    assert!(!shown.contains(&token), "{shown}");
    assert!(shown.contains("<redacted>"));
    let mut ov = Overrides::default();
    ov.set("password", Some("correct horse".into()));
    assert!(!format!("{ov:?}").contains("correct horse"));
}
