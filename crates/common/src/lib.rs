//! What the three tools of the workspace share.
//!
//! - [`atomic`]: replacing a whole file (temp file, fsync, rename, fsync the directory).
//! - [`csvfile`]: CSV files that many processes append to safely (one `write(2)` per batch
//!   under an exclusive `flock`, header checked and written once).
//! - [`lock`]: one writer at a time, and the refusal names the holder's pid.
//! - [`time`]: the timestamp formats the tools write and read back.
//! - [`ticker`]: a fixed-rate ticker on the monotonic clock that never drifts.
//! - [`shutdown`]: SIGINT/SIGTERM handling with sleeps that wake at once.
//! - [`chart`]: SVG line charts (plotters, SVG backend only).
//! - [`process`]: child processes that are stopped by PID, also on error paths.
//! - [`net`] and [`wait`]: loopback helpers and deadline polling for readiness checks.
//! - [`profile`]: staged load profiles (TOML), played by `lbbench profile` and replayed by
//!   `webscaler simulate`.
//! - [`cli`]: exit codes and one-line error reports shared by the binaries.
//! - [`clidoc`]: manual pages and shell completions from a tool's clap definition (the
//!   `completions` and `man` subcommands of every tool).
//! - [`table`]: plain aligned text tables (the binaries' listings).

pub mod atomic;
pub mod chart;
pub mod cli;
pub mod clidoc;
pub mod csvfile;
pub mod lock;
pub mod net;
pub mod process;
pub mod profile;
pub mod shutdown;
pub mod table;
pub mod ticker;
pub mod time;
pub mod wait;

pub use csvfile::{CsvAppender, CsvFileError};
pub use shutdown::Shutdown;
pub use ticker::{Tick, Ticker};
pub use time::TimeFormat;
