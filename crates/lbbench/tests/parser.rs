//! The httperf report parser on every recorded output, on the lab report's sample httperf output
//! (its listing 2.1), on truncated and damaged reports, and on random reports printed with
//! httperf's own formats.

use lbbench::httperf::{
    HistogramBin, Report, ReportError, Thresholds, Validity, parse_report, parse_reports,
    target_from_command,
};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse_fixture(name: &str) -> Report {
    parse_report(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn an_added_header_is_echoed_in_quotes_and_still_read() {
    let r = parse_fixture("httperf-add-header.txt");
    assert_eq!(r.command_option("add-header"), Some("Connection: close\\n"));
    assert_eq!(r.command_option("num-conns"), Some("2"));
    assert_eq!(target_from_command(&r), Some(2.0));
    // 62 bytes without the header, plus `Connection: close\r\n`.
    assert_eq!(r.request_size, 81.0);
    assert_eq!((r.total_replies, r.reply_status_2xx), (2, 2));
}

#[test]
fn tls_runs_echo_their_options_and_print_the_usual_report() {
    let r = parse_fixture("httperf-ssl.txt");
    assert!(r.command.contains(" --ssl "), "{}", r.command);
    assert_eq!(
        r.command_option("ssl-ciphers"),
        Some("ECDHE-ECDSA-AES128-GCM-SHA256")
    );
    assert_eq!(r.command_option("add-header"), Some("Connection: close\\n"));
    assert_eq!(target_from_command(&r), Some(5.0));
    assert_eq!((r.total_replies, r.reply_status_2xx), (3, 3));
    assert!(r.reply_size_content > 1000.0);
    let w = parse_fixture("httperf-ssl-wsess.txt");
    assert_eq!(w.command_option("wsess"), Some("2,4,0.000"));
    assert_eq!(target_from_command(&w), None);
    assert_eq!((w.total_connections, w.errors_conn_reset), (8, 6));
    assert_eq!(w.sessions_completed, Some(2));
    // Back to back, as a sweep's raw directory may be concatenated.
    let both = format!(
        "{}{}",
        fixture("httperf-ssl.txt"),
        fixture("httperf-ssl-wsess.txt")
    );
    let found = parse_reports(&both);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|f| f.result.is_ok()));
}

#[test]
fn sample_1_every_field() {
    let r = parse_fixture("httperf-sample-1.txt");
    let expected = Report {
        command: "httperf --hog --timeout=5 --client=0/1 --server=127.0.0.1 --port=18080 \
                  --uri=/ --rate=50 --send-buffer=4096 --recv-buffer=16384 --num-conns=200 \
                  --num-calls=1"
            .into(),
        max_connect_burst_length: 1,
        total_connections: 200,
        total_requests: 200,
        total_replies: 200,
        total_test_duration: 3.982,
        connection_rate_per_sec: 50.2,
        connection_rate_ms_conn: 19.9,
        max_concurrent_connections: 1,
        connection_time_min: 1.3,
        connection_time_avg: 3.4,
        connection_time_max: 14.4,
        connection_time_median: 3.5,
        connection_time_stddev: 2.0,
        connection_time_connect: 0.0,
        connection_length: 1.0,
        request_rate_per_sec: 50.2,
        request_rate_ms_request: 19.9,
        request_size: 62.0,
        reply_rate_min: 0.0,
        reply_rate_avg: 0.0,
        reply_rate_max: 0.0,
        reply_rate_stddev: 0.0,
        reply_rate_samples: 0,
        reply_time_response: 3.4,
        reply_time_transfer: 0.0,
        reply_size_header: 209.0,
        reply_size_content: 58.0,
        reply_size_footer: 0.0,
        reply_size_total: 267.0,
        reply_status_1xx: 0,
        reply_status_2xx: 200,
        reply_status_3xx: 0,
        reply_status_4xx: 0,
        reply_status_5xx: 0,
        cpu_time_user_sec: 0.48,
        cpu_time_system_sec: 2.83,
        cpu_time_user_pct: 12.0,
        cpu_time_system_pct: 71.1,
        cpu_time_total_pct: 83.0,
        net_io_kb_sec: 16.1,
        net_io_bps: 100_000.0,
        errors_total: 0,
        errors_client_timeout: 0,
        errors_socket_timeout: 0,
        errors_conn_refused: 0,
        errors_conn_reset: 0,
        errors_fd_unavail: 0,
        errors_addr_unavail: 0,
        errors_ftab_full: 0,
        errors_other: 0,
        ..Report::default()
    };
    assert_eq!(r, expected);
}

#[test]
fn sample_2_with_reply_rate_samples_and_two_calls() {
    let r = parse_fixture("httperf-sample-2.txt");
    assert_eq!(
        (r.total_connections, r.total_requests, r.total_replies),
        (1100, 2200, 2200)
    );
    assert_eq!(r.total_test_duration, 10.993);
    assert_eq!(r.max_concurrent_connections, 3);
    assert_eq!(r.connection_length, 2.0);
    assert_eq!(r.request_rate_per_sec, 200.1);
    assert_eq!(
        (
            r.reply_rate_min,
            r.reply_rate_avg,
            r.reply_rate_max,
            r.reply_rate_stddev,
            r.reply_rate_samples
        ),
        (200.0, 200.0, 200.0, 0.0, 2)
    );
    assert_eq!(r.cpu_time_total_pct, 78.7);
    assert_eq!(r.net_io_kb_sec, 64.3);
    assert_eq!(r.net_io_bps, 500_000.0);
    assert_eq!(r.command_option("num-calls"), Some("2"));
    assert_eq!(target_from_command(&r), Some(200.0));
}

#[test]
fn the_all_refused_run_is_parsed_and_flagged() {
    let r = parse_fixture("httperf-sample-errors.txt");
    assert_eq!(
        (r.total_connections, r.total_requests, r.total_replies),
        (100, 0, 0)
    );
    assert_eq!(r.errors_total, 100);
    assert_eq!(r.errors_conn_refused, 100);
    assert_eq!(r.request_rate_per_sec, 0.0);
    assert_eq!(r.net_io_bps, 0.0);
    let v = Validity::assess(&r, target_from_command(&r), &Thresholds::default());
    assert_eq!((v.flag_rate_off_target, v.valid), (Some(true), Some(false)));
    assert_eq!(v.request_rate_deviation_pct, Some(-100.0));
}

#[test]
fn the_pound_sample() {
    let r = parse_fixture("httperf-sample-pound.txt");
    assert_eq!(r.reply_time_response, 4.8);
    assert_eq!(r.reply_time_transfer, 0.3);
    assert_eq!(r.reply_size_header, 185.0);
    assert_eq!(r.reply_size_total, 243.0);
    assert_eq!(r.cpu_time_system_sec, 3.04);
    assert_eq!(r.cpu_time_total_pct, 87.8);
}

#[test]
fn verbose_lines() {
    let r = parse_fixture("httperf-verbose.txt");
    assert_eq!(r.max_open_descriptors, Some(1024));
    assert_eq!(r.reply_rate_series, [20.0]);
    assert_eq!(r.reply_rate_samples, 1);
    assert_eq!(r.total_connections, 130);
    assert!(r.command.starts_with("httperf --verbose --hog"));
    assert!(r.connection_lifetime_histogram.is_empty());
}

#[test]
fn the_connection_lifetime_histogram() {
    let r = parse_fixture("httperf-verbose2-histogram.txt");
    let h = &r.connection_lifetime_histogram;
    assert_eq!(h.len(), 10);
    assert_eq!(h[0], HistogramBin { ms: 1.5, count: 1 });
    assert_eq!(h[1], HistogramBin { ms: 2.5, count: 14 });
    assert_eq!(h[9], HistogramBin { ms: 14.5, count: 1 });
    // Every connection is in the histogram.
    assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), r.total_connections);
    assert_eq!(r.total_connections, 40);
}

#[test]
fn session_lines() {
    let r = parse_fixture("httperf-wsess-verbose.txt");
    assert_eq!(r.session_rate_min, Some(5.0));
    assert_eq!(r.session_rate_avg, Some(5.08));
    assert_eq!(r.session_rate_max, Some(5.0));
    assert_eq!(r.session_rate_stddev, Some(0.0));
    assert_eq!(r.sessions_completed, Some(30));
    assert_eq!(r.sessions_total, Some(30));
    assert_eq!(r.session_connections_avg, Some(2.0));
    assert_eq!(r.session_lifetime_sec, Some(0.1));
    assert_eq!(r.session_failtime_sec, Some(0.0));
    assert_eq!(r.session_length_histogram, [0, 0, 30]);
    assert_eq!(r.session_rate_series, [5.0]);
    assert_eq!(r.reply_rate_series, [10.0]);
    assert_eq!(r.errors_conn_reset, 30);
    // Sessions have no simple target request rate.
    assert_eq!(target_from_command(&r), None);
}

#[test]
fn a_run_stopped_with_sigint() {
    let r = parse_fixture("httperf-sigint.txt");
    assert_eq!(r.command_option("num-conns"), Some("1000"));
    assert_eq!(r.total_connections, 40);
    assert_eq!(r.total_test_duration, 1.996);
}

#[test]
fn the_reports_listing_2_1() {
    let r = parse_fixture("seed-listing-2.1.txt");
    // The typed command is not the echo; the echo is the second line.
    assert!(
        r.command
            .starts_with("httpperf --hog --timeout=5 --client=0/1 --server=balance2")
    );
    assert_eq!(r.max_connect_burst_length, 1);
    assert_eq!(
        (r.total_connections, r.total_requests, r.total_replies),
        (6000, 6000, 6000)
    );
    assert_eq!(r.total_test_duration, 59.995);
    assert_eq!(r.connection_rate_per_sec, 100.0);
    assert_eq!(r.max_concurrent_connections, 3);
    assert_eq!(r.connection_time_max, 60.5);
    assert_eq!(r.connection_time_connect, 0.5);
    assert_eq!(r.request_size, 69.0);
    assert_eq!(r.reply_rate_samples, 11);
    assert_eq!(r.reply_time_response, 2.6);
    assert_eq!(r.reply_size_header, 167.0);
    assert_eq!(r.reply_size_content, 8.0);
    assert_eq!(r.reply_status_2xx, 6000);
    assert_eq!(r.cpu_time_user_sec, 30.92);
    assert_eq!(r.cpu_time_system_sec, 28.78);
    assert_eq!(r.cpu_time_total_pct, 99.5);
    assert_eq!(r.net_io_kb_sec, 23.8);
    assert_eq!(r.net_io_bps, 200_000.0);
    assert_eq!(r.errors_addr_unavail, 0);
    let v = Validity::assess(&r, target_from_command(&r), &Thresholds::default());
    assert_eq!(v.valid, Some(true), "{v:?}");
}

#[test]
fn several_reports_in_one_file() {
    let names = [
        "httperf-sample-1.txt",
        "httperf-sample-errors.txt",
        "httperf-wsess-verbose.txt",
    ];
    let text: String = names.iter().map(|n| fixture(n)).collect();
    let found = parse_reports(&text);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].line_no, 1);
    assert_eq!(found[1].line_no, fixture(names[0]).lines().count() + 1);
    for (f, n) in found.iter().zip(names) {
        assert_eq!(f.result.as_ref().unwrap(), &parse_fixture(n), "{n}");
    }
}

#[test]
fn a_truncated_report_names_the_first_missing_line() {
    let full = fixture("httperf-sample-1.txt");
    // Cut right after the CPU line, as a killed `tee` or a full disk would.
    let cut = &full[..full.find("Net I/O").unwrap()];
    let err = parse_report(cut).unwrap_err();
    assert_eq!(
        err,
        ReportError::Missing {
            missing: "Net I/O:",
            also: vec!["Errors: total", "Errors: fd-unavail"],
        }
    );
    assert_eq!(
        err.to_string(),
        "incomplete httperf report: the `Net I/O:` line is missing \
         (and 2 more: `Errors: total`, `Errors: fd-unavail`)"
    );
    // Cut in the middle of the last line: it lacks its newline, so the report is incomplete.
    let cut = &full[..full.len() - 10];
    let err = parse_report(cut).unwrap_err();
    assert!(
        matches!(err, ReportError::Unterminated { line_no: 23, .. }),
        "{err}"
    );
    // In a file of several reports, only the cut one fails.
    let text = format!("{full}{}", &full[..full.find("Reply rate").unwrap()]);
    let found = parse_reports(&text);
    assert!(found[0].result.is_ok());
    assert!(matches!(
        &found[1].result,
        Err(ReportError::Missing {
            missing: "Reply rate [replies/s]:",
            ..
        })
    ));
}

#[test]
fn a_session_block_must_be_whole() {
    let full = fixture("httperf-wsess-verbose.txt");
    let cut: String = full
        .lines()
        .filter(|l| !l.starts_with("Session lifetime"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        parse_report(&cut),
        Err(ReportError::Missing {
            missing: "Session lifetime [s]:",
            also: vec![]
        })
    );
}

#[test]
fn unknown_lines_are_ignored() {
    let full = fixture("httperf-sample-1.txt");
    let noisy = full
        .replace(
            "Maximum connect burst length: 1\n",
            "Maximum connect burst length: 1\nRS0: something httperf --print-reply printed\n\
             A future line: 12 things\n",
        )
        .replace(
            "\nCPU time",
            "\nsome body text with Total: inside\nCPU time",
        );
    assert_eq!(parse_report(&noisy).unwrap(), parse_report(&full).unwrap());
}

/// What a run of `conns` connections at `rate`/s printed, without its command line: the
/// lines of httperf's `src/stat/basic.c` `dump()` with its printf formats (`%.1f`, `%.3f`,
/// `%lu`), preceded, with `--verbose`, by the descriptors line (`src/core.c`) and one
/// `reply-rate = %-8.1f` sample per 5 s.
fn pasted(conns: u64, refused: u64, rate: f64, verbose: bool) -> String {
    let replies = conns - refused;
    let duration = conns as f64 / rate;
    let mut out = String::new();
    if verbose {
        out.push_str(
            "httperf: maximum number of open descriptors = 1024
",
        );
        for _ in 0..(duration / 5.0) as u64 {
            out.push_str(&format!(
                "reply-rate = {:<8.1}
",
                replies as f64 / duration
            ));
        }
    }
    let samples = (duration / 5.0) as u64;
    out.push_str(&format!(
        "Maximum connect burst length: 1

         Total: connections {conns} requests {replies} replies {replies} test-duration {duration:.3} s

         Connection rate: {rate:.1} conn/s ({:.1} ms/conn, <=3 concurrent connections)
         Connection time [ms]: min 200.3 avg 201.2 max 230.9 median 200.5 stddev 2.1
         Connection time [ms]: connect 0.1
         Connection length [replies/conn]: 1.000

         Request rate: {:.1} req/s ({:.1} ms/req)
         Request size [B]: 80.0

         Reply rate [replies/s]: min {r:.1} avg {r:.1} max {r:.1} stddev 0.0 ({samples} samples)
         Reply time [ms]: response 201.0 transfer 0.0
         Reply size [B]: header 150.0 content 50.0 footer 0.0 (total 200.0)
         Reply status: 1xx=0 2xx={replies} 3xx=0 4xx=0 5xx=0

         CPU time [s]: user 1.20 system 8.70 (user 12.0% system 87.0% total 99.0%)
         Net I/O: 27.3 KB/s (0.2*10^6 bps)

         Errors: total {refused} client-timo 0 socket-timo 0 connrefused {refused} connreset 0
         Errors: fd-unavail 0 addrunavail 0 ftab-full 0 other 0
",
        1000.0 / rate,
        replies as f64 / duration,
        1000.0 * duration / replies.max(1) as f64,
        r = if samples > 0 { replies as f64 / duration } else { 0.0 },
    ));
    out
}

/// A report copied without its command line is read, with an empty command; the target
/// rate is unknown, so the checks that need it are empty rather than false.
#[test]
fn a_pasted_report_without_its_command_line_is_read() {
    let text = pasted(6000, 0, 100.0, false);
    let r = parse_report(&text).unwrap();
    assert_eq!(r.command, "");
    assert_eq!((r.total_connections, r.total_replies), (6000, 6000));
    assert_eq!(r.reply_rate_samples, 12);
    assert_eq!(target_from_command(&r), None);
    let v = Validity::assess(&r, target_from_command(&r), &Thresholds::default());
    assert_eq!(v.target_request_rate, None);
    assert_eq!(v.flag_rate_off_target, None);
    assert_eq!(v.valid, None);
    assert!(!v.flag_resource_errors && !v.flag_client_cpu_low);
    // From a blog post: the command as typed and a shell prompt around it.
    let quoted = format!(
        "$ httperf --server balance1 --rate 100 --num-conns 6000
{text}$ 
"
    );
    assert_eq!(parse_report(&quoted).unwrap(), r);
}

/// `--verbose` reports back to back, each starting with the descriptors line: one report
/// each. The same without `--verbose`: each starts at its burst line.
#[test]
fn reports_back_to_back_without_command_lines_are_split() {
    for verbose in [true, false] {
        let text = [
            pasted(500, 0, 100.0, verbose),
            pasted(1000, 0, 200.0, verbose),
            pasted(300, 300, 300.0, verbose),
        ]
        .concat();
        let found = parse_reports(&text);
        assert_eq!(found.len(), 3, "verbose {verbose}");
        let conns: Vec<u64> = found
            .iter()
            .map(|f| f.result.as_ref().unwrap().total_connections)
            .collect();
        assert_eq!(conns, [500, 1000, 300]);
        let first_len = pasted(500, 0, 100.0, verbose).lines().count();
        assert_eq!(found[1].line_no, first_len + 1);
        if verbose {
            let r = found[1].result.as_ref().unwrap();
            assert_eq!(r.max_open_descriptors, Some(1024));
            assert_eq!(r.reply_rate_series, [200.0]);
        }
        assert_eq!(found[2].result.as_ref().unwrap().errors_conn_refused, 300);
    }
    // Without even their burst lines, they split at each `Total:` line.
    let bare: String = [pasted(500, 0, 100.0, false), pasted(700, 0, 100.0, false)]
        .iter()
        .map(|t| t.replace("Maximum connect burst length: 1\n", ""))
        .collect();
    let found = parse_reports(&bare);
    assert_eq!(found.len(), 2);
    assert_eq!(found[1].result.as_ref().unwrap().total_connections, 700);
    // One report expected, several found: said so.
    assert!(matches!(
        parse_report(&bare),
        Err(ReportError::Several { count: 2, .. })
    ));
}

/// httperf ends its last line with a newline; a report cut inside its last number
/// (`other 1` for `other 12`) is incomplete, not a report with another number.
#[test]
fn a_report_without_its_final_newline_is_incomplete() {
    let text = pasted(500, 0, 100.0, false).replace("other 0\n", "other 12\n");
    assert_eq!(parse_report(&text).unwrap().errors_other, 12);
    let cut = &text[..text.len() - 2];
    assert!(cut.ends_with("other 1"));
    let err = parse_report(cut).unwrap_err();
    assert!(
        matches!(&err, ReportError::Unterminated { line_no: 22, text } if text.ends_with("other 1")),
        "{err}"
    );
    assert!(err.to_string().contains("lacks the newline"), "{err}");
    // In a file of several, the cut one is the last one.
    let two = format!("{text}{cut}");
    let found = parse_reports(&two);
    assert!(found[0].result.is_ok());
    assert!(matches!(
        found[1].result,
        Err(ReportError::Unterminated { .. })
    ));
}

/// Prints a report the way httperf's `dump()` does, from its raw values.
fn render(u: &[u64; 24], f: &[f64; 36], net_mantissa: f64) -> String {
    format!(
        "httperf --client=0/1 --server=h --rate=10 --num-conns=5\n\
         Maximum connect burst length: {}\n\n\
         Total: connections {} requests {} replies {} test-duration {:.3} s\n\n\
         Connection rate: {:.1} conn/s ({:.1} ms/conn, <={} concurrent connections)\n\
         Connection time [ms]: min {:.1} avg {:.1} max {:.1} median {:.1} stddev {:.1}\n\
         Connection time [ms]: connect {:.1}\n\
         Connection length [replies/conn]: {:.3}\n\n\
         Request rate: {:.1} req/s ({:.1} ms/req)\n\
         Request size [B]: {:.1}\n\n\
         Reply rate [replies/s]: min {:.1} avg {:.1} max {:.1} stddev {:.1} ({} samples)\n\
         Reply time [ms]: response {:.1} transfer {:.1}\n\
         Reply size [B]: header {:.1} content {:.1} footer {:.1} (total {:.1})\n\
         Reply status: 1xx={} 2xx={} 3xx={} 4xx={} 5xx={}\n\n\
         CPU time [s]: user {:.2} system {:.2} (user {:.1}% system {:.1}% total {:.1}%)\n\
         Net I/O: {:.1} KB/s ({:.1}*10^6 bps)\n\n\
         Errors: total {} client-timo {} socket-timo {} connrefused {} connreset {}\n\
         Errors: fd-unavail {} addrunavail {} ftab-full {} other {}\n\n\
         Session rate [sess/s]: min {:.2} avg {:.2} max {:.2} stddev {:.2} ({}/{})\n\
         Session: avg {:.2} connections/session\n\
         Session lifetime [s]: {:.1}\n\
         Session failtime [s]: {:.1}\n\
         Session length histogram: {} {}\n",
        u[0],
        u[1],
        u[2],
        u[3],
        f[0],
        f[1],
        f[2],
        u[4],
        f[3],
        f[4],
        f[5],
        f[6],
        f[7],
        f[8],
        f[9],
        f[10],
        f[11],
        f[12],
        f[13],
        f[14],
        f[15],
        f[16],
        u[5],
        f[17],
        f[18],
        f[19],
        f[20],
        f[21],
        f[22],
        u[6],
        u[7],
        u[8],
        u[9],
        u[10],
        f[23],
        f[24],
        f[25],
        f[26],
        f[27],
        f[28],
        net_mantissa,
        u[11],
        u[12],
        u[13],
        u[14],
        u[15],
        u[16],
        u[17],
        u[18],
        u[19],
        f[29],
        f[30],
        f[31],
        f[32],
        u[20],
        u[21],
        f[33],
        f[34],
        f[35],
        u[22],
        u[23],
    )
}

/// What a printed value reads back as.
fn printed(v: f64, decimals: usize) -> f64 {
    format!("{v:.decimals$}").parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every count (any u64) and every value (any size, rounded as printed) reads back.
    #[test]
    fn random_reports_read_back(
        u in prop::array::uniform24(any::<u64>()),
        f in prop::array::uniform32(0.0f64..1e12),
        g in prop::array::uniform4(0.0f64..1e6),
        net in 0.0f64..1e7,
    ) {
        let mut fv = [0.0; 36];
        fv[..32].copy_from_slice(&f);
        fv[32..].copy_from_slice(&g);
        let text = render(&u, &fv, net);
        let r = parse_report(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(r.max_connect_burst_length, u[0]);
        prop_assert_eq!(r.total_connections, u[1]);
        prop_assert_eq!(r.total_replies, u[3]);
        prop_assert_eq!(r.total_test_duration, printed(fv[0], 3));
        prop_assert_eq!(r.connection_rate_per_sec, printed(fv[1], 1));
        prop_assert_eq!(r.max_concurrent_connections, u[4]);
        prop_assert_eq!(r.connection_time_stddev, printed(fv[7], 1));
        prop_assert_eq!(r.connection_time_connect, printed(fv[8], 1));
        prop_assert_eq!(r.connection_length, printed(fv[9], 3));
        prop_assert_eq!(r.request_rate_per_sec, printed(fv[10], 1));
        prop_assert_eq!(r.reply_rate_samples, u[5]);
        prop_assert_eq!(r.reply_size_total, printed(fv[22], 1));
        prop_assert_eq!(r.reply_status_5xx, u[10]);
        prop_assert_eq!(r.cpu_time_user_sec, printed(fv[23], 2));
        prop_assert_eq!(r.cpu_time_total_pct, printed(fv[27], 1));
        prop_assert_eq!(r.net_io_kb_sec, printed(fv[28], 1));
        let bps = printed(net, 1) * 1e6;
        prop_assert!((r.net_io_bps - bps).abs() <= bps * 1e-12, "{} vs {}", r.net_io_bps, bps);
        prop_assert_eq!(r.errors_total, u[11]);
        prop_assert_eq!(r.errors_other, u[19]);
        prop_assert_eq!(r.session_rate_stddev, Some(printed(fv[32], 2)));
        prop_assert_eq!(r.sessions_completed, Some(u[20]));
        prop_assert_eq!(r.sessions_total, Some(u[21]));
        prop_assert_eq!(r.session_failtime_sec, Some(printed(fv[35], 1)));
        prop_assert_eq!(&r.session_length_histogram, &vec![u[22], u[23]]);
        // And the CSV cells read back to the same report.
        prop_assert_eq!(Report::from_cells(&r.to_cells()), Ok(r));
    }

    /// A count one digit too long for u64 is an error, never a wrapped number.
    #[test]
    fn counts_beyond_u64_are_refused(extra in 0u8..10) {
        let text = fixture("httperf-sample-1.txt")
            .replace("2xx=200", &format!("2xx={}{extra}", u64::MAX));
        prop_assert!(
            matches!(parse_report(&text), Err(ReportError::Malformed { .. })),
            "expected a malformed Reply status line"
        );
    }

    /// Damage anywhere in a required line makes an error that names a line, never a panic or
    /// a silently wrong number.
    #[test]
    fn damaged_lines_are_errors(line in 3usize..23, pos in 0usize..80, junk in "[bcdghjkmopqrstuvwxyz#]{1,3}") {
        let full = fixture("httperf-sample-1.txt");
        let mut lines: Vec<String> = full.lines().map(str::to_owned).collect();
        let l = &mut lines[line];
        prop_assume!(!l.is_empty());
        // Replace one digit with junk.
        let digits: Vec<usize> = l.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
        prop_assume!(!digits.is_empty());
        let at = digits[pos % digits.len()];
        l.replace_range(at..at + 1, &junk);
        let text = lines.join("\n") + "\n";
        match parse_report(&text) {
            Err(ReportError::Malformed { line_no, .. }) => prop_assert_eq!(line_no, line + 1),
            Err(ReportError::Missing { .. }) => {}
            other => prop_assert!(false, "line {}: {:?}", line + 1, other),
        }
    }
}
