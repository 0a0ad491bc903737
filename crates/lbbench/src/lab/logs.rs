//! Reading the programs' logs and outputs for error messages.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The last `n` non-empty lines of `path` from byte `from` on, joined with " | ".
pub(crate) fn log_tail(path: &Path, from: u64, n: usize) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        // At most the last 16 KiB.
        f.seek(SeekFrom::Start(from.max(len.saturating_sub(16 * 1024))))?;
        let mut raw = Vec::new();
        f.read_to_end(&mut raw)?;
        text = String::from_utf8_lossy(&raw).into_owned();
        Ok(())
    });
    if let Err(e) = read {
        return format!("(cannot read {}: {e})", path.display());
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!("(nothing in {})", path.display());
    }
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

pub(crate) fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The lines of a check's output that say what is wrong (HAProxy's `[ALERT]`s, nginx's
/// `[emerg]`, Pound's `file:line: message`), or all of it if none stands out.
pub(crate) fn problem_lines(text: &str) -> String {
    let bad: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.contains("[ALERT]")
                || l.contains("[emerg]")
                || l.contains("error")
                || l.contains("unrecognized")
                || l.contains("unknown")
        })
        .collect();
    if bad.is_empty() {
        first_lines(text, 5)
    } else {
        bad.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_lines_pick_the_complaints() {
        let haproxy = "[NOTICE]   (1) : haproxy version is 2.6.12\n\
                       [ALERT]    (1) : config : [x.cfg:2] : unknown keyword 'chek'\n\
                       [ALERT]    (1) : config : Fatal errors found in configuration.\n";
        assert_eq!(
            problem_lines(haproxy),
            "[ALERT]    (1) : config : [x.cfg:2] : unknown keyword 'chek' | \
             [ALERT]    (1) : config : Fatal errors found in configuration."
        );
        assert_eq!(
            problem_lines("just this\n\nand that"),
            "just this | and that"
        );
    }

    #[test]
    fn log_tail_reads_the_end_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, "old\nline 1\n\nline 2\nline 3\n").unwrap();
        assert_eq!(log_tail(&p, 0, 2), "line 2 | line 3");
        assert_eq!(log_tail(&p, 4, 10), "line 1 | line 2 | line 3");
        assert!(log_tail(&dir.path().join("none"), 0, 2).starts_with("(cannot read"));
    }
}
