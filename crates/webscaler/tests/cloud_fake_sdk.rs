//! The fidelity check of the fake OpenStack: openstacksdk,
//! an independent client (Debian's python3-openstacksdk, installed by scripts/setup.sh),
//! drives the fake through a whole lifecycle: password auth with version discovery, list
//! servers, image and network by name, create, stop, start, limits, delete. If the upstream
//! SDK works against the fake, the fake speaks the real protocol, and the tests of our own
//! client against it mean something. The fake must see no contract violation.

mod openstack;

use std::process::{Command, Stdio};

use openstack::fake_openstack::{
    FLAVOR_ID, FakeOpenStack, IMAGE_ID, IMAGE_NAME, NETWORK_ID, NETWORK_NAME,
};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/openstack/sdk_lifecycle.py"
);
const USER_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../etc/clouddata.txt");

#[test]
fn openstacksdk_drives_the_fake_through_a_lifecycle() {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import openstack"])
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "openstacksdk (python3-openstacksdk) is not installed: run `sudo bash scripts/setup.sh`"
    );
    let fake = FakeOpenStack::start();
    fake.world().expected_user_data = Some(std::fs::read(USER_DATA).unwrap());
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/python3")
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .current_dir(home.path())
        .stdin(Stdio::null())
        .arg(SCRIPT)
        .arg(format!("{}/v3", fake.auth_url().trim_end_matches("/v3")))
        .args([IMAGE_NAME, NETWORK_NAME, FLAVOR_ID, USER_DATA])
        .output()
        .unwrap();
    let requests: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}{} -> {}",
                r.method,
                r.path,
                if r.query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", r.query)
                },
                r.status
            )
        })
        .collect();
    eprintln!("requests of openstacksdk:\n{}", requests.join("\n"));
    assert!(
        out.status.success(),
        "openstacksdk failed against the fake:\n{}\nrequests:\n{}",
        String::from_utf8_lossy(&out.stderr),
        requests.join("\n")
    );
    assert_eq!(
        fake.violations(),
        Vec::<String>::new(),
        "requests:\n{}",
        requests.join("\n")
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["image_ids"], json!([IMAGE_ID]));
    assert_eq!(seen["network_ids"], json!([NETWORK_ID]));
    assert_eq!(seen["after_create"], "ACTIVE");
    assert_eq!(seen["after_stop"], "SHUTOFF");
    assert_eq!(seen["after_start"], "ACTIVE");
    assert!(
        seen["servers_during"]
            .as_array()
            .unwrap()
            .contains(&json!("node-1")),
        "{seen}"
    );
    assert!(
        !seen["servers_after"]
            .as_array()
            .unwrap()
            .contains(&json!("node-1")),
        "{seen}"
    );
    assert!(seen["max_total_instances"].as_i64().is_some(), "{seen}");
    // What went over the wire: version discovery (Keystone's v3 document, Nova's v2.1
    // document, Glance's version list), a token, and Nova's actions.
    for line in [
        "GET /identity/v3 -> 200",
        "GET /r1pub/compute/v2.1 -> 200",
        "GET /r1pub/image -> 300",
    ] {
        assert!(
            requests.iter().any(|r| r == line),
            "no {line:?} in:\n{}",
            requests.join("\n")
        );
    }
    let has = |m: &str, part: &str| fake.count(m, part) > 0;
    assert!(
        has("POST", "/identity/v3/auth/tokens"),
        "{}",
        requests.join("\n")
    );
    assert!(has("POST", "/servers"));
    assert!(has("POST", "/action"));
    assert!(has("DELETE", "/servers/"));
    assert!(has("GET", "/limits"));
}
