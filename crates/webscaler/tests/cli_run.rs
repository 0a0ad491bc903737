//! `webscaler run` and `status` from the command line without starting anything: the
//! configuration's precedence (defaults < TOML file < WEBSCALER_* < flags), errors that name
//! their input, and the shipped etc/webscaler.toml.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

/// `webscaler` with an empty environment and a temporary home and working directory.
fn webscaler(home: &Path) -> Command {
    let mut c = Command::cargo_bin("webscaler").unwrap();
    c.env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .current_dir(home);
    c
}

fn settings(home: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = webscaler(home);
    c.args(["run", "--check-config"]).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn value<'a>(settings: &'a str, key: &str) -> &'a str {
    settings
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{settings}"))
}

#[test]
fn defaults_are_the_lab_reports_and_the_policys() {
    let home = tempfile::tempdir().unwrap();
    let s = settings(home.path(), &[], &[]);
    assert_eq!(value(&s, "interval"), "\"5s\"");
    assert_eq!(value(&s, "threshold"), "10");
    assert_eq!(value(&s, "min"), "2");
    assert_eq!(value(&s, "max"), "none", "the quota decides");
    assert_eq!(value(&s, "scale_down_window"), "\"1m0s\"");
    assert_eq!(value(&s, "scale_down_window_max"), "\"5m0s\"");
    assert_eq!(value(&s, "scale_down_regret"), "\"2m0s\"");
    assert_eq!(value(&s, "tolerance"), "0");
    assert_eq!(value(&s, "predictive"), "true");
    assert_eq!(value(&s, "warm_pool"), "1");
    assert_eq!(value(&s, "metric"), "\"sessions\"");
    assert_eq!(
        value(&s, "haproxy.mode"),
        "\"embedded\"",
        "no cloud: embedded"
    );
    assert_eq!(value(&s, "haproxy.frontend"), "\"127.0.0.1:8080\"");
    assert_eq!(value(&s, "cloud.provider"), "\"local\"");
    let state = home.path().join(".local/state/webscaler");
    assert_eq!(
        value(&s, "state_dir"),
        format!("{:?}", state.display().to_string())
    );
}

#[test]
fn flags_win_over_variables_which_win_over_the_file() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("webscaler.toml");
    std::fs::write(
        &cfg,
        "interval = \"30s\"\nthreshold = 20\nmin = 3\nwarm_pool = 2\nmetric = \"requests\"\n\
         [haproxy]\nfrontend = \"127.0.0.1:9000\"\ncheck_inter = \"500ms\"\n\
         [cloud]\nprefix = \"web-\"\nmax_backends = 7\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    // The file alone.
    let s = settings(home.path(), &["--config", c], &[]);
    assert_eq!(value(&s, "interval"), "\"30s\"");
    assert_eq!(value(&s, "threshold"), "20");
    assert_eq!(value(&s, "min"), "3");
    assert_eq!(value(&s, "warm_pool"), "2");
    assert_eq!(value(&s, "metric"), "\"requests\"");
    assert_eq!(value(&s, "haproxy.frontend"), "\"127.0.0.1:9000\"");
    assert_eq!(value(&s, "haproxy.check_inter"), "\"500ms\"");
    assert_eq!(value(&s, "cloud.prefix"), "\"web-\"");
    // Variables over the file (and the file given by a variable).
    let env = [
        ("WEBSCALER_CONFIG", c),
        ("WEBSCALER_INTERVAL", "10s"),
        ("WEBSCALER_THRESHOLD", "12.5"),
        ("WEBSCALER_FRONTEND", "127.0.0.1:9100"),
    ];
    let s = settings(home.path(), &[], &env);
    assert_eq!(value(&s, "interval"), "\"10s\"");
    assert_eq!(value(&s, "threshold"), "12.5");
    assert_eq!(value(&s, "min"), "3", "still the file's");
    assert_eq!(value(&s, "haproxy.frontend"), "\"127.0.0.1:9100\"");
    // Flags over both.
    let s = settings(
        home.path(),
        &[
            "--interval",
            "1s",
            "--min",
            "1",
            "--frontend",
            "127.0.0.1:9200",
            "--prefix",
            "app-",
        ],
        &env,
    );
    assert_eq!(value(&s, "interval"), "\"1s\"");
    assert_eq!(value(&s, "threshold"), "12.5");
    assert_eq!(value(&s, "min"), "1");
    assert_eq!(value(&s, "haproxy.frontend"), "\"127.0.0.1:9200\"");
    assert_eq!(value(&s, "cloud.prefix"), "\"app-\"");
}

#[test]
fn a_socket_or_a_cloud_means_the_systems_haproxy() {
    let home = tempfile::tempdir().unwrap();
    let s = settings(home.path(), &["--socket", "/run/haproxy/admin.sock"], &[]);
    assert_eq!(value(&s, "haproxy.mode"), "\"system\"");
    let s = settings(
        home.path(),
        &[],
        &[("OS_AUTH_URL", "https://keystone.invalid:5000/v3")],
    );
    assert_eq!(value(&s, "cloud.provider"), "\"openstack\"");
    assert_eq!(value(&s, "haproxy.mode"), "\"system\"");
    let s = settings(
        home.path(),
        &["--haproxy", "embedded", "--socket", "/x"],
        &[],
    );
    assert_eq!(value(&s, "haproxy.mode"), "\"embedded\"");
}

#[test]
fn bad_configuration_exits_2_naming_the_input() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("bad.toml");
    std::fs::write(&cfg, "interval = \"5s\"\nthresold = 10\n").unwrap();
    webscaler(home.path())
        .args(["run", "--check-config", "--config"])
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml").and(predicate::str::contains("thresold")));
    std::fs::write(&cfg, "[haproxy]\ncheck_rise = 0\n").unwrap();
    webscaler(home.path())
        .args(["run", "--check-config", "--config"])
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("rise"));
    webscaler(home.path())
        .args([
            "run",
            "--check-config",
            "--config",
            "/nonexistent/webscaler.toml",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/webscaler.toml"));
    webscaler(home.path())
        .args(["run", "--check-config", "--min", "5", "--max", "3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("min (5) is above max (3)"));
    webscaler(home.path())
        .args(["run", "--check-config", "--threshold", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("threshold"));
    webscaler(home.path())
        .args(["run", "--check-config", "--interval", "5 parsecs"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("5 parsecs"));
}

#[test]
fn the_shipped_configuration_file_is_valid_and_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let shipped = testkit::workspace_root().join("etc/webscaler.toml");
    let with = settings(home.path(), &["--config", shipped.to_str().unwrap()], &[]);
    let without = settings(home.path(), &[], &[]);
    assert_eq!(with, without, "every key is commented out with its default");
}

#[test]
fn status_without_a_running_instance_says_so_and_exits_0() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    webscaler(home.path())
        .args(["status", "--provider", "local", "--state-dir"])
        .arg(&state)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("webscaler run: no run active on")
                .and(predicate::str::contains("HAProxy: the embedded HAProxy of"))
                .and(predicate::str::contains("does not answer")),
        );
    let out = webscaler(home.path())
        .args(["status", "--json", "--provider", "local", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["running"].is_null());
    assert_eq!(v["backends"], serde_json::json!([]));
    assert!(
        v["haproxy_error"]
            .as_str()
            .unwrap()
            .contains("does not answer")
    );
    // Errors are JSON too, with the same exit status.
    let out = webscaler(home.path())
        .args(["status", "--json", "--interval", "1ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("--interval"), "{v}");
}

/// `run` refused before anything is created: exit 2, the flag named, no state directory.
fn refused(home: &Path, args: &[&str], says: &str) {
    let state = home.join("state");
    webscaler(home)
        .args(["run", "--provider", "local", "--state-dir"])
        .arg(&state)
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(says));
    assert!(!state.exists(), "{args:?} created {}", state.display());
}

#[test]
fn everything_is_checked_before_anything_is_done() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // The CSV: a device, a directory.
    refused(
        h,
        &["-o", "/dev/full"],
        "-o /dev/full: /dev/full is not a regular file",
    );
    std::fs::create_dir(h.join("dir.csv")).unwrap();
    refused(h, &["-o", "dir.csv"], "-o dir.csv");
    // The prefix: HAProxy's name characters, no path.
    refused(
        h,
        &["--prefix", "a;b"],
        "--prefix (cloud.prefix) \"a;b\": ';' is not allowed",
    );
    refused(h, &["--prefix", "../x"], "'/' is not allowed");
    refused(h, &["--prefix", "a\nb"], "'\\n' is not allowed");
    refused(
        h,
        &["--prefix", ""],
        "--prefix (cloud.prefix) \"\": it is empty",
    );
    // Durations too short to work.
    refused(
        h,
        &["--interval", "1ms"],
        "--interval (interval) 1ms is too short: at least 100ms",
    );
    refused(
        h,
        &["--check-timeout", "0s"],
        "--check-timeout (check_timeout) 0ms is too short: at least 16s (3 × check rise 2 × check interval 1s + 2 × interval 5s)",
    );
    refused(
        h,
        &["--check-inter", "1ms"],
        "--check-inter (haproxy.check_inter) 1ms is too short",
    );
    refused(
        h,
        &["--drain-timeout", "1s"],
        "--drain-timeout (drain_timeout) 1s is too short: at least 5s",
    );
    refused(
        h,
        &["--socket-timeout", "0s"],
        "--socket-timeout (haproxy.socket_timeout)",
    );
    // The same bound from the file names its key.
    std::fs::write(h.join("w.toml"), "check_timeout = \"2s\"\n").unwrap();
    refused(
        h,
        &["--config", "w.toml"],
        "(check_timeout) 2s is too short",
    );
    // The backend command: its words, its program.
    refused(
        h,
        &["--command", "lbbench 'backend"],
        "--command (cloud.command): cannot split",
    );
    refused(
        h,
        &["--command", "/nonexistent/prog --port {port}"],
        "/nonexistent/prog does not exist",
    );
    refused(
        h,
        &["--reload-command", "  "],
        "--reload-command (haproxy.reload_command) is empty",
    );
    // The metrics' address: taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    refused(
        h,
        &["--metrics", &addr],
        &format!("--metrics {addr}: cannot listen: Address already in use"),
    );
}

#[test]
fn the_metrics_address_is_off_by_default_and_layered() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert_eq!(value(&settings(h, &[], &[]), "metrics"), "none");
    std::fs::write(h.join("m.toml"), "metrics = \"127.0.0.1:9180\"\n").unwrap();
    let file = ["--config", "m.toml"];
    assert_eq!(
        value(&settings(h, &file, &[]), "metrics"),
        "\"127.0.0.1:9180\""
    );
    let env = [("WEBSCALER_METRICS", "127.0.0.1:9181")];
    assert_eq!(
        value(&settings(h, &file, &env), "metrics"),
        "\"127.0.0.1:9181\""
    );
    let s = settings(h, &[&file[..], &["--metrics", "[::1]:9182"]].concat(), &env);
    assert_eq!(value(&s, "metrics"), "\"[::1]:9182\"");
    std::fs::write(h.join("bad.toml"), "metrics = \"localhost\"\n").unwrap();
    webscaler(h)
        .args(["run", "--check-config", "--config", "bad.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml").and(predicate::str::contains("metrics")));
    webscaler(h)
        .args(["run", "--check-config", "--metrics", "9180"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--metrics"));
}

#[test]
fn a_relative_state_dir_is_made_absolute() {
    let home = tempfile::tempdir().unwrap();
    let s = settings(home.path(), &["--state-dir", "rel/state"], &[]);
    assert_eq!(
        value(&s, "state_dir"),
        format!("{:?}", home.path().join("rel/state").display().to_string())
    );
}

#[test]
fn the_lab_report_policy_is_named_lab_report_and_seed_is_its_alias() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("w.toml");
    for name in ["lab-report", "seed"] {
        let s = settings(home.path(), &["--policy", name], &[]);
        assert_eq!(value(&s, "policy"), "\"lab-report\"", "--policy {name}");
        let s = settings(home.path(), &[], &[("WEBSCALER_POLICY", name)]);
        assert_eq!(
            value(&s, "policy"),
            "\"lab-report\"",
            "WEBSCALER_POLICY={name}"
        );
        std::fs::write(&cfg, format!("policy = \"{name}\"\n")).unwrap();
        let s = settings(home.path(), &["--config", cfg.to_str().unwrap()], &[]);
        assert_eq!(value(&s, "policy"), "\"lab-report\"", "policy = {name:?}");
    }
    webscaler(home.path())
        .args(["run", "--check-config", "--policy", "lab"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("lab-report"));
}

#[test]
fn the_history_and_the_reference_policies_are_checked_before_anything_starts() {
    let home = tempfile::tempdir().unwrap();
    let days = testkit::workspace_root().join("benches-data/trace-days.csv");
    let out = webscaler(home.path())
        .args(["run", "--check-config", "--history"])
        .arg(&days)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("history: 5 days"));
    webscaler(home.path())
        .args(["run", "--check-config", "--history", "/nonexistent/h.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read history /nonexistent/h.csv",
        ));
    webscaler(home.path())
        .args(["run", "--check-config", "--policy", "seed", "--history"])
        .arg(&days)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("default policy only"));
    webscaler(home.path())
        .args(["run", "--check-config", "--policy", "oracle"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "only `webscaler simulate` can run it",
        ));
    let cfg = home.path().join("w.toml");
    std::fs::write(&cfg, "[hpa]\nsync_period = \"0s\"\n").unwrap();
    webscaler(home.path())
        .args(["run", "--check-config", "--config"])
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hpa.sync_period"));
    std::fs::write(
        &cfg,
        "[target_tracking]\nwarmup = \"2m\"\nscale_in_periods = 5\n",
    )
    .unwrap();
    let s = settings(home.path(), &["--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(value(&s, "target_tracking.warmup"), "\"2m0s\"");
    assert_eq!(value(&s, "target_tracking.scale_in_periods"), "5");
    let s = settings(
        home.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--tt-scale-in-periods",
            "7",
        ],
        &[],
    );
    assert_eq!(
        value(&s, "target_tracking.scale_in_periods"),
        "7",
        "flags win"
    );
}

#[test]
fn several_haproxy_instances_from_flags_or_the_file_each_with_its_own_files() {
    let home = tempfile::tempdir().unwrap();
    let s = settings(
        home.path(),
        &[
            "--haproxy",
            "system",
            "--socket",
            "/run/a.sock",
            "--socket",
            "/run/b.sock",
            "--backend-file",
            "/etc/a.cfg",
            "--backend-file",
            "/etc/b.cfg",
        ],
        &[],
    );
    assert_eq!(
        value(&s, "haproxy.socket"),
        r#"["/run/a.sock", "/run/b.sock"]"#
    );
    assert_eq!(
        value(&s, "haproxy.backend_file"),
        r#"["/etc/a.cfg", "/etc/b.cfg"]"#
    );
    let cfg = home.path().join("multi.toml");
    std::fs::write(
        &cfg,
        "[haproxy]\nfrontend = [\"127.0.0.1:8080\", \"127.0.0.1:8081\"]\nsocket = \"/run/one.sock\"\n",
    )
    .unwrap();
    let s = settings(home.path(), &["--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(
        value(&s, "haproxy.frontend"),
        r#"["127.0.0.1:8080", "127.0.0.1:8081"]"#
    );
    assert_eq!(value(&s, "haproxy.socket"), r#""/run/one.sock""#);
    // One flag overrides the whole list of the file.
    let s = settings(
        home.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--frontend",
            "127.0.0.1:9",
        ],
        &[],
    );
    assert_eq!(value(&s, "haproxy.frontend"), r#""127.0.0.1:9""#);
    // Counts that differ, and one frontend twice: usage errors.
    webscaler(home.path())
        .args([
            "run",
            "--check-config",
            "--socket",
            "/run/a.sock",
            "--socket",
            "/run/b.sock",
        ])
        .args(["--backend-file", "/etc/a.cfg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--backend-file (haproxy.backend_file) is given 1 time(s) for 2 --socket",
        ));
    webscaler(home.path())
        .args(["run", "--check-config", "--socket", "/run/a.sock"])
        .args(["--master-socket", "/run/m1", "--master-socket", "/run/m2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--master-socket"));
    webscaler(home.path())
        .args([
            "run",
            "--check-config",
            "--frontend",
            "127.0.0.1:9",
            "--frontend",
        ])
        .arg("127.0.0.1:9")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("127.0.0.1:9 is given twice"));
}
