//! TLS termination at each balancer, for real: HAProxy, Pound and nginx serve the lab's
//! certificate in front of plain-HTTP backends, curl trusts it through the lab's CA (and
//! only through it), and httperf --ssl gets every reply, with full handshakes and with
//! resumed sessions. One fleet of backends serves all three balancers.

use std::process::Command;
use std::time::Duration;

use common::Shutdown;
use lbbench::httperf::{Httperf, HttperfArgs, HttperfError, Tls};
use lbbench::lab::experiment::CONNECTION_CLOSE;
use lbbench::lab::{Balancer, BalancerOptions, Fleet, FleetOptions, LabTls};

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl must be installed (scripts/setup.sh)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_balancer_terminates_tls_for_curl_and_httperf() {
    let shutdown = Shutdown::new().unwrap();
    let fleet = Fleet::start(
        &FleetOptions::with_program(2, env!("CARGO_BIN_EXE_lbbench")),
        &shutdown,
    )
    .unwrap();
    let lab = tempfile::tempdir().unwrap();
    let tls = LabTls::in_dir(lab.path()).unwrap();
    let ca = tls.ca_path().to_str().unwrap().to_owned();
    let httperf = Httperf::locate(None).expect("httperf must be installed (scripts/setup.sh)");
    for b in Balancer::ALL {
        let opts = BalancerOptions {
            tls: Some(tls.clone()),
            ..BalancerOptions::default()
        };
        let lb = b
            .start(&fleet.upstreams(), &opts, &shutdown)
            .unwrap_or_else(|e| panic!("{b}: {e}"));
        let url = format!("{}perf.php?sleep=0&rounds=3", lb.url());
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        // The readiness check got `It works!` over TLS; so does our own client.
        let home = lb.get("/", Duration::from_secs(5)).unwrap();
        assert!(home.body.contains("It works!"), "{b}: {}", home.body);

        // curl with the lab's CA: a verified TLS connection, answered by a backend.
        let (ok, body, err) = curl(&["--cacert", &ca, &url]);
        assert!(ok, "{b}: curl failed: {err}");
        assert!(body.starts_with("Rounds "), "{b}: {body}");
        // Without it, the certificate is not trusted: it really is the lab's own.
        let (ok, _, err) = curl(&[&url]);
        assert!(
            !ok,
            "{b}: curl trusted the lab's certificate without its CA"
        );
        assert!(
            err.contains("certificate") || err.contains("issuer"),
            "{b}: {err}"
        );
        // Plain HTTP to the TLS port gets no page.
        let plain = common::net::http_get(lb.addr(), "/", Duration::from_secs(5));
        assert!(
            !plain.is_ok_and(|r| r.body.contains("It works!")),
            "{b} answered plain HTTP on its TLS port"
        );

        // httperf --ssl: every connection a full handshake, then resumed sessions.
        for mode in [Tls::On, Tls::Resumed] {
            let mut args = HttperfArgs::new("127.0.0.1", 40.0, 40);
            args.port = lb.addr().port();
            args.uri = "/perf.php?sleep=0.01".into();
            args.tls = mode;
            args.extra = vec![CONNECTION_CLOSE.to_owned()];
            let out = httperf
                .run(&args, None)
                .unwrap_or_else(|e| panic!("{b} {mode}: {e}"));
            let r = &out.report;
            assert!(r.command.contains("--ssl"), "{}", r.command);
            assert_eq!(r.total_connections, 40, "{b} {mode}: {}", out.raw.stdout);
            assert_eq!(
                (r.total_replies, r.reply_status_2xx),
                (40, 40),
                "{b} {mode}: {}",
                out.raw.stdout
            );
            if mode == Tls::On {
                assert_eq!(r.errors_total, 0, "{b}: {}", out.raw.stdout);
            } else {
                // httperf's artefact with resumed sessions: a later request of a session is
                // first sent on the connection the server has just closed (at most 3 of
                // every 4), then again on a new connection that resumes the session.
                assert_eq!(
                    r.errors_total, r.errors_conn_reset,
                    "{b}: {}",
                    out.raw.stdout
                );
                assert!(r.errors_conn_reset <= 30, "{b}: {}", out.raw.stdout);
            }
        }
        lb.stop().unwrap_or_else(|e| panic!("{b}: {e}"));
    }

    // httperf --ssl against a port that speaks plain HTTP: httperf exits at the first
    // handshake, and the error says why.
    let mut args = HttperfArgs::new("127.0.0.1", 10.0, 2);
    args.port = fleet.addrs()[0].port();
    args.tls = Tls::On;
    match httperf.run(&args, None) {
        Err(e @ HttperfError::TlsHandshake { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("does not speak TLS"), "{msg}");
        }
        other => panic!("expected a TLS handshake error, got {other:?}"),
    }
}
