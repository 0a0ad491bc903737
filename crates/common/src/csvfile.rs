//! CSV files that several processes can append to at the same time without tearing or
//! interleaving rows.
//!
//! The rules, all enforced by [`CsvAppender`]:
//!
//! - The file is opened with `O_APPEND`, and every batch of rows is written with **one**
//!   `write(2)` while an exclusive `flock(2)` is held. Two cron jobs appending to the same
//!   file therefore never interleave, and a process killed between batches never leaves a
//!   partial row.
//! - The header is written once, in the same write as the first rows, when the file is new or
//!   empty (also after `logrotate`'s `copytruncate`).
//! - If the file already has a different header, nothing is appended: the error names the
//!   file and both headers.
//! - A torn last line (from a full disk, a power cut, or SIGKILL: Linux may cut a write short
//!   at a page boundary when a fatal signal arrives during it) is cut off before the next
//!   batch, so it never glues onto a new row, and what was cut is said on stderr (the file,
//!   the bytes, the start of the text). A last row that has all its fields and lacks only its
//!   final newline (a file written by another program or edited by hand) is kept: the
//!   newline is added. (A write that the kernel cuts short ends on a page boundary of the
//!   file, so a last line that ends on one is taken for a torn write and cut, even if the cut
//!   fell inside its last field so that it looks whole.) Every row in the file is whole; only a batch that was being written
//!   when its writer was killed may have lost its last rows. Readers decide the same way
//!   ([`whole_len`]), so a row the next batch keeps is never left out by them.
//! - Only regular files: a FIFO or a device in place of the file would swallow the rows.
//! - Parent directories are created.
//! - If the path is renamed away (log rotation), the next batch goes to a new file at the path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Errors from [`CsvAppender`]. Every message names the file and includes the OS or encoding
/// error; the cause is not also exposed as `source()`, so a chain printed on one line
/// (`common::cli`) shows it once.
#[derive(Debug, thiserror::Error)]
pub enum CsvFileError {
    /// A parent directory could not be created.
    #[error("cannot create directory {}: {error}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        error: io::Error,
    },
    /// The file could not be opened or created.
    #[error("cannot open {} for appending: {error}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        error: io::Error,
    },
    /// Reading, locking or writing the file failed.
    #[error("{} {}: {error}", op, path.display())]
    Io {
        /// What was being done ("cannot write", "cannot lock", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        error: io::Error,
    },
    /// The file has a header that is not the one this writer writes.
    #[error(
        "{}: the file's header differs from the one this tool writes; refusing to append \
         (file has `{found}`, expected `{expected}`); move the file away or write elsewhere",
        path.display()
    )]
    HeaderMismatch {
        /// The file.
        path: PathBuf,
        /// The header found in the file.
        found: String,
        /// The header this writer writes.
        expected: String,
    },
    /// The path is not a regular file (a FIFO, a device, a socket).
    #[error("{} is not a regular file ({kind}); refusing to append rows to it", path.display())]
    NotRegular {
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A row does not have as many fields as the header.
    #[error("{}: a row has {got} fields but the header has {expected}", path.display())]
    FieldCount {
        /// The file.
        path: PathBuf,
        /// The header's field count.
        expected: usize,
        /// The row's field count.
        got: usize,
    },
    /// Rows could not be encoded as CSV.
    #[error("{}: cannot encode a row as CSV: {error}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        error: csv::Error,
    },
}

type Result<T> = std::result::Result<T, CsvFileError>;

/// What one [`CsvAppender::append_rows`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Rows written (the header not counted).
    pub rows: usize,
    /// Whether the header was written because the file was new or empty.
    pub wrote_header: bool,
    /// Bytes of a torn last line that were cut off before writing.
    pub repaired_bytes: u64,
    /// Whether the file's last row lacked only its final newline, which was added.
    pub completed_last_row: bool,
}

/// An append-only CSV file with a fixed header. See the [module docs](self) for the rules.
#[derive(Debug)]
pub struct CsvAppender {
    path: PathBuf,
    header: Vec<String>,
    header_line: Vec<u8>,
    file: File,
    identity: (u64, u64),
    /// The length of the file right after our last write; while it is unchanged, the file is
    /// known to end with a newline and its header is known to be right.
    known_len: Option<u64>,
    buf: Vec<u8>,
    /// How often the path is checked for replacement (zero: before every batch).
    rotation_check: Duration,
    last_rotation_check: Option<Instant>,
}

impl CsvAppender {
    /// Opens (and creates, with its parent directories) `path` for appending rows under
    /// `header`.
    ///
    /// If the file already has content, its header is checked now, so a mismatch is reported
    /// before any work is done. Nothing is written until the first append.
    pub fn open<S: AsRef<str>>(path: impl AsRef<Path>, header: &[S]) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let header: Vec<String> = header.iter().map(|h| h.as_ref().to_owned()).collect();
        let header_line = encode_row(&path, &header)?;
        let file = open_append(&path)?;
        let identity = identity_of(&file, &path)?;
        let mut appender = CsvAppender {
            path,
            header,
            header_line,
            file,
            identity,
            known_len: None,
            buf: Vec::with_capacity(4096),
            rotation_check: Duration::ZERO,
            last_rotation_check: None,
        };
        appender.with_lock(|this| {
            let len = this.len()?;
            if len > 0 {
                this.check_header()?;
                // A whole last line: the first batch need not read the file again unless
                // someone else writes first (a torn tail is left for that batch to cut).
                let mut last = [0u8; 1];
                this.file
                    .read_exact_at(&mut last, len - 1)
                    .map_err(|e| this.io_err("cannot read", e))?;
                if last[0] == b'\n' {
                    this.known_len = Some(len);
                }
            }
            Ok(())
        })?;
        // The path was just opened: no rotation to look for before the first batch.
        appender.last_rotation_check = Some(Instant::now());
        Ok(appender)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks whether the path was renamed away (log rotation) at most once per `every`
    /// instead of before every batch, saving a `stat(2)` per batch in tight loops. Batches
    /// written in between still go, whole, to the file as it was (the rotated one), as with
    /// any log writer; a `copytruncate` rotation is still noticed at the next batch. The
    /// default, zero, checks before every batch.
    pub fn set_rotation_check_interval(&mut self, every: Duration) {
        self.rotation_check = every;
    }

    /// The header this appender writes.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Appends rows of string fields as one batch: one `write(2)` under the lock.
    ///
    /// Each row must have exactly as many fields as the header. An empty batch writes nothing.
    pub fn append_rows<R, F>(&mut self, rows: impl IntoIterator<Item = R>) -> Result<AppendOutcome>
    where
        R: IntoIterator<Item = F>,
        F: AsRef<[u8]>,
    {
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        let encoded = self.encode_rows(&mut body, rows);
        let result = encoded.and_then(|n| self.write_batch(&body, n));
        self.buf = body;
        result
    }

    /// Appends rows the caller has already encoded as CSV (RFC 4180, each record ending with
    /// `\n`), as one batch: one `write(2)` under the lock. For hot loops that format their
    /// rows straight into a reused buffer instead of going through a CSV writer.
    ///
    /// The body is checked before anything is written: it must end with a newline and every
    /// record must have as many fields as the header. Returns the rows written; an empty body
    /// writes nothing.
    pub fn append_encoded(&mut self, body: &[u8]) -> Result<AppendOutcome> {
        if body.is_empty() {
            return Ok(AppendOutcome::default());
        }
        if body.last() != Some(&b'\n') {
            return Err(self.io_err(
                "cannot append a batch without a final newline to",
                io::Error::new(io::ErrorKind::InvalidInput, "unterminated last row"),
            ));
        }
        let rows = self.count_encoded_rows(body)?;
        self.write_batch(body, rows)
    }

    /// Counts the records of an encoded body and checks their field counts: by counting
    /// commas when nothing is quoted, with a CSV reader otherwise.
    fn count_encoded_rows(&self, body: &[u8]) -> Result<usize> {
        let wrong = |got: usize| CsvFileError::FieldCount {
            path: self.path.clone(),
            expected: self.header.len(),
            got,
        };
        let mut n = 0;
        if memchr::memchr(b'"', body).is_some() {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(body);
            let mut record = csv::ByteRecord::new();
            while rdr
                .read_byte_record(&mut record)
                .map_err(|source| self.encode_err(source))?
            {
                if record.len() != self.header.len() {
                    return Err(wrong(record.len()));
                }
                n += 1;
            }
            return Ok(n);
        }
        // The body ends with a newline, so each newline ends a record.
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', body) {
            let fields = count_byte(&body[start..end], b',') + 1;
            if fields != self.header.len() {
                return Err(wrong(fields));
            }
            n += 1;
            start = end + 1;
        }
        Ok(n)
    }

    /// Appends serde records (structs whose fields are the columns, in header order) as one
    /// batch.
    pub fn append_records<T: Serialize>(&mut self, records: &[T]) -> Result<AppendOutcome> {
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        let encoded = (|| {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut body);
            for r in records {
                w.serialize(r).map_err(|source| self.encode_err(source))?;
            }
            w.flush()
                .map_err(|e| self.io_err("cannot encode rows for", e))?;
            drop(w);
            self.check_field_counts(&body)?;
            Ok(records.len())
        })();
        let result = encoded.and_then(|n| self.write_batch(&body, n));
        self.buf = body;
        result
    }

    fn encode_rows<R, F>(
        &self,
        body: &mut Vec<u8>,
        rows: impl IntoIterator<Item = R>,
    ) -> Result<usize>
    where
        R: IntoIterator<Item = F>,
        F: AsRef<[u8]>,
    {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_writer(body);
        let mut record = csv::ByteRecord::new();
        let mut n = 0;
        for row in rows {
            record.clear();
            for field in row {
                record.push_field(field.as_ref());
            }
            if record.len() != self.header.len() {
                return Err(CsvFileError::FieldCount {
                    path: self.path.clone(),
                    expected: self.header.len(),
                    got: record.len(),
                });
            }
            w.write_byte_record(&record)
                .map_err(|source| self.encode_err(source))?;
            n += 1;
        }
        w.flush()
            .map_err(|e| self.io_err("cannot encode rows for", e))?;
        Ok(n)
    }

    fn check_field_counts(&self, body: &[u8]) -> Result<()> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(body);
        let mut record = csv::ByteRecord::new();
        while rdr
            .read_byte_record(&mut record)
            .map_err(|source| self.encode_err(source))?
        {
            if record.len() != self.header.len() {
                return Err(CsvFileError::FieldCount {
                    path: self.path.clone(),
                    expected: self.header.len(),
                    got: record.len(),
                });
            }
        }
        Ok(())
    }

    fn write_batch(&mut self, body: &[u8], rows: usize) -> Result<AppendOutcome> {
        if rows == 0 {
            return Ok(AppendOutcome::default());
        }
        self.reopen_if_replaced()?;
        self.with_lock(|this| {
            let mut outcome = AppendOutcome {
                rows,
                ..AppendOutcome::default()
            };
            let mut len = this.len()?;
            if this.known_len != Some(len) && len > 0 {
                match this.repair_tail(len)? {
                    Tail::Whole => {}
                    Tail::Cut(n) => outcome.repaired_bytes = n,
                    Tail::LacksNewline => outcome.completed_last_row = true,
                }
                len -= outcome.repaired_bytes;
                if len > 0 {
                    this.check_header()?;
                }
            }
            let data: std::borrow::Cow<'_, [u8]> = if len == 0 {
                outcome.wrote_header = true;
                let mut v = Vec::with_capacity(this.header_line.len() + body.len());
                v.extend_from_slice(&this.header_line);
                v.extend_from_slice(body);
                v.into()
            } else if outcome.completed_last_row {
                let mut v = Vec::with_capacity(1 + body.len());
                v.push(b'\n');
                v.extend_from_slice(body);
                v.into()
            } else {
                body.into()
            };
            this.write_once(&data, len)?;
            this.known_len = Some(len + data.len() as u64);
            Ok(outcome)
        })
    }

    /// One `write(2)`. A short write (full disk) is undone by truncating back to `len_before`,
    /// so a partial row never stays in the file.
    fn write_once(&mut self, data: &[u8], len_before: u64) -> Result<()> {
        loop {
            match (&self.file).write(data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => {
                    let _ = self.file.set_len(len_before);
                    return Err(self.io_err(
                        "cannot write",
                        io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!(
                                "short write ({n} of {} bytes); the partial batch was removed",
                                data.len()
                            ),
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_err("cannot write", e)),
            }
        }
    }

    /// Makes the file end with a whole row: the bytes after the last newline are cut, unless
    /// they are a whole row that lacks only its newline (see [`whole_len`]), which the next
    /// write completes. Says on stderr what it did.
    fn repair_tail(&mut self, len: u64) -> Result<Tail> {
        let mut last = [0u8; 1];
        self.file
            .read_exact_at(&mut last, len - 1)
            .map_err(|e| self.io_err("cannot read", e))?;
        if last[0] == b'\n' {
            return Ok(Tail::Whole);
        }
        // Scan backwards in blocks for the last newline.
        let mut end = len;
        let mut block = vec![0u8; 8192];
        let keep = loop {
            if end == 0 {
                break 0;
            }
            let start = end.saturating_sub(block.len() as u64);
            let chunk = &mut block[..(end - start) as usize];
            self.file
                .read_exact_at(chunk, start)
                .map_err(|e| self.io_err("cannot read", e))?;
            if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
                break start + pos as u64 + 1;
            }
            end = start;
        };
        // The tail (a header without its newline when `keep` is 0 is never kept).
        let tail_len = len - keep;
        let mut tail = vec![0u8; tail_len.min(MAX_KEPT_TAIL) as usize];
        self.file
            .read_exact_at(&mut tail, keep)
            .map_err(|e| self.io_err("cannot read", e))?;
        if keep > 0
            && tail_len <= MAX_KEPT_TAIL
            && !on_page_boundary(len)
            && row_is_whole(&tail, self.header.len())
        {
            warn(format_args!(
                "{}: its last row lacked its final newline; added it ({} bytes kept: `{}`)",
                self.path.display(),
                tail_len,
                preview(&tail)
            ));
            return Ok(Tail::LacksNewline);
        }
        self.file
            .set_len(keep)
            .map_err(|e| self.io_err("cannot truncate the torn last line of", e))?;
        warn(format_args!(
            "{}: cut {} bytes of an unfinished last line (a writer killed mid-row?): `{}`",
            self.path.display(),
            tail_len,
            preview(&tail)
        ));
        Ok(Tail::Cut(tail_len))
    }

    fn check_header(&self) -> Result<()> {
        let mut first = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut off = 0u64;
        loop {
            let n = self
                .file
                .read_at(&mut chunk, off)
                .map_err(|e| self.io_err("cannot read", e))?;
            if n == 0 {
                break;
            }
            if let Some(pos) = chunk[..n].iter().position(|&b| b == b'\n') {
                first.extend_from_slice(&chunk[..pos]);
                break;
            }
            first.extend_from_slice(&chunk[..n]);
            off += n as u64;
            if first.len() > 1 << 20 {
                break;
            }
        }
        // Fast path: byte for byte our own header line. Building a CSV reader costs tens of
        // microseconds, a noticeable part of a one-shot run from cron.
        if self.header_line.strip_suffix(b"\n") == Some(first.as_slice()) {
            return Ok(());
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(first.as_slice());
        let found: Vec<String> = match rdr.records().next() {
            Some(Ok(rec)) => rec.iter().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        if found != self.header {
            return Err(CsvFileError::HeaderMismatch {
                path: self.path.clone(),
                found: String::from_utf8_lossy(&first)
                    .trim_end_matches('\r')
                    .to_owned(),
                expected: self.header.join(","),
            });
        }
        Ok(())
    }

    fn reopen_if_replaced(&mut self) -> Result<()> {
        if !self.rotation_check.is_zero() {
            let now = Instant::now();
            if self
                .last_rotation_check
                .is_some_and(|t| now.duration_since(t) < self.rotation_check)
            {
                return Ok(());
            }
            self.last_rotation_check = Some(now);
        }
        let current = match fs::metadata(&self.path) {
            Ok(m) => Some((m.dev(), m.ino())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.io_err("cannot stat", e)),
        };
        if current != Some(self.identity) {
            self.file = open_append(&self.path)?;
            self.identity = identity_of(&self.file, &self.path)?;
            self.known_len = None;
        }
        Ok(())
    }

    fn with_lock<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        loop {
            match self.file.lock() {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_err("cannot lock", e)),
            }
        }
        let result = f(self);
        let _ = self.file.unlock();
        result
    }

    fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| self.io_err("cannot stat", e))
    }

    fn io_err(&self, op: &'static str, source: io::Error) -> CsvFileError {
        CsvFileError::Io {
            op,
            path: self.path.clone(),
            error: source,
        }
    }

    fn encode_err(&self, source: csv::Error) -> CsvFileError {
        CsvFileError::Encode {
            path: self.path.clone(),
            error: source,
        }
    }
}

/// What the end of a file needed.
enum Tail {
    /// It ended with a newline.
    Whole,
    /// This many bytes after the last newline were cut.
    Cut(u64),
    /// The last row was whole but for its newline.
    LacksNewline,
}

/// A last line longer than this is never taken for a whole row (and is cut).
const MAX_KEPT_TAIL: u64 = 1 << 20;

/// Whether `tail` (the bytes after a file's last newline) is a whole CSV row of `fields`
/// fields that lacks only its final newline: every quote closed, and exactly `fields`
/// fields. (A row cut inside its last field can look whole; a row cut anywhere else cannot.)
pub fn row_is_whole(tail: &[u8], fields: usize) -> bool {
    if tail.is_empty() || !count_byte(tail, b'"').is_multiple_of(2) || tail.contains(&b'\n') {
        return false;
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(tail);
    let mut record = csv::ByteRecord::new();
    matches!(rdr.read_byte_record(&mut record), Ok(true)) && record.len() == fields
}

/// How many bytes at the start of a CSV file's content are whole rows, the way
/// [`CsvAppender`] sees them: everything up to the last newline, and also a last row without
/// its newline if it is whole ([`row_is_whole`] with the header's field count) and does not
/// end on a page boundary (where torn writes end), since the next append keeps it. Readers of files that a writer may be appending to use it so that they
/// count the same rows as the writer.
pub fn whole_len(bytes: &[u8]) -> usize {
    let Some(last_nl) = memchr::memrchr(b'\n', bytes) else {
        // Not even a whole header.
        return 0;
    };
    let tail = &bytes[last_nl + 1..];
    if tail.is_empty() {
        return bytes.len();
    }
    let header_end = memchr::memchr(b'\n', bytes).unwrap_or(last_nl);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..header_end]);
    let mut header = csv::ByteRecord::new();
    let fields = match rdr.read_byte_record(&mut header) {
        Ok(true) => header.len(),
        _ => return last_nl + 1,
    };
    if tail.len() as u64 <= MAX_KEPT_TAIL
        && !on_page_boundary(bytes.len() as u64)
        && row_is_whole(tail, fields)
    {
        bytes.len()
    } else {
        last_nl + 1
    }
}

/// A CSV file's content (header and rows) under `header`, which must have every column of
/// the file's own header, in the same order, plus new ones: each row gets `default(column)`
/// in each new column. Rows whose cell count is not the old header's are kept byte for byte
/// (they stay as unreadable as they were), and so is what follows the whole rows (a torn
/// last line, which the appender cuts later as usual). An error says why the header cannot
/// be migrated (a column of the file missing from `header`, or out of order, or a new
/// column without a default).
pub fn with_added_columns(
    bytes: &[u8],
    header: &[String],
    default: impl Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<u8>, String> {
    let whole = whole_len(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(&bytes[..whole]);
    let old = rdr
        .byte_headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    // Where each new column comes from: an old column, or a default.
    let mut sources = Vec::with_capacity(header.len());
    let mut next_old = 0;
    for name in header {
        match old.iter().position(|h| h == name.as_bytes()) {
            Some(i) if i == next_old => {
                sources.push(Ok(i));
                next_old += 1;
            }
            Some(_) => return Err(format!("column `{name}` has moved")),
            None => sources.push(Err(
                default(name).ok_or_else(|| format!("no value for the new column `{name}`"))?
            )),
        }
    }
    if next_old != old.len() {
        let gone = String::from_utf8_lossy(&old[next_old]).into_owned();
        return Err(format!("column `{gone}` is not in the new header"));
    }
    let encode = |fields: &[&[u8]]| -> std::result::Result<Vec<u8>, String> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(fields).map_err(|e| e.to_string())?;
        w.into_inner().map_err(|e| e.to_string())
    };
    let mut out = encode(&header.iter().map(|h| h.as_bytes()).collect::<Vec<_>>())?;
    let mut records: Vec<(usize, csv::ByteRecord)> = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let start = rdr.position().byte() as usize;
        match rdr.read_byte_record(&mut record) {
            Ok(true) => records.push((start, record.clone())),
            Ok(false) => break,
            Err(e) => return Err(format!("cannot read a row: {e}")),
        }
    }
    for (k, (start, rec)) in records.iter().enumerate() {
        if rec.len() == old.len() {
            let row: Vec<&[u8]> = sources
                .iter()
                .map(|s| match s {
                    Ok(i) => &rec[*i],
                    Err(d) => d.as_bytes(),
                })
                .collect();
            out.extend(encode(&row)?);
        } else {
            let end = records.get(k + 1).map_or(whole, |(s, _)| *s);
            out.extend_from_slice(&bytes[*start..end]);
        }
    }
    out.extend_from_slice(&bytes[whole..]);
    Ok(out)
}

/// Whether a file of `len` bytes ends on a page boundary, where the kernel cuts a write
/// short (a fatal signal during the write, a full disk).
fn on_page_boundary(len: u64) -> bool {
    len.is_multiple_of(rustix::param::page_size() as u64)
}

/// At most the first 60 characters of `bytes`, for a message.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut p: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        p.push('…');
    }
    p.escape_debug().to_string()
}

/// A warning on stderr, as `tool: warning: ...` with the running program's name.
fn warn(msg: std::fmt::Arguments<'_>) {
    let tool = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "csv".to_owned());
    eprintln!("{tool}: warning: {msg}");
}

fn encode_row(path: &Path, fields: &[String]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(fields)
        .map_err(|source| CsvFileError::Encode {
            path: path.to_path_buf(),
            error: source,
        })?;
    w.into_inner().map_err(|e| CsvFileError::Io {
        op: "cannot encode the header of",
        path: path.to_path_buf(),
        error: e.into_error(),
    })
}

/// How many times `needle` occurs in `hay`. Fixed blocks of 64 bytes counted in a byte-wide
/// sum (which cannot overflow) compile to vector compares and adds.
fn count_byte(hay: &[u8], needle: u8) -> usize {
    let mut blocks = hay.chunks_exact(64);
    let mut total = 0;
    for block in &mut blocks {
        let mut n = 0u8;
        for &b in block {
            n += u8::from(b == needle);
        }
        total += usize::from(n);
    }
    total + blocks.remainder().iter().filter(|&&b| b == needle).count()
}

fn open_append(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| CsvFileError::CreateDir {
            path: dir.to_path_buf(),
            // `mkdir` on an existing file says "File exists"; what is wrong is that it is not
            // a directory.
            error: if source.kind() == io::ErrorKind::AlreadyExists && !dir.is_dir() {
                io::Error::from_raw_os_error(rustix::io::Errno::NOTDIR.raw_os_error())
            } else {
                source
            },
        })?;
    }
    // Checked before opening too: opening a FIFO for writing may wait for a reader.
    if let Ok(meta) = fs::metadata(path) {
        check_regular(path, &meta)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|source| CsvFileError::Open {
            path: path.to_path_buf(),
            error: source,
        })?;
    let meta = file.metadata().map_err(|source| CsvFileError::Io {
        op: "cannot stat",
        path: path.to_path_buf(),
        error: source,
    })?;
    check_regular(path, &meta)?;
    Ok(file)
}

fn check_regular(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(CsvFileError::NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

fn identity_of(file: &File, path: &Path) -> Result<(u64, u64)> {
    let m = file.metadata().map_err(|source| CsvFileError::Io {
        op: "cannot stat",
        path: path.to_path_buf(),
        error: source,
    })?;
    Ok((m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_added_with_their_defaults_and_odd_rows_kept() {
        let old = b"a,b,c\n1,2,3\n\"x,y\",5,6\nbad,row\n7,8,9\n7,8";
        let header: Vec<String> = ["a", "new1", "b", "c", "new2"].map(String::from).to_vec();
        let d = |c: &str| match c {
            "new1" => Some("off".to_owned()),
            "new2" => Some(String::new()),
            _ => None,
        };
        let got = super::with_added_columns(old, &header, d).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "a,new1,b,c,new2\n1,off,2,3,\n\"x,y\",off,5,6,\nbad,row\n7,off,8,9,\n7,8"
        );
        let e = |h: &[&str]| {
            super::with_added_columns(old, &h.iter().map(|s| s.to_string()).collect::<Vec<_>>(), d)
                .unwrap_err()
        };
        assert!(e(&["a", "c", "b"]).contains("moved"));
        assert!(e(&["a", "b"]).contains("`c` is not in"));
        assert!(e(&["a", "b", "c", "other"]).contains("`other`"));
    }

    use super::*;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn writes_header_once_then_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.csv");
        let mut w = CsvAppender::open(&path, &["x", "y"]).unwrap();
        assert!(path.exists(), "open creates the file and its directories");
        let o = w.append_rows([["1", "2"], ["3", "4"]]).unwrap();
        assert_eq!(
            o,
            AppendOutcome {
                rows: 2,
                wrote_header: true,
                ..AppendOutcome::default()
            }
        );
        let o = w.append_rows([["5", "6"]]).unwrap();
        assert!(!o.wrote_header);
        drop(w);
        let mut w = CsvAppender::open(&path, &["x", "y"]).unwrap();
        w.append_rows([["7", "8"]]).unwrap();
        assert_eq!(read(&path), "x,y\n1,2\n3,4\n5,6\n7,8\n");
    }

    #[test]
    fn pre_encoded_rows_are_checked_then_written_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["x", "y"]).unwrap();
        let o = w.append_encoded(b"1,2\n3,4\n").unwrap();
        assert_eq!((o.rows, o.wrote_header), (2, true));
        let o = w.append_encoded(b"\"a,b\",\"c\nd\"\n").unwrap();
        assert_eq!((o.rows, o.wrote_header), (1, false));
        assert_eq!(w.append_encoded(b"").unwrap().rows, 0);
        // Wrong field counts and a missing final newline are refused; nothing is written.
        let err = w.append_encoded(b"5,6\n7\n").unwrap_err();
        assert!(
            matches!(
                err,
                CsvFileError::FieldCount {
                    expected: 2,
                    got: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(w.append_encoded(b"\"q\"\n").is_err());
        let err = w.append_encoded(b"5,6").unwrap_err();
        assert!(err.to_string().contains("final newline"), "{err}");
        assert_eq!(read(&path), "x,y\n1,2\n3,4\n\"a,b\",\"c\nd\"\n");
    }

    #[test]
    fn long_pre_encoded_rows_are_checked_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let header: Vec<String> = (0..22).map(|i| format!("c{i}")).collect();
        let mut w = CsvAppender::open(&path, &header).unwrap();
        // Rows of about 100 bytes (longer than the 64-byte blocks commas are counted in).
        let row = |fields: usize| {
            let mut r = (0..fields)
                .map(|i| format!("{}", 1000 + i))
                .collect::<Vec<_>>()
                .join(",");
            r.push('\n');
            r
        };
        let good: String = (0..50).map(|_| row(22)).collect();
        assert_eq!(w.append_encoded(good.as_bytes()).unwrap().rows, 50);
        // One row too long and one too short: the totals match, but each row is checked.
        let mut bad: String = (0..20).map(|_| row(22)).collect();
        bad.push_str(&row(23));
        bad.push_str(&row(21));
        let err = w.append_encoded(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, CsvFileError::FieldCount { got: 23, .. }),
            "{err}"
        );
        // An empty line is a record of one field.
        let err = w
            .append_encoded(format!("{}\n", row(22)).as_bytes())
            .unwrap_err();
        assert!(
            matches!(err, CsvFileError::FieldCount { got: 1, .. }),
            "{err}"
        );
        assert_eq!(read(&path).lines().count(), 51);
    }

    #[test]
    fn a_header_quoted_differently_is_still_the_same_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "\"x\",y\n1,2\n").unwrap();
        let mut w = CsvAppender::open(&path, &["x", "y"]).unwrap();
        w.append_rows([["3", "4"]]).unwrap();
        assert_eq!(read(&path), "\"x\",y\n1,2\n3,4\n");
        fs::write(&path, "x,yy\n").unwrap();
        assert!(matches!(
            CsvAppender::open(&path, &["x", "y"]),
            Err(CsvFileError::HeaderMismatch { .. })
        ));
    }

    #[test]
    fn counts_bytes_across_blocks() {
        let hay: Vec<u8> = (0..2000)
            .map(|i| if i % 3 == 0 { b',' } else { b'x' })
            .collect();
        assert_eq!(count_byte(&hay, b','), 667);
        assert_eq!(count_byte(&[b','; 255], b','), 255);
        assert_eq!(count_byte(b"", b','), 0);
    }

    #[test]
    fn a_rate_limited_rotation_check_still_follows_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["a"]).unwrap();
        w.set_rotation_check_interval(Duration::from_millis(50));
        w.append_rows([["1"]]).unwrap();
        fs::rename(&path, dir.path().join("out.csv.1")).unwrap();
        // Within the interval the batch goes, whole, to the renamed file.
        w.append_rows([["2"]]).unwrap();
        let start = Instant::now();
        crate::wait::poll_until(
            "a batch to reach the new file",
            Duration::from_secs(10),
            Duration::from_millis(10),
            || {
                w.append_rows([["3"]]).unwrap();
                path.exists().then_some(())
            },
        )
        .unwrap();
        assert!(start.elapsed() < Duration::from_secs(10));
        let rotated = read(&dir.path().join("out.csv.1"));
        let fresh = read(&path);
        assert!(rotated.starts_with("a\n1\n2\n"), "{rotated}");
        assert_eq!(fresh, "a\n3\n");
        // Every row is in exactly one file.
        let rows = rotated.lines().count() - 1 + fresh.lines().count() - 1;
        assert!(rows >= 3);
    }

    #[test]
    fn empty_batch_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["x"]).unwrap();
        let o = w.append_rows(Vec::<Vec<&str>>::new()).unwrap();
        assert_eq!(o.rows, 0);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn refuses_a_different_header_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "a,b\n1,2\n").unwrap();
        let err = CsvAppender::open(&path, &["a", "c"]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CsvFileError::HeaderMismatch { .. }));
        assert!(
            msg.contains("out.csv") && msg.contains("`a,b`") && msg.contains("`a,c`"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert_eq!(read(&path), "a,b\n1,2\n");
    }

    #[test]
    fn header_change_by_someone_else_is_caught_on_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["a"]).unwrap();
        w.append_rows([["1"]]).unwrap();
        // Another program rewrites the file in place with another header.
        let f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        (&f).write_all(b"zzz\n9\n").unwrap();
        let err = w.append_rows([["2"]]).unwrap_err();
        assert!(matches!(err, CsvFileError::HeaderMismatch { .. }), "{err}");
        assert_eq!(read(&path), "zzz\n9\n");
    }

    #[test]
    fn quoted_fields_and_a_quoted_header_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let header = ["name", "time_spent_reading(ms)", "a,b"];
        let mut w = CsvAppender::open(&path, &header).unwrap();
        w.append_rows([["x,y", "say \"hi\"", "3"]]).unwrap();
        drop(w);
        // Reopening parses the quoted header and accepts it.
        let mut w = CsvAppender::open(&path, &header).unwrap();
        w.append_rows([["z", "1", "2"]]).unwrap();
        let mut rdr = csv::Reader::from_path(&path).unwrap();
        assert_eq!(rdr.headers().unwrap().iter().collect::<Vec<_>>(), header);
        let rows: Vec<Vec<String>> = rdr
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(rows[0], ["x,y", "say \"hi\"", "3"]);
        assert_eq!(rows[1], ["z", "1", "2"]);
    }

    #[test]
    fn wrong_field_count_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["a", "b"]).unwrap();
        let err = w.append_rows([vec!["1", "2"], vec!["3"]]).unwrap_err();
        assert!(matches!(
            err,
            CsvFileError::FieldCount {
                expected: 2,
                got: 1,
                ..
            }
        ));
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn serde_records() {
        #[derive(Serialize)]
        struct Row {
            name: String,
            value: f64,
            count: u64,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["name", "value", "count"]).unwrap();
        w.append_records(&[
            Row {
                name: "a".into(),
                value: 1.5,
                count: 3,
            },
            Row {
                name: "b".into(),
                value: 0.25,
                count: 4,
            },
        ])
        .unwrap();
        assert_eq!(read(&path), "name,value,count\na,1.5,3\nb,0.25,4\n");
        let err = CsvAppender::open(dir.path().join("other.csv"), &["name", "value"])
            .unwrap()
            .append_records(&[Row {
                name: "c".into(),
                value: 1.0,
                count: 1,
            }])
            .unwrap_err();
        assert!(
            matches!(
                err,
                CsvFileError::FieldCount {
                    expected: 2,
                    got: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_torn_last_line_is_cut_before_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "a,b\n1,2\n3,\"x").unwrap();
        let mut w = CsvAppender::open(&path, &["a", "b"]).unwrap();
        let o = w.append_rows([["5", "6"]]).unwrap();
        assert_eq!(o.repaired_bytes, 4);
        assert!(!o.completed_last_row);
        assert_eq!(read(&path), "a,b\n1,2\n5,6\n");
    }

    #[test]
    fn a_whole_last_row_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "a,b\n1,2\n3,\"4,5\"").unwrap();
        assert_eq!(whole_len(&fs::read(&path).unwrap()), 15);
        let mut w = CsvAppender::open(&path, &["a", "b"]).unwrap();
        let o = w.append_rows([["5", "6"]]).unwrap();
        assert_eq!(o.repaired_bytes, 0);
        assert!(o.completed_last_row);
        assert_eq!(read(&path), "a,b\n1,2\n3,\"4,5\"\n5,6\n");
    }

    #[test]
    fn whole_rows_are_counted_as_the_appender_counts_them() {
        assert_eq!(whole_len(b""), 0);
        assert_eq!(whole_len(b"a,b"), 0, "a header without its newline");
        assert_eq!(whole_len(b"a,b\n1,2\n"), 8);
        assert_eq!(whole_len(b"a,b\n1,2\n3,4"), 11);
        assert_eq!(
            whole_len(b"a,b\n1,2\n3,"),
            10,
            "two empty-ish fields still make a row"
        );
        assert_eq!(whole_len(b"a,b\n1,2\n3"), 8, "one field of two");
        assert_eq!(whole_len(b"a,b\n1,2\n3,\"4"), 8, "an open quote");
        assert_eq!(whole_len(b"a,b\n1,2\n3,4,5"), 8, "one field too many");
        assert!(row_is_whole(b"x,\"y,z\"", 2));
        // Ending on a page boundary, it is taken for a torn write.
        let page = rustix::param::page_size();
        let mut text = b"a,b\n".to_vec();
        text.resize(page - 3, b'x');
        text.extend_from_slice(b"\n1,");
        assert_eq!(text.len(), page);
        assert_eq!(whole_len(&text), page - 2);
        assert!(!row_is_whole(b"", 0));
    }

    #[test]
    fn a_fifo_or_a_directory_is_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.csv");
        testkit::make_fifo(&fifo);
        let e = CsvAppender::open(&fifo, &["a"]).unwrap_err();
        assert!(
            matches!(e, CsvFileError::NotRegular { kind: "a FIFO", .. }),
            "{e}"
        );
        let e = CsvAppender::open(dir.path(), &["a"]).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_directory_that_is_a_file_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let e = CsvAppender::open(file.join("out.csv"), &["a"]).unwrap_err();
        assert!(e.to_string().contains("Not a directory"), "{e}");
    }

    #[test]
    fn a_torn_header_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "a,").unwrap();
        // The partial header does not match, so opening refuses ...
        assert!(CsvAppender::open(&path, &["a", "b"]).is_err());
        // ... unless it is exactly a torn prefix; a fresh writer after truncation repairs it.
        fs::write(&path, "").unwrap();
        let mut w = CsvAppender::open(&path, &["a", "b"]).unwrap();
        fs::write(&path, "a,b\n1").unwrap();
        let o = w.append_rows([["2", "3"]]).unwrap();
        assert_eq!(o.repaired_bytes, 1);
        assert_eq!(read(&path), "a,b\n2,3\n");
    }

    #[test]
    fn copytruncate_rotation_rewrites_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["a"]).unwrap();
        w.append_rows([["1"]]).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let o = w.append_rows([["2"]]).unwrap();
        assert!(o.wrote_header);
        assert_eq!(read(&path), "a\n2\n");
    }

    #[test]
    fn rename_rotation_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut w = CsvAppender::open(&path, &["a"]).unwrap();
        w.append_rows([["1"]]).unwrap();
        fs::rename(&path, dir.path().join("out.csv.1")).unwrap();
        w.append_rows([["2"]]).unwrap();
        assert_eq!(read(&path), "a\n2\n");
        assert_eq!(read(&dir.path().join("out.csv.1")), "a\n1\n");
    }

    #[test]
    fn a_one_line_report_shows_the_os_error_once() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        let err =
            anyhow::Error::new(CsvAppender::open(blocker.join("out.csv"), &["a"]).unwrap_err());
        let line = crate::cli::one_line(&err);
        assert_eq!(line.matches("(os error").count(), 1, "{line}");
    }

    #[test]
    fn uncreatable_directory_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        let err = CsvAppender::open(blocker.join("sub/out.csv"), &["a"]).unwrap_err();
        assert!(matches!(err, CsvFileError::CreateDir { .. }));
        assert!(err.to_string().contains("file/sub"), "{err}");
    }
}
