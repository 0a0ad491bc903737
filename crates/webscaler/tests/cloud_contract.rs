//! Contract tests without a network: every official sample decodes into our types with
//! the fields we use, and the bodies we send equal the official request samples and
//! validate against the OpenAPI request schemas.

mod openstack;

use openstack::{fixture, schema};
use serde_json::{Value, json};
use webscaler::cloud::Status;
use webscaler::cloud::openstack::Secret;
use webscaler::cloud::openstack::auth::{parse_token, select_endpoint, token_request};
use webscaler::cloud::openstack::compute::{
    CreateRequest, Flavor, Server, create_body, parse_limits,
};
use webscaler::cloud::openstack::config::{
    AppCredRef, AuthMethod, DomainRef, Interface, ProjectRef, UserRef,
};
use webscaler::cloud::openstack::image::ImagesPage;
use webscaler::cloud::openstack::network::NetworksPage;

fn load(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap()
}

fn servers_of(v: &Value) -> Vec<Server> {
    let list = v
        .get("servers")
        .cloned()
        .unwrap_or_else(|| json!([v["server"].clone()]));
    serde_json::from_value(list).unwrap()
}

#[test]
fn every_server_sample_decodes_with_the_fields_we_use() {
    for (rel, mv) in [
        ("nova/servers/servers-details-resp.json", "2.1"),
        ("nova/servers/server-get-resp.json", "2.1"),
        ("nova/servers/v2.47/servers-details-resp.json", "2.47"),
        ("nova/servers/v2.47/server-get-resp.json", "2.47"),
        ("nova/servers/v2.100/servers-details-resp.json", "2.100"),
        ("nova/servers/v2.100/server-get-resp.json", "2.100"),
    ] {
        let servers = servers_of(&load(rel));
        assert!(!servers.is_empty(), "{rel}");
        for s in servers {
            let b = s.to_backend(Some("private"));
            assert!(!b.id.is_empty(), "{rel}");
            assert!(!b.name.is_empty(), "{rel}");
            assert_eq!(b.status, Status::Active, "{rel} ({mv})");
            assert!(b.created.is_some(), "{rel}: created");
            let a = b.address.unwrap_or_else(|| panic!("{rel}: address"));
            assert_eq!(a.ip.to_string(), "192.168.1.30", "{rel}");
            assert_eq!(b.task, None);
        }
    }
}

#[test]
fn a_down_cell_record_decodes_as_unknown() {
    // v2.69: partial records, status UNKNOWN, no name, no flavor.
    let v = load("nova/servers/v2.69/servers-details-resp.json");
    let servers = servers_of(&v);
    assert!(
        servers
            .iter()
            .any(|s| s.to_backend(None).status == Status::Unknown),
        "{servers:?}"
    );
    let v = load("nova/servers/v2.69/server-get-resp.json");
    let s = &servers_of(&v)[0];
    assert_eq!(s.to_backend(None).status, Status::Unknown);
}

#[test]
fn every_limits_sample_parses() {
    for rel in [
        "nova/limits/limit-get-resp.json",
        "nova/limits/v2.36/limit-get-resp.json",
        "nova/limits/v2.39/limit-get-resp.json",
        "nova/limits/v2.57/limit-get-resp.json",
    ] {
        let text = std::fs::read(fixture(rel)).unwrap();
        let l = parse_limits(&text).unwrap();
        assert_eq!(l.max_total_instances, 10, "{rel}");
        assert_eq!(l.total_instances_used, 0, "{rel}");
        assert_eq!(l.max_total_cores, Some(20), "{rel}");
        assert_eq!(l.max_total_ram_size, Some(51200), "{rel}");
    }
}

#[test]
fn every_flavor_sample_parses() {
    for dir in ["", "v2.55/", "v2.61/", "v2.75/", "v2.102/"] {
        let v = load(&format!("nova/flavors/{dir}flavors-detail-resp.json"));
        let f: Vec<Flavor> = serde_json::from_value(v["flavors"].clone()).unwrap();
        let tiny = f.iter().find(|f| f.name == "m1.tiny").unwrap();
        assert_eq!(
            (tiny.id.as_str(), tiny.vcpus, tiny.ram),
            ("1", Some(1), Some(512)),
            "{dir}"
        );
        assert!(f.iter().any(|f| f.name == "m1.tiny.specs"), "{dir}");
    }
}

#[test]
fn token_samples_parse_and_endpoints_are_selected_by_type_interface_and_region() {
    let body = std::fs::read(fixture(
        "keystone/admin/auth-password-project-scoped-response.json",
    ))
    .unwrap();
    let t = parse_token("ffe47524401e4d61adc7310f7e5b6191", &body).unwrap();
    assert_eq!(
        t.project_id.as_deref(),
        Some("a6944d763bf64ee6a275f1263fae0352")
    );
    assert_eq!(
        t.expires_at.to_rfc3339(),
        "2015-11-07T02:58:43.578887+00:00"
    );
    let pick = |kind, i, r| select_endpoint(&t.catalog, kind, i, r);
    assert_eq!(
        pick("compute", Interface::Public, Some("RegionOne")).unwrap(),
        "http://23.253.248.171:8774/v2.1/a6944d763bf64ee6a275f1263fae0352"
    );
    // Network and image are bare roots (the client appends /v2.0 and /v2).
    assert_eq!(
        pick("network", Interface::Public, None).unwrap(),
        "http://23.253.248.171:9696"
    );
    assert_eq!(
        pick("image", Interface::Internal, None).unwrap(),
        "http://23.253.248.171:9292"
    );
    assert!(pick("compute", Interface::Public, Some("RegionTwo")).is_err());
    assert!(pick("placement", Interface::Public, None).is_err());

    for rel in [
        "keystone/auth/responses/project-scoped-password.json",
        "keystone/admin/auth-application-credential-response.json",
        "keystone/auth/responses/unscoped-password.json",
    ] {
        let body = std::fs::read(fixture(rel)).unwrap();
        parse_token("x", &body).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
    let unscoped =
        std::fs::read(fixture("keystone/auth/responses/unscoped-password.json")).unwrap();
    assert!(parse_token("x", &unscoped).unwrap().catalog.is_empty());
}

#[test]
fn glance_and_neutron_samples_parse() {
    let p: ImagesPage = serde_json::from_value(load("glance/images-list-response.json")).unwrap();
    assert_eq!(p.images.len(), 2);
    assert_eq!(
        p.images[0].name.as_deref(),
        Some("cirros-0.3.2-x86_64-disk")
    );
    assert_eq!(p.images[0].status.as_deref(), Some("active"));
    assert!(p.next.is_none());
    let n: NetworksPage =
        serde_json::from_value(load("neutron/networks/networks-list-response.json")).unwrap();
    assert_eq!(
        n.networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["net1", "net2"]
    );
}

#[test]
fn password_token_requests_equal_the_keystone_samples() {
    let by_project_name = AuthMethod::Password {
        user: UserRef::Id("ee4dfb6e5540447cb3741905149d9b6e".into()),
        password: Secret::new("devstacker"),
        project: ProjectRef::Name {
            name: "admin".into(),
            domain: DomainRef::Id("default".into()),
        },
    };
    assert_eq!(
        token_request(&by_project_name),
        load("keystone/auth/requests/project-name-password.json")
    );
    let sample = load("keystone/auth/requests/project-id-password.json");
    let project_id = sample["auth"]["scope"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_project_id = AuthMethod::Password {
        user: UserRef::Id("ee4dfb6e5540447cb3741905149d9b6e".into()),
        password: Secret::new("devstacker"),
        project: ProjectRef::Id(project_id),
    };
    assert_eq!(token_request(&by_project_id), sample);
    let s = schema::load("AuthTokensPostRequest");
    schema::validate(&s, &token_request(&by_project_name)).unwrap();
    // openstacksdk's body for the most common case: user and project by name, each with a
    // domain name (tests/unit/base.py get_keystone_v3_token()).
    let by_names = AuthMethod::Password {
        user: UserRef::Name {
            name: "admin".into(),
            domain: DomainRef::Name("default".into()),
        },
        password: Secret::new("password"),
        project: ProjectRef::Name {
            name: "admin".into(),
            domain: DomainRef::Name("default".into()),
        },
    };
    let body = token_request(&by_names);
    assert_eq!(
        body,
        json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "default"}, "password": "password"}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "default"}}}
        }})
    );
    schema::validate(&s, &body).unwrap();
}

#[test]
fn application_credential_requests_equal_the_keystone_samples() {
    let by_id = AuthMethod::ApplicationCredential {
        credential: AppCredRef::Id("423f19a4ac1e4f48bbb4180756e6eb6c".into()),
        secret: Secret::new("rEaqvJka48mpv"),
    };
    assert_eq!(
        token_request(&by_id),
        load("keystone/admin/auth-application-credential-id-request.json")
    );
    let by_name = AuthMethod::ApplicationCredential {
        credential: AppCredRef::Name {
            name: "monitoring".into(),
            user: UserRef::Id("423f19a4ac1e4f48bbb4180756e6eb6c".into()),
        },
        secret: Secret::new("rEaqvJka48mpv"),
    };
    assert_eq!(
        token_request(&by_name),
        load("keystone/admin/auth-application-credential-name-request.json")
    );
    let s = schema::load("AuthTokensPostRequest");
    for m in [&by_id, &by_name] {
        let b = token_request(m);
        schema::validate(&s, &b).unwrap();
        assert!(b["auth"].get("scope").is_none());
    }
}

#[test]
fn start_and_stop_bodies_equal_the_nova_samples_and_schemas() {
    // What compute::action sends: {"<action>": null}.
    for (action, rel, schema_name) in [
        (
            "os-start",
            "nova/servers/server-action-start.json",
            "ServersAction_Start",
        ),
        (
            "os-stop",
            "nova/servers/server-action-stop.json",
            "ServersAction_Stop",
        ),
    ] {
        let ours = json!({ action: null });
        assert_eq!(ours, load(rel));
        schema::validate(&schema::load(schema_name), &ours).unwrap();
    }
    // The schema leaves the value open, but allows nothing beside it.
    assert!(
        schema::validate(
            &schema::load("ServersAction_Start"),
            &json!({"os-start": null, "os-stop": null})
        )
        .is_err()
    );
}

fn request() -> CreateRequest {
    CreateRequest {
        name: "node-1".into(),
        image_id: "70a599e0-31e7-49b7-b260-868f441e862b".into(),
        flavor_id: "1".into(),
        network_id: Some("d32019d3-bc6e-4319-9c1d-6722fc136a22".into()),
        key_name: Some("webscaler".into()),
        security_groups: vec!["default".into()],
        user_data_b64: Some("IyEvYmluL2Jhc2gKL2Jpbi9zdQplY2hvICJJIGFtIGluIHlvdSEiCg==".into()),
    }
}

#[test]
fn create_bodies_validate_against_the_schema_of_their_microversion() {
    for (mv, schema_name) in [
        (None, "ServersCreate_21"),
        (Some("2.37"), "ServersCreate_237"),
        (Some("2.57"), "ServersCreate_257"),
    ] {
        let s = schema::load(schema_name);
        let body = create_body(&request(), mv);
        schema::validate(&s, &body).unwrap_or_else(|e| panic!("{schema_name}: {e}"));
        let no_net = CreateRequest {
            network_id: None,
            ..request()
        };
        schema::validate(&s, &create_body(&no_net, mv))
            .unwrap_or_else(|e| panic!("{schema_name} without network: {e}"));
    }
    // The official create samples validate too (the validator agrees with the specs)...
    schema::validate(
        &schema::load("ServersCreate_21"),
        &load("nova/servers/server-create-req.json"),
    )
    .unwrap();
    schema::validate(
        &schema::load("ServersCreate_237"),
        &load("nova/servers/server-create-req-v237.json"),
    )
    .unwrap();
    // ...and rejects what Nova rejects.
    let mut bad = create_body(&request(), None);
    bad["server"]["user_data"] = Value::Null;
    assert!(schema::validate(&schema::load("ServersCreate_21"), &bad).is_err());
    let mut bad = create_body(&request(), None);
    bad["server"]["user_data"] = json!("not base64!");
    assert!(schema::validate(&schema::load("ServersCreate_21"), &bad).is_err());
    let mut bad = create_body(&request(), Some("2.37"));
    bad["server"].as_object_mut().unwrap().remove("networks");
    assert!(schema::validate(&schema::load("ServersCreate_237"), &bad).is_err());
    let mut bad = create_body(&request(), None);
    // The lab report's novaclient `nics` form is not the API's.
    bad["server"]["networks"] =
        json!([{"net-id": "d32019d3-bc6e-4319-9c1d-6722fc136a22", "v4-fixed-ip": ""}]);
    assert!(schema::validate(&schema::load("ServersCreate_21"), &bad).is_err());
}

#[test]
fn the_manifest_lists_every_fixture() {
    let root = fixture("MANIFEST.tsv");
    let manifest = std::fs::read_to_string(&root).unwrap();
    let listed: Vec<&str> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    let base = root.parent().unwrap();
    let mut stack = vec![base.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "json" || x == "yaml" || x == "txt")
            {
                let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_owned();
                assert!(
                    listed.contains(&rel.as_str()),
                    "{rel} is not in MANIFEST.tsv"
                );
                files += 1;
            }
        }
    }
    assert!(files > 60, "only {files} fixtures");
    for l in &listed {
        assert!(base.join(l).is_file(), "MANIFEST lists a missing file {l}");
    }
}
