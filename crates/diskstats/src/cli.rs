//! Command-line interface: sampling (the lab report's options), `report` and `plot`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};
use common::cli::UsageError;
use common::{CsvFileError, Shutdown, TimeFormat};

use crate::plot::Plot;
use crate::record::{SEED_HEADER, file_name};
use crate::report::{self, CsvReportWriter, ReportError, Summary, TableWriter};
use crate::sample::{
    Event, PROC_DISKSTATS, Recorder, RunSummary, SampleError, Sampler, Selection, Source,
};

const EXAMPLES: &str = "\
Examples:
  diskstats -l 1 -d vda -o /var/log/          sample vda every second into /var/log/mon_vda.csv
  diskstats -d vda -o /var/log/diskstats/     one sample and exit (for cron)
  diskstats -l 0.5 -n 120 -d vda vdb          120 samples into ./mon_diskstats_vda_vdb.csv
  diskstats -l 15 -o /var/log/ --prometheus /var/lib/prometheus/node-exporter/diskstats.prom
                                              the CSV, and node_exporter's textfile too
  diskstats report /var/log/mon_vda.csv       iostat -x numbers for every interval
  diskstats plot /var/log/mon_vda.csv -o vda.svg";

/// Samples /proc/diskstats to CSV, in a loop or once per run (for cron), and reports the
/// samples the way iostat -x does.
///
/// Without a subcommand it samples: one row per device per sample, appended to
/// mon_<dev>.csv (one device), mon_diskstats_<a>_<b>.csv (several) or mon_diskstats.csv
/// (all devices) in the output directory.
#[derive(Debug, Parser)]
#[command(
    name = "diskstats",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    /// What to sample (when no subcommand is given).
    #[command(flatten)]
    pub sample: SampleArgs,
    /// A report from a CSV file instead of sampling.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The sampling options, as the lab report's users type them.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Sample every SECS seconds (fractions allowed, 0 = as fast as possible) until stopped
    /// with Ctrl-C or SIGTERM. Without -l, take one sample and exit (the cron mode).
    #[arg(short = 'l', long = "loop", alias = "l", value_name = "SECS", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Devices to record, like vda or sda1 (default: all devices).
    #[arg(short = 'd', long = "device", alias = "d", value_name = "NAME", num_args = 1.., action = ArgAction::Append)]
    pub devices: Vec<String>,
    /// Directory for the CSV file, with or without a trailing slash; created if missing
    /// (default: the current directory).
    #[arg(short = 'o', long = "outdir", alias = "o", value_name = "DIR")]
    pub outdir: Option<PathBuf>,
    /// Stop after N samples (needs -l).
    #[arg(short = 'n', long = "count", value_name = "N", requires = "interval",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Write timestamps in UTC (RFC 3339 with Z) instead of local time.
    #[arg(long)]
    pub utc: bool,
    /// Print only warnings and errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Also replace FILE after each sample with the devices' counters in the Prometheus text
    /// format, for node_exporter's textfile collector (a `.prom` file in its
    /// --collector.textfile.directory). The CSV is written as without it.
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
}

/// What to do instead of sampling: `report` or `plot` a recorded CSV, `completions`, `man`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show iostat -x numbers (r/s ... %util) for every interval of every device in a CSV
    /// file written by diskstats.
    Report(ReportArgs),
    /// Draw throughput, IOPS and %util over time as an SVG file.
    Plot(PlotArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(common::clidoc::CompletionsArgs),
    /// Print the manual page (of a subcommand if named), or write them all with --dir.
    Man(common::clidoc::ManArgs),
}

/// `diskstats report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A CSV file written by diskstats (also after -d: `report -d vda FILE`).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only these devices (default: every device that did any I/O).
    #[arg(short = 'd', long = "device", value_name = "NAME", num_args = 1.., action = ArgAction::Append)]
    pub devices: Vec<String>,
    /// Write CSV instead of a text table.
    #[arg(long)]
    pub csv: bool,
}

/// `diskstats plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A CSV file written by diskstats (also after -d: `plot -d vda FILE`).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The SVG file to write (default: FILE with the extension .svg).
    #[arg(short = 'o', long = "output", value_name = "SVG")]
    pub output: Option<PathBuf>,
    /// Only these devices (default: every device that did any I/O).
    #[arg(short = 'd', long = "device", value_name = "NAME", num_args = 1.., action = ArgAction::Append)]
    pub devices: Vec<String>,
}

/// The CSV file and the devices of `report` and `plot`. `-d` takes several names, so in
/// `report -d vda FILE` the file arrives as the last "device": it is taken back as the file.
fn file_and_devices(
    file: &Option<PathBuf>,
    devices: &[String],
) -> anyhow::Result<(PathBuf, Vec<String>)> {
    match (file, devices.split_last()) {
        (Some(f), _) => Ok((f.clone(), devices.to_vec())),
        (None, Some((last, rest))) => Ok((PathBuf::from(last), rest.to_vec())),
        (None, None) => Err(UsageError::new(
            "no CSV file given (usage: diskstats report|plot FILE [-d NAME...])",
        )
        .into()),
    }
}

/// Parses `-l`: seconds, fractions allowed, 0 or more.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("not a number of seconds: {s:?}"))?;
    common::time::seconds("the interval", v)
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => sample(&cli.sample),
        Some(Command::Report(a)) => report(&a),
        Some(Command::Plot(a)) => plot(&a),
        Some(Command::Completions(a)) => a.run(Cli::command()),
        Some(Command::Man(a)) => a.run(Cli::command()),
    }
}

fn say(quiet: bool, msg: std::fmt::Arguments<'_>) {
    if !quiet {
        eprintln!("diskstats: {msg}");
    }
}

fn sample(args: &SampleArgs) -> anyhow::Result<()> {
    let selection = Selection::from_args(&args.devices);
    let what = match selection.names() {
        [] => "all devices".to_owned(),
        names => names.join(" "),
    };
    let outdir = args.outdir.clone().unwrap_or_else(|| PathBuf::from("."));
    let path = outdir.join(file_name(selection.names()));
    let format = TimeFormat::from_utc_flag(args.utc);

    // Check the devices before anything is created or written.
    let source = Source::open(PROC_DISKSTATS)?;
    let sampler = Sampler::new(source, selection, format).map_err(|e| match e {
        e @ SampleError::UnknownDevice { .. } => anyhow::Error::new(UsageError::new(e.to_string())),
        e => anyhow::Error::new(e),
    })?;
    if let Some(prom) = &args.prometheus {
        check_textfile(prom, &path, &outdir)?;
    }
    let mut rec = Recorder::open(sampler, &path).map_err(|e| output_error(e, &path))?;
    if let Some(prom) = &args.prometheus {
        rec = rec.with_textfile(prom);
    }

    let quiet = args.quiet;
    let mut on_event = |e: &Event| match e {
        Event::Gone(d) => eprintln!(
            "diskstats: warning: device {d} is gone from {PROC_DISKSTATS}; still sampling the \
             others (said once; sampling resumes if it returns)"
        ),
        Event::Back(d) => say(quiet, format_args!("device {d} is back; sampling it again")),
        Event::New(d) => say(quiet, format_args!("new device {d}; sampling it too")),
        Event::BadLine { line, error } => eprintln!(
            "diskstats: warning: skipping a line of {PROC_DISKSTATS} that cannot be parsed \
             ({error}): {line:?} (said once)"
        ),
        Event::TextfileFailed(msg) => eprintln!(
            "diskstats: warning: {msg}; it keeps its last sample, the CSV goes on (said once)"
        ),
        Event::TextfileBack(p) => say(quiet, format_args!("{} is written again", p.display())),
    };

    let Some(interval) = args.interval else {
        rec.once(&mut on_event).map_err(|e| match e {
            e @ SampleError::Textfile { .. } => anyhow::Error::new(e),
            e => anyhow::Error::new(e)
                .context(format!("cannot record a sample in {}", path.display())),
        })?;
        return Ok(());
    };

    let shutdown = Shutdown::install().context("cannot install the SIGINT/SIGTERM handlers")?;
    say(
        quiet,
        format_args!(
            "sampling {} {} into {}{}{}; Ctrl-C stops",
            what,
            if interval.is_zero() {
                "as fast as possible".to_owned()
            } else {
                format!("every {interval:?}")
            },
            rec.path().display(),
            rec.textfile()
                .map(|p| format!(" and {}", p.display()))
                .unwrap_or_default(),
            args.count
                .map(|n| format!(", {n} samples"))
                .unwrap_or_default(),
        ),
    );
    let mut summary = RunSummary::default();
    let result = rec.run_loop(interval, args.count, &shutdown, &mut summary, &mut on_event);
    let written = format!(
        "{} sample{} ({} row{}) to {}",
        summary.samples_written,
        plural(summary.samples_written),
        summary.rows,
        plural(summary.rows),
        rec.path().display()
    );
    result.with_context(|| format!("stopped after writing {written}"))?;
    if summary.skipped_ticks > 0 {
        eprintln!(
            "diskstats: warning: {} tick{} skipped because sampling fell behind the interval",
            summary.skipped_ticks,
            plural(summary.skipped_ticks)
        );
    }
    say(
        quiet,
        format_args!(
            "wrote {written}{}",
            if summary.interrupted {
                " (stopped by a signal)"
            } else {
                ""
            }
        ),
    );
    Ok(())
}

/// Refuses a textfile that cannot work before anything is written: a directory, a missing
/// directory (but the CSV's, which is created), the CSV file itself. A name not ending in
/// `.prom` is only a warning (node_exporter reads only those, but the file may be renamed
/// by something else).
fn check_textfile(prom: &Path, csv: &Path, outdir: &Path) -> anyhow::Result<()> {
    let bad = |why: &str| -> anyhow::Error {
        UsageError::new(format!("--prometheus {}: {why}", prom.display())).into()
    };
    if prom.is_dir() {
        return Err(bad(
            "is a directory; give a file name in it, like diskstats.prom",
        ));
    }
    let absolute = |p: &Path| std::path::absolute(p).ok();
    match prom.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() && absolute(dir) != absolute(outdir) => {
            return Err(bad(&format!("{} is not a directory", dir.display())));
        }
        _ => {}
    }
    let same_name = absolute(prom) == absolute(csv);
    if same_name || common::atomic::refuse_overwriting_inputs(prom, &[csv]).is_err() {
        return Err(bad("is the CSV file; choose another name"));
    }
    if prom.extension().is_none_or(|e| e != "prom") {
        eprintln!(
            "diskstats: warning: --prometheus {}: node_exporter's textfile collector reads only *.prom files",
            prom.display()
        );
    }
    Ok(())
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Turns an error opening the output into a clear one-line error: a header mismatch is bad
/// input (exit 2); a directory or file that cannot be created is a runtime failure (exit 1).
fn output_error(e: SampleError, path: &Path) -> anyhow::Error {
    match e {
        SampleError::Csv(e @ CsvFileError::NotRegular { .. }) => {
            anyhow::Error::new(UsageError::new(e.to_string()))
        }
        SampleError::Csv(CsvFileError::HeaderMismatch {
            found, expected, ..
        }) => {
            let what = if found.split(',').eq(SEED_HEADER.iter().copied()) {
                "the original diskstats.py's header (15 columns, no uptime)".to_owned()
            } else {
                format!("a different header (file has `{found}`, expected `{expected}`)")
            };
            anyhow::Error::new(UsageError::new(format!(
                "{} has {what}; refusing to append rows of another layout to it: move it away \
                 or choose another directory with -o",
                path.display()
            )))
        }
        e => anyhow::Error::new(e).context("cannot write the samples"),
    }
}

/// Bad input (the file's content, the device names, a file that is not there) exits 2; I/O
/// failures exit 1.
fn report_error(e: ReportError) -> anyhow::Error {
    match e {
        ReportError::Io { ref error, .. } if error.kind() == io::ErrorKind::NotFound => {
            anyhow::Error::new(UsageError::new(e.to_string()))
        }
        e @ (ReportError::Io { .. } | ReportError::Output(_)) => anyhow::Error::new(e),
        e => anyhow::Error::new(UsageError::new(e.to_string())),
    }
}

fn notes(file: &Path, s: &Summary) {
    let f = file.display();
    if s.torn_tail {
        eprintln!("diskstats: note: {f}: ignored an unterminated last row (a writer was killed)");
    }
    if s.skipped > 0 {
        eprintln!(
            "diskstats: note: {f}: skipped {} row{} whose uptime did not advance (concurrent writers)",
            s.skipped,
            plural(s.skipped)
        );
    }
    if s.reboots > 0 {
        eprintln!(
            "diskstats: note: {f}: {} interval{} across a reboot, measured since boot",
            s.reboots,
            plural(s.reboots)
        );
    }
    if s.resets > 0 {
        eprintln!(
            "diskstats: note: {f}: {} counter reset{} (device removed and added again), measured from zero as iostat does",
            s.resets,
            plural(s.resets)
        );
    }
    if s.intervals == 0 {
        eprintln!(
            "diskstats: note: {f}: no interval to report (each device needs two samples{})",
            if s.idle_hidden.is_empty() {
                ""
            } else {
                "; devices that never did I/O are hidden unless named with -d"
            }
        );
    }
}

fn report(a: &ReportArgs) -> anyhow::Result<()> {
    let (file, devices) = file_and_devices(&a.file, &a.devices)?;
    let devices = Selection::from_args(&devices);
    let devices = devices.names();
    let stdout = io::stdout().lock();
    let out = io::BufWriter::with_capacity(64 * 1024, stdout);
    let result = if a.csv {
        let mut w = CsvReportWriter::new(out).map_err(ReportError::Output);
        match &mut w {
            Ok(w) => report::for_each_interval(&file, devices, |iv| w.write(iv)),
            Err(_) => Ok(Summary::default()),
        }
        .and_then(|s| {
            w.and_then(|w| w.finish().map_err(ReportError::Output))
                .map(|_| s)
        })
    } else {
        let mut w = TableWriter::new(out);
        report::for_each_interval(&file, devices, |iv| w.write(iv))
            .and_then(|s| w.finish().map(|_| s).map_err(ReportError::Output))
    };
    match result {
        Ok(s) => {
            notes(&file, &s);
            Ok(())
        }
        // `diskstats report f | head` is not an error.
        Err(ReportError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(report_error(e)),
    }
}

fn plot(a: &PlotArgs) -> anyhow::Result<()> {
    let (file, devices) = file_and_devices(&a.file, &a.devices)?;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| file.with_extension("svg"));
    // Before anything is read: `diskstats plot samples.svg` would otherwise replace the
    // samples with their plot.
    common::atomic::refuse_overwriting_inputs(&out, &[&file])
        .map_err(|e| UsageError::new(e.to_string()))?;
    let mut p = Plot::new();
    let devices = Selection::from_args(&devices);
    let s = report::for_each_interval(&file, devices.names(), |iv| {
        p.add(iv);
        Ok(())
    })
    .map_err(report_error)?;
    notes(&file, &s);
    if p.is_empty() {
        return Err(UsageError::new(format!(
            "{}: nothing to plot (no device has two samples with I/O)",
            file.display()
        ))
        .into());
    }
    let title = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let svg = p.to_svg(&title).context("cannot draw the plot")?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    common::atomic::write(&out, svg.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "diskstats: wrote {} ({} intervals)",
        out.display(),
        s.intervals
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("inf").is_err());
        assert!(parse_interval("NaN").is_err());
        assert!(parse_interval("1s").is_err());
        assert!(parse_interval("9.3e18").unwrap_err().contains("at most"));
    }

    #[test]
    fn the_lab_report_command_lines_parse() {
        let c =
            Cli::try_parse_from(["diskstats", "-l", "1", "-d", "vda", "-o", "/var/log/"]).unwrap();
        assert_eq!(c.sample.interval, Some(Duration::from_secs(1)));
        assert_eq!(c.sample.devices, ["vda"]);
        assert_eq!(c.sample.outdir, Some(PathBuf::from("/var/log/")));
        let c = Cli::try_parse_from(["diskstats", "-d", "vda", "vdb", "-o", "/x"]).unwrap();
        assert_eq!(c.sample.devices, ["vda", "vdb"]);
        assert!(c.sample.interval.is_none() && c.command.is_none());
        // The lab report's help showed --l and --d.
        let c = Cli::try_parse_from(["diskstats", "--l", "2", "--d", "sda"]).unwrap();
        assert_eq!(c.sample.interval, Some(Duration::from_secs(2)));
        assert!(
            Cli::try_parse_from(["diskstats", "-n", "5"]).is_err(),
            "-n needs -l"
        );
        // The cron mode is untouched by the completions and man subcommands.
        let c =
            Cli::try_parse_from(["diskstats", "-d", "vda", "-o", "/var/log/diskstats/"]).unwrap();
        assert!(c.command.is_none() && c.sample.interval.is_none());
        assert!(matches!(
            Cli::try_parse_from(["diskstats", "completions", "zsh"])
                .unwrap()
                .command,
            Some(Command::Completions(_))
        ));
        assert!(Cli::try_parse_from(["diskstats", "-l", "1", "man"]).is_err());
        let c = Cli::try_parse_from(["diskstats", "report", "f.csv", "--csv"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Report(ReportArgs { csv: true, .. }))
        ));
        // `-d` takes several names: the file after it is taken back as the file.
        for args in [
            &["diskstats", "report", "-d", "vda", "f.csv"][..],
            &["diskstats", "report", "f.csv", "-d", "vda"],
        ] {
            let Some(Command::Report(r)) = Cli::try_parse_from(args).unwrap().command else {
                panic!("{args:?}")
            };
            let (file, devices) = file_and_devices(&r.file, &r.devices).unwrap();
            assert_eq!(
                (file, devices),
                (PathBuf::from("f.csv"), vec!["vda".to_owned()])
            );
        }
        let Some(Command::Plot(p)) = Cli::try_parse_from(["diskstats", "plot"]).unwrap().command
        else {
            panic!("plot")
        };
        assert!(file_and_devices(&p.file, &p.devices).is_err());
    }
}
