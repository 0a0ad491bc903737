//! `lbbench report` on hand-made CSV files: the aggregated numbers (mean, range, standard
//! deviation over repeats), flagged runs, files with and without CPU columns, bad input.

use std::path::Path;
use std::process::Command;

const COLUMNS: &str = "timestamp,server,target_rate,run,total_connections,total_requests,\
total_replies,request_rate_per_sec,reply_time_response,connection_time_avg,\
max_concurrent_connections,errors_total,errors_client_timeout,errors_conn_refused,\
errors_conn_reset,errors_fd_unavail,errors_addr_unavail,errors_ftab_full,reply_status_5xx,\
valid,flag_rate_off_target,flag_resource_errors,flag_client_cpu_low";

/// HAProxy with the lab's CPU columns: three runs at 100/s, one flagged run at 200/s.
const HAPROXY: &str = "\
,balancer_cpu_user_s,balancer_cpu_system_s,balancer_cpu_pct
t1,haproxy,100,1,1000,1000,1000,99.0,200.0,200.5,30,0,0,0,0,0,0,0,0,true,false,false,false,0.1,0.1,4.0
t2,haproxy,100,2,1000,1000,1000,100.0,210.0,210.5,31,0,0,0,0,0,0,0,0,true,false,false,false,0.1,0.2,5.0
t3,haproxy,100,3,1000,1000,1000,101.0,230.0,230.5,32,0,0,0,0,0,0,0,0,true,false,false,false,0.2,0.2,9.0
t4,haproxy,200,1,2000,1900,1900,190.0,250.5,251.0,1021,100,0,0,0,100,0,0,0,false,true,true,false,0.5,0.5,40.0
";

/// Pound from a plain sweep (no CPU columns): two runs at 100/s with 5xx replies.
const POUND: &str = "
t5,pound,100,1,1000,1000,1000,100.0,205.0,205.5,33,0,0,0,0,0,0,0,10,true,false,false,false
t6,pound,100,2,1000,1000,1000,100.0,215.0,215.5,34,0,0,0,0,0,0,0,30,true,false,false,false
";

fn write(dir: &Path, name: &str, header_extra_and_rows: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{COLUMNS}{header_extra_and_rows}")).unwrap();
    p
}

fn report(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn report_aggregates_hand_made_runs() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", HAPROXY);
    let p = write(dir.path(), "p.csv", POUND);
    let html_path = dir.path().join("out.html");
    let out = report(&[
        h.as_os_str(),
        p.as_os_str(),
        "-o".as_ref(),
        html_path.as_os_str(),
        "--markdown".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let md = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[2..],
        [
            // mean 213.3 of 200, 210, 230; CPU 6.0 of 4, 5, 9; (0.2 + 0.3 + 0.4) / 3 CPU-s.
            "| haproxy | 100 | 3 | 100.0 | 213.3 (200.0–230.0) | 6.0 (4.0–9.0) | 0.300 | 0.0 | 0.0 | 0 |",
            // 1.0 CPU-s over 1,900 requests.
            "| haproxy | 200 | 1 | 190.0 | 250.5 | 40.0 | 0.526 | 100.0 | 0.0 | 1 of 1 |",
            "| pound | 100 | 2 | 100.0 | 210.0 (205.0–215.0) | – | – | 0.0 | 20.0 | 0 |",
        ],
        "{md}"
    );
    assert!(stderr.contains("6 runs from 2 files"), "{stderr}");

    let html = std::fs::read_to_string(&html_path).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap();
    let by_id = |id: &str| {
        doc.descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no #{id}"))
    };
    let cells = |row: roxmltree::Node| -> Vec<String> {
        row.children()
            .filter(|n| n.has_tag_name("td") || n.has_tag_name("th"))
            .map(|n| n.text().unwrap_or("").to_owned())
            .collect()
    };
    let rows: Vec<roxmltree::Node> = by_id("numbers")
        .children()
        .filter(|n| n.has_tag_name("tr"))
        .collect();
    let head = cells(rows[0]);
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let h100 = rows
        .iter()
        .find(|r| {
            r.attribute("data-balancer") == Some("haproxy")
                && r.attribute("data-rate") == Some("100")
        })
        .unwrap();
    let c = cells(*h100);
    assert_eq!(c[col("runs")], "3");
    assert_eq!(c[col("reply time [ms]")], "213.3");
    assert_eq!(c[col("reply time range")], "200.0–230.0");
    // sqrt(((200 − 213.3)² + (210 − 213.3)² + (230 − 213.3)²) / 2) = 15.28
    assert_eq!(c[col("reply time sd")], "15.3");
    assert_eq!(c[col("balancer CPU [%]")], "6.0");
    assert_eq!(c[col("max open conns")], "32");
    let p100 = rows
        .iter()
        .find(|r| r.attribute("data-balancer") == Some("pound"))
        .unwrap();
    let c = cells(*p100);
    assert_eq!(c[col("5xx / run")], "20.0");
    assert_eq!(c[col("balancer CPU [%]")], "–");
    // The flagged run is listed with its reason, and its row is marked.
    let flagged: Vec<Vec<String>> = by_id("flagged-runs")
        .children()
        .filter(|n| n.has_tag_name("tr"))
        .skip(1)
        .map(cells)
        .collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0][..3], ["haproxy", "200", "1"]);
    assert_eq!(
        flagged[0][4],
        "rate off target, httperf at 1,024 open connections (fd-unavail)"
    );
    assert!(rows.iter().any(
        |r| r.attribute("class") == Some("flagged") && r.attribute("data-rate") == Some("200")
    ));
    // Only HAProxy has CPU: its series alone in the CPU chart; both in the reply time.
    let svg_texts = |id: &str| -> Vec<String> {
        by_id(id)
            .descendants()
            .filter_map(|n| n.text())
            .map(|t| t.trim().to_owned())
            .collect()
    };
    let cpu = svg_texts("balancer-cpu");
    assert!(cpu.contains(&"haproxy".into()) && !cpu.contains(&"pound".into()));
    let reply = svg_texts("reply-time");
    assert!(reply.contains(&"haproxy".into()) && reply.contains(&"pound".into()));
    assert!(reply.contains(&"haproxy min–max".into()), "{reply:?}");
    assert!(reply.contains(&"haproxy flagged runs".into()), "{reply:?}");
    // Without lab.json the setup says so.
    let setup: String = by_id("setup-table")
        .descendants()
        .filter_map(|n| n.text())
        .collect();
    assert!(setup.contains("not recorded"), "{setup}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "timestamp,server\nx,y\n").unwrap();
    let garbled = write(
        dir.path(),
        "g.csv",
        "\nt,haproxy,100,1,1000,1000,1000,99.0,fast,200.5,30,0,0,0,0,0,0,0,0,true,false,false,false\n",
    );
    let missing = dir.path().join("none.csv");
    let empty_dir = tempfile::tempdir().unwrap();
    for (input, want) in [
        (
            bad.as_os_str(),
            "bad.csv: not a sweep CSV: no `target_rate` column",
        ),
        (
            garbled.as_os_str(),
            "g.csv: line 2: column `reply_time_response`: cannot read `fast`",
        ),
        (missing.as_os_str(), "none.csv"),
        (empty_dir.path().as_os_str(), "no perf_*_combined.csv"),
    ] {
        let out = report(&[input, "-o".as_ref(), dir.path().join("r.html").as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
    assert!(!dir.path().join("r.html").exists());
}

/// The report never replaces its input: `-o` naming an input CSV (by its name or through a
/// link), or one of a lab directory's own files.
#[test]
fn the_report_refuses_to_overwrite_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "perf_haproxy_combined.csv", HAPROXY);
    let before = std::fs::read(&h).unwrap();
    let link = dir.path().join("link.html");
    std::os::unix::fs::symlink(&h, &link).unwrap();
    for (input, output) in [
        (h.clone(), h.clone()),
        (h.clone(), link.clone()),
        (dir.path().to_owned(), h.clone()),
    ] {
        let out = report(&[input.as_os_str(), "-o".as_ref(), output.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("is the input file"), "{stderr}");
        assert_eq!(std::fs::read(&h).unwrap(), before);
    }
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// A row whose key cannot be read is left out with a warning, as the sweep leaves it out (and
/// does its run again); the rest of the file makes the report.
#[test]
fn a_row_with_an_unreadable_key_is_left_out_as_the_sweep_does() {
    let dir = tempfile::tempdir().unwrap();
    let rows = "\n\
t1,haproxy,fast,1,1000,1000,1000,99.0,200.0,200.5,30,0,0,0,0,0,0,0,0,true,false,false,false\n\
t2,haproxy,100,1,1000,1000,1000,99.0,200.0,200.5,30,0,0,0,0,0,0,0,0,true,false,false,false\n";
    let f = write(dir.path(), "perf_h_combined.csv", rows);
    let html = dir.path().join("r.html");
    let out = report(&[f.as_os_str(), "-o".as_ref(), html.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("lines [2]") && stderr.contains("left out"),
        "{stderr}"
    );
    assert!(stderr.contains("1 runs from 1 file"), "{stderr}");
    let done = lbbench::sweep::completed_runs(&f).unwrap();
    assert_eq!(done.unreadable_lines, [2]);
    assert_eq!(done.runs.len(), 1);
}

/// The page fits a 1280-pixel window: its column is at most 1000 px wide, the charts are
/// 960 px, and every table is in a box that scrolls on its own (the numbers table has 18
/// columns), so nothing widens the page.
#[test]
fn the_page_does_not_scroll_sideways() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", HAPROXY);
    let html_path = dir.path().join("out.html");
    let out = report(&[h.as_os_str(), "-o".as_ref(), html_path.as_os_str()]);
    assert!(out.status.success());
    let html = std::fs::read_to_string(&html_path).unwrap();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, opts).unwrap();
    let style = doc
        .descendants()
        .find(|n| n.has_tag_name("style"))
        .and_then(|n| n.text())
        .unwrap();
    assert!(style.contains("max-width: 1000px"), "{style}");
    assert!(style.contains(".wide { overflow-x: auto"), "{style}");
    let tables: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("table"))
        .collect();
    assert!(tables.len() >= 3);
    for t in tables {
        let parent = t.parent_element().unwrap();
        assert_eq!(
            (parent.tag_name().name(), parent.attribute("class")),
            ("div", Some("wide")),
            "table {:?}",
            t.attribute("id")
        );
    }
    for svg in doc.descendants().filter(|n| n.has_tag_name("svg")) {
        let w: f64 = svg.attribute("width").unwrap().parse().unwrap();
        assert!(w <= 1000.0, "{w}");
    }
}
