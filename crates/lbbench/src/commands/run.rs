//! `lbbench run`: one httperf run, its report as a table, JSON or CSV.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use common::Shutdown;
use serde::Serialize;

use super::{Target, classify, usage};
use crate::httperf::{Report, Thresholds, Validity, num_conns_for, resolve_server};

/// Arguments of `lbbench run`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("length").required(true).args(["num_conns", "duration"])))]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// The URI to request.
    #[arg(long, default_value = "/")]
    pub uri: String,
    /// New connections per second.
    #[arg(long, value_name = "R")]
    pub rate: f64,
    /// Connections in total.
    #[arg(long, value_name = "N")]
    pub num_conns: Option<u64>,
    /// Seconds to run (connections = rate × seconds).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Use every local port (httperf --hog); needed at high rates.
    #[arg(long)]
    pub hog: bool,
    /// Print the result as JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the result as CSV (a header and one row).
    #[arg(long)]
    pub csv: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct JsonOut<'a> {
    report: &'a Report,
    validity: &'a Validity,
}

/// Runs `lbbench run`.
pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let num_conns = match (a.num_conns, a.duration) {
        (Some(n), _) => n,
        (None, Some(d)) if d.is_finite() && d > 0.0 => num_conns_for(a.rate, d),
        (None, d) => return Err(usage(format!("--duration must be positive (got {d:?})"))),
    };
    let httperf = a.target.locate()?;
    let args = a.target.args(&a.uri, a.rate, num_conns, a.hog);
    args.validate().map_err(|e| usage(e.to_string()))?;
    resolve_server(&args.server, args.port).map_err(|e| classify(e, true))?;
    let shutdown = Shutdown::install().context("cannot install signal handlers")?;
    let out = httperf
        .run(&args, Some(&shutdown))
        .map_err(|e| {
            let u = e.is_usage();
            classify(e, u)
        })
        .with_context(|| format!("`{args}`"))?;
    let limits = Thresholds::default();
    let validity = Validity::assess(&out.report, args.checkable_request_rate(), &limits);
    for w in validity.warnings(&out.report, &limits) {
        eprintln!("lbbench: warning: {w}");
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(
            &mut stdout,
            &JsonOut {
                report: &out.report,
                validity: &validity,
            },
        )?;
        writeln!(stdout)?;
    } else if a.csv {
        let mut w = csv::Writer::from_writer(&mut stdout);
        w.write_record(Report::COLUMNS.iter().chain(Validity::COLUMNS))?;
        w.write_record(out.report.to_cells().into_iter().chain(validity.to_cells()))?;
        w.flush()?;
    } else {
        write!(stdout, "{}", table(&out.report, &validity))?;
    }
    Ok(())
}

/// The report as a two-column table, without the optional fields httperf did not print.
pub fn table(report: &Report, validity: &Validity) -> String {
    let names = Report::COLUMNS.iter().chain(Validity::COLUMNS);
    let cells = report.to_cells().into_iter().chain(validity.to_cells());
    let rows: Vec<(&str, String)> = names
        .zip(cells)
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (*n, v))
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(n, v)| format!("{n:<width$}  {v}\n"))
        .collect()
}
