//! Sampling: read `/proc/diskstats`, pick the devices, and append one CSV batch per sample.
//!
//! The hot path is built for a low, flat cost per sample:
//!
//! - `/proc/diskstats` is opened once and re-read with `pread(2)` at offset 0 (the kernel
//!   regenerates a seq_file read from offset 0), into a buffer that is reused;
//! - only the lines of the selected devices are parsed;
//! - the timestamp, the uptime and the numbers are formatted straight into a reused buffer,
//!   and the rows of a sample go to the file in one `write(2)`
//!   ([`CsvAppender::append_encoded`]).
//!
//! So a sample allocates nothing unless the set of devices changes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::csvfile::AppendOutcome;
use common::{CsvAppender, CsvFileError, Shutdown, Ticker, TimeFormat};

use crate::clock::{Stamper, boottime};
use crate::parse::{Counters, DiskLine, Layout, ParseError, line_name, parse_line};
use crate::record::{HEADER, encode_row, format_uptime, row_bound, transcode_into};

/// The kernel's file.
pub const PROC_DISKSTATS: &str = "/proc/diskstats";

/// Errors of the sampler. Each names the file or the devices involved.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The statistics file could not be opened.
    #[error("cannot open {}: {error}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not a `source`: a chain says it once).
        error: io::Error,
    },
    /// The statistics file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not a `source`).
        error: io::Error,
    },
    /// The statistics file is not text.
    #[error("{} is not text (invalid UTF-8)", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// Devices asked for are not in the statistics file.
    #[error(
        "unknown device{} {} (not in {}); devices are: {}",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        path.display(),
        if available.is_empty() { "(none)".to_owned() } else { available.join(" ") }
    )]
    UnknownDevice {
        /// The file.
        path: PathBuf,
        /// The names that were not found.
        missing: Vec<String>,
        /// The names that exist.
        available: Vec<String>,
    },
    /// Writing the CSV file failed.
    #[error(transparent)]
    Csv(#[from] CsvFileError),
    /// The Prometheus textfile (`--prometheus`) could not be replaced.
    #[error("cannot write {}: {error}", path.display())]
    Textfile {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not a `source`).
        error: io::Error,
    },
}

/// `/proc/diskstats` (or a file in its format), opened once and re-read from the start.
#[derive(Debug)]
pub struct Source {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    len: usize,
    /// A kernel seq_file (under `/proc`): see [`SEQ_SHORT_READ`].
    seq_file: bool,
    /// CLOCK_BOOTTIME and wall time right after the last read.
    read_boottime: (u64, u32),
    read_wall: DateTime<Utc>,
}

/// A read of a kernel seq_file from offset 0 returns what fits in the kernel's buffer (at
/// least one page, 4096 bytes) and stops early only at the end of the file or when the next
/// record (a line of at most about 420 bytes here) does not fit (`fs/seq_file.c`,
/// `seq_read_iter`). So a read that returns at most 4096 − 512 bytes into a larger buffer
/// has reached the end, and the extra `read` that would return 0 is skipped: about 10% of
/// the kernel's cost of a sample.
pub const SEQ_SHORT_READ: usize = 4096 - 512;

impl Source {
    /// Opens the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Source, SampleError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|error| SampleError::Open {
            path: path.clone(),
            error,
        })?;
        Ok(Source {
            seq_file: path.starts_with("/proc"),
            path,
            file,
            // Enough for about 60 devices at once; grows if needed.
            buf: vec![0; 8 * 1024],
            len: 0,
            read_boottime: (0, 0),
            read_wall: DateTime::UNIX_EPOCH,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file again, from offset 0, and notes both clocks right after.
    pub fn read(&mut self) -> Result<&str, SampleError> {
        self.read_raw()?;
        self.text()
    }

    /// The clocks at the end of the last read: CLOCK_BOOTTIME (seconds, nanoseconds) and
    /// wall time.
    pub fn read_time(&self) -> ((u64, u32), DateTime<Utc>) {
        (self.read_boottime, self.read_wall)
    }

    fn read_raw(&mut self) -> Result<(), SampleError> {
        let mut len = 0;
        loop {
            if len == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let room = self.buf.len() - len;
            match self.file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    if self.seq_file && n <= SEQ_SHORT_READ && n < room {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(SampleError::Read {
                        path: self.path.clone(),
                        error,
                    });
                }
            }
        }
        self.len = len;
        // Both clocks right after the read, as the lab report took its timestamp.
        self.read_boottime = boottime();
        self.read_wall = Utc::now();
        Ok(())
    }

    /// The text of the last read.
    pub fn text(&self) -> Result<&str, SampleError> {
        std::str::from_utf8(&self.buf[..self.len]).map_err(|_| SampleError::NotText {
            path: self.path.clone(),
        })
    }
}

/// Something the sampler noticed that the user should hear about (each is reported once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A device that was being sampled is no longer in the file.
    Gone(String),
    /// A device that had gone is back.
    Back(String),
    /// A device that was not there at the start appeared (when sampling all devices).
    New(String),
    /// A line could not be parsed and is skipped (reported once per run).
    BadLine {
        line: String,
        /// Why.
        error: ParseError,
    },
    /// The Prometheus textfile could not be replaced (reported once per change of error;
    /// the CSV goes on, and the file keeps its last complete sample).
    TextfileFailed(String),
    /// The Prometheus textfile is written again after a failure.
    TextfileBack(PathBuf),
}

/// Which devices to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every device in the file, in the kernel's order.
    All,
    /// These devices, in this order (duplicates removed).
    Devices(Vec<String>),
}

impl Selection {
    /// A selection from the `-d` arguments: none means all; a `/dev/` prefix is accepted
    /// and dropped; duplicates are removed, keeping the first.
    pub fn from_args(devices: &[String]) -> Selection {
        if devices.is_empty() {
            return Selection::All;
        }
        let mut out: Vec<String> = Vec::with_capacity(devices.len());
        for d in devices {
            let d = d.strip_prefix("/dev/").unwrap_or(d);
            if !out.iter().any(|o| o == d) {
                out.push(d.to_owned());
            }
        }
        Selection::Devices(out)
    }

    /// The named devices (empty for all).
    pub fn names(&self) -> &[String] {
        match self {
            Selection::All => &[],
            Selection::Devices(d) => d,
        }
    }
}

/// A named device's reading in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// The I/O counters of the line (fields a kernel lacks are 0).
    pub counters: Counters,
    /// The line's format.
    pub layout: Layout,
}

/// Reads samples and encodes them as CSV rows. The pure part of the work is in
/// [`encode_sample`]; this adds the file, the clocks and the bookkeeping of devices.
#[derive(Debug)]
pub struct Sampler {
    source: Source,
    selection: Selection,
    /// Per named device: the latest reading of this sample, and whether it was there before.
    slots: Vec<Option<Found>>,
    present: Vec<bool>,
    /// When sampling all devices: the names seen in the previous sample, in order.
    known: Vec<String>,
    bad_line_reported: bool,
    stamper: Stamper,
    uptime: Vec<u8>,
}

impl Sampler {
    /// Opens `source` for `selection`. Reads it once to check that every named device
    /// exists ([`SampleError::UnknownDevice`] otherwise); that read is the first sample's.
    pub fn new(
        mut source: Source,
        selection: Selection,
        format: TimeFormat,
    ) -> Result<Sampler, SampleError> {
        let text = source.read()?;
        let mut available = Vec::new();
        for line in text.lines() {
            if let Some(name) = line_name(line) {
                available.push(name.to_owned());
            }
        }
        let missing: Vec<String> = selection
            .names()
            .iter()
            .filter(|n| !available.contains(n))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(SampleError::UnknownDevice {
                path: source.path.clone(),
                missing,
                available,
            });
        }
        let n = selection.names().len();
        let known = match selection {
            Selection::All => available,
            Selection::Devices(_) => Vec::new(),
        };
        Ok(Sampler {
            source,
            selection,
            slots: vec![None; n],
            present: vec![true; n],
            known,
            bad_line_reported: false,
            stamper: Stamper::new(format),
            uptime: Vec::with_capacity(32),
        })
    }

    /// The last read's selected devices, for the Prometheus textfile.
    pub fn devices(&self) -> Result<Vec<crate::textfile::Device>, SampleError> {
        Ok(crate::textfile::devices(
            self.source.text()?,
            &self.selection,
        ))
    }

    /// Reads the file again (skip this for the first sample, which [`Sampler::new`] read),
    /// then appends this sample's rows to `out` and its events to `events`. Returns the
    /// number of rows.
    pub fn sample(
        &mut self,
        fresh_read: bool,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<usize, SampleError> {
        if fresh_read {
            self.source.read_raw()?;
        }
        let ((secs, nanos), wall) = self.source.read_time();
        self.uptime.clear();
        format_uptime(&mut self.uptime, secs, nanos);
        let stamp = self.stamper.format(wall);
        let text = self.source.text()?;
        let (rows, same_devices) = encode_sample(
            text,
            &self.selection,
            &self.known,
            &mut self.slots,
            stamp,
            &self.uptime,
            out,
            &mut |line, error| {
                if !self.bad_line_reported {
                    self.bad_line_reported = true;
                    events.push(Event::BadLine {
                        line: line.to_owned(),
                        error,
                    });
                }
            },
        );
        match &self.selection {
            Selection::Devices(names) => {
                for (i, name) in names.iter().enumerate() {
                    let now = self.slots[i].is_some();
                    if now != self.present[i] {
                        events.push(if now {
                            Event::Back(name.clone())
                        } else {
                            Event::Gone(name.clone())
                        });
                        self.present[i] = now;
                    }
                }
            }
            Selection::All if !same_devices => track_all(text, &mut self.known, events),
            Selection::All => {}
        }
        Ok(rows)
    }
}

/// Compares the names in `text` with those of the previous sample; on a change, reports the
/// devices that went or came and remembers the new list.
fn track_all(text: &str, known: &mut Vec<String>, events: &mut Vec<Event>) {
    let mut same = true;
    let mut n = 0;
    for name in text.lines().filter_map(line_name) {
        if known.get(n).map(String::as_str) != Some(name) {
            same = false;
            break;
        }
        n += 1;
    }
    if same && n == known.len() {
        return;
    }
    let now: Vec<String> = text
        .lines()
        .filter_map(line_name)
        .map(str::to_owned)
        .collect();
    for k in known.iter() {
        if !now.contains(k) {
            events.push(Event::Gone(k.clone()));
        }
    }
    for name in &now {
        if !known.contains(name) {
            events.push(Event::New(name.clone()));
        }
    }
    *known = now;
}

/// Encodes the rows of one sample (pure): for [`Selection::All`], every parsable line in
/// file order; for named devices, those found, in the selection's order. `slots` (one per
/// named device) receives what was found. Lines that cannot be parsed go to `bad_line` and
/// are skipped.
///
/// Returns the number of rows appended to `out`, and (for [`Selection::All`]) whether the
/// devices were exactly `known`, in order, so that the caller need not compare again.
#[allow(clippy::too_many_arguments)]
pub fn encode_sample(
    text: &str,
    selection: &Selection,
    known: &[String],
    slots: &mut [Option<Found>],
    datetime: &[u8],
    uptime: &[u8],
    out: &mut Vec<u8>,
    bad_line: &mut dyn FnMut(&str, ParseError),
) -> (usize, bool) {
    let mut rows = 0;
    let mut same = true;
    match selection {
        Selection::All => {
            // Rows are transcoded straight into `out`, which is kept longer than needed (so
            // that it is not zero-filled row by row) and cut to `w` at the end.
            let mut w = out.len();
            for line in lines(text) {
                // The fast path takes every line in the kernel's usual form; the rest (old
                // 7-token partitions, blank or bad lines, names that need quoting) are parsed.
                let need = w + row_bound(datetime, line.as_bytes(), uptime);
                if out.len() < need {
                    out.resize(need.max(2 * out.len()), 0);
                }
                if let Some((len, (a, b))) =
                    transcode_into(&mut out[w..], datetime, line.as_bytes(), uptime)
                {
                    w += len;
                    same &= known
                        .get(rows)
                        .is_some_and(|k| k.as_bytes() == &line.as_bytes()[a..b]);
                    rows += 1;
                    continue;
                }
                out.truncate(w);
                match parse_line(line) {
                    Ok(d) => {
                        same &= known.get(rows).is_some_and(|k| k == d.name);
                        encode_row(out, datetime, &d, uptime);
                        rows += 1;
                    }
                    Err(ParseError::TokenCount(0)) => {} // a blank line
                    Err(e) => {
                        same = false;
                        bad_line(line, e);
                    }
                }
                w = out.len();
            }
            out.truncate(w);
            same &= rows == known.len();
        }
        Selection::Devices(names) => {
            slots.iter_mut().for_each(|s| *s = None);
            for line in lines(text) {
                let Some(name) = line_name(line) else {
                    if !line.trim().is_empty() {
                        bad_line(
                            line,
                            ParseError::TokenCount(line.split_whitespace().count()),
                        );
                    }
                    continue;
                };
                let Some(i) = names.iter().position(|n| n == name) else {
                    continue;
                };
                match parse_line(line) {
                    Ok(d) => {
                        slots[i] = Some(Found {
                            major: d.major,
                            minor: d.minor,
                            counters: d.counters,
                            layout: d.layout,
                        })
                    }
                    Err(e) => bad_line(line, e),
                }
            }
            for (name, slot) in names.iter().zip(slots.iter()) {
                if let Some(s) = slot {
                    let d = DiskLine {
                        major: s.major,
                        minor: s.minor,
                        name,
                        counters: s.counters,
                        layout: s.layout,
                    };
                    encode_row(out, datetime, &d, uptime);
                    rows += 1;
                }
            }
        }
    }
    (rows, same)
}

/// The lines of `text`, as `text.split_terminator('\n')` gives them, found with a vector
/// search for the newlines.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= text.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &text.as_bytes()[pos..]).map_or(text.len(), |k| pos + k);
        // Newlines are ASCII, so both ends are char boundaries.
        let line = text.get(pos..end);
        pos = end + 1;
        line
    })
}

/// How a sampling run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunSummary {
    /// Samples taken (reads of the file).
    pub samples: u64,
    /// Samples that wrote at least one row.
    pub samples_written: u64,
    /// Rows written: one per device per sample.
    pub rows: u64,
    /// Ticks skipped because a sample took longer than the interval.
    pub skipped_ticks: u64,
    /// Whether a signal stopped the run.
    pub interrupted: bool,
}

/// A sampler bound to its output file, and to a Prometheus textfile if asked.
#[derive(Debug)]
pub struct Recorder {
    sampler: Sampler,
    out: CsvAppender,
    body: Vec<u8>,
    events: Vec<Event>,
    first: bool,
    textfile: Option<Textfile>,
}

/// The Prometheus textfile, replaced after each sample's CSV rows are written.
#[derive(Debug)]
struct Textfile {
    path: PathBuf,
    /// The last write's error, if it failed.
    failing: Option<String>,
}

impl Recorder {
    /// Binds `sampler` to the CSV file at `path` (created with its directories; an existing
    /// file must have the same header, [`CsvFileError::HeaderMismatch`] otherwise).
    pub fn open(sampler: Sampler, path: &Path) -> Result<Recorder, SampleError> {
        let mut out = CsvAppender::open(path, &HEADER)?;
        // A rename by logrotate is noticed within a second; checking before every sample
        // would cost a stat(2) each time, about a tenth of the sample at `-l 0`.
        out.set_rotation_check_interval(Duration::from_secs(1));
        Ok(Recorder {
            sampler,
            out,
            body: Vec::with_capacity(8 * 1024),
            events: Vec::new(),
            first: true,
            textfile: None,
        })
    }

    /// Also replaces `path` with the sample's counters in the Prometheus text format
    /// ([`crate::textfile`]) after each sample, atomically, mode 0644 (a file that exists
    /// keeps its mode).
    pub fn with_textfile(mut self, path: &Path) -> Recorder {
        self.textfile = Some(Textfile {
            path: path.to_owned(),
            failing: None,
        });
        self
    }

    /// The Prometheus textfile, if any.
    pub fn textfile(&self) -> Option<&Path> {
        self.textfile.as_ref().map(|t| t.path.as_path())
    }

    /// The output file.
    pub fn path(&self) -> &Path {
        self.out.path()
    }

    /// Takes one sample and appends its rows in one batch, then replaces the textfile.
    /// `events` gets what to tell the user. The first sample's textfile must be written
    /// ([`SampleError::Textfile`] otherwise); a later failure is an event and sampling goes
    /// on.
    pub fn tick(&mut self, on_event: &mut dyn FnMut(&Event)) -> Result<AppendOutcome, SampleError> {
        self.body.clear();
        self.events.clear();
        let first = std::mem::take(&mut self.first);
        self.sampler
            .sample(!first, &mut self.body, &mut self.events)?;
        for e in &self.events {
            on_event(e);
        }
        let outcome = self.out.append_encoded(&self.body)?;
        if let Some(t) = &mut self.textfile {
            let text = crate::textfile::encode(self.sampler.devices()?);
            match write_textfile(&t.path, text.as_bytes()) {
                Ok(()) => {
                    if t.failing.take().is_some() {
                        on_event(&Event::TextfileBack(t.path.clone()));
                    }
                }
                Err(error) if first => {
                    return Err(SampleError::Textfile {
                        path: t.path.clone(),
                        error,
                    });
                }
                Err(e) => {
                    let msg = format!("cannot write {}: {e}", t.path.display());
                    if t.failing.as_ref() != Some(&msg) {
                        on_event(&Event::TextfileFailed(msg.clone()));
                        t.failing = Some(msg);
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Samples once (the cron mode).
    pub fn once(&mut self, on_event: &mut dyn FnMut(&Event)) -> Result<RunSummary, SampleError> {
        let o = self.tick(on_event)?;
        Ok(RunSummary {
            samples: 1,
            samples_written: u64::from(o.rows > 0),
            rows: o.rows as u64,
            ..RunSummary::default()
        })
    }

    /// Samples every `interval` (zero: as fast as possible) on a drift-free ticker, until
    /// `count` samples were taken or `shutdown` is requested; a request lets the current
    /// sample finish. On a write error, `summary` holds what was written before it.
    pub fn run_loop(
        &mut self,
        interval: Duration,
        count: Option<u64>,
        shutdown: &Shutdown,
        summary: &mut RunSummary,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), SampleError> {
        let mut ticker = Ticker::new(interval);
        while count.is_none_or(|c| summary.samples < c) {
            if ticker.wait(shutdown).is_none() {
                summary.interrupted = true;
                break;
            }
            let o = self.tick(on_event)?;
            summary.samples += 1;
            summary.rows += o.rows as u64;
            summary.samples_written += u64::from(o.rows > 0);
        }
        summary.skipped_ticks = ticker.skipped_total();
        if shutdown.requested() {
            summary.interrupted = true;
        }
        Ok(())
    }
}

/// Replaces the textfile atomically. A new file is 0644 whatever the umask (node_exporter
/// runs as another user); an existing one keeps its mode. Not synced: the next sample
/// rewrites it anyway, and a sync per sample would be a disk write per sample, on the very
/// disks being measured.
fn write_textfile(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let new = std::fs::symlink_metadata(path).is_err();
    let mut f = common::atomic::AtomicFile::create(path, 0o644)?;
    if new {
        f.file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    f.file().write_all(bytes)?;
    f.commit_unsynced()
}
