//! Exit codes and error reporting shared by the three binaries.
//!
//! - 0: success;
//! - 1: a runtime failure (a dead socket, a failed write, a program that crashed);
//! - 2: bad usage or bad input (clap's own usage errors, and any error whose chain contains
//!   a [`UsageError`]).
//!
//! Errors are printed as one line, `tool: error: outer context: inner cause`.

use std::process::ExitCode;

/// Marks an error as bad usage or bad input: the binary exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// A usage error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        UsageError(msg.into())
    }
}

/// Exit status for success.
pub const EXIT_OK: u8 = 0;
/// Exit status for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for bad usage or bad input.
pub const EXIT_USAGE: u8 = 2;

/// The exit status for an error: [`EXIT_USAGE`] if any error in its chain is a
/// [`UsageError`], else [`EXIT_FAILURE`].
pub fn exit_status(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.downcast_ref::<UsageError>().is_some())
    {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// Formats an error chain on one line: `outer: inner: cause`.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

/// Runs a binary's main logic and turns its result into an exit code, printing any error on
/// one line to stderr as `tool: error: ...`.
pub fn run(tool: &str, main: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match main() {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(err) => {
            eprintln!("{tool}: error: {}", one_line(&err));
            ExitCode::from(exit_status(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_anywhere_in_the_chain_exit_2() {
        let e = anyhow::Error::new(UsageError::new("unknown device sdz")).context("sampling");
        assert_eq!(exit_status(&e), EXIT_USAGE);
        assert_eq!(one_line(&e), "sampling: unknown device sdz");
        let e: anyhow::Error = std::fs::read("/nonexistent/x")
            .context("cannot read /nonexistent/x")
            .unwrap_err();
        assert_eq!(exit_status(&e), EXIT_FAILURE);
    }

    #[test]
    fn one_line_folds_newlines() {
        let e = anyhow::anyhow!("a\nb");
        assert_eq!(one_line(&e), "a b");
    }
}
