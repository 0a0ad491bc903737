//! Manual pages and shell completions generated from a tool's clap definition, and the two
//! subcommands that print them: `TOOL completions SHELL` and `TOOL man [SUBCOMMAND...]`.
//!
//! Each tool adds [`CompletionsArgs`] and [`ManArgs`] to its subcommands and passes its
//! `clap::Command` (`Cli::command()`) to their `run`. The Debian package is built from the
//! same output (`scripts/package.sh` runs `TOOL man --dir` and `TOOL completions SHELL`), so
//! the pages of a `cargo install` and of the package are the same.
//!
//! Pages are named as git names its own: `webscaler.1` for the tool, `webscaler-cloud.1`
//! and `webscaler-cloud-list.1` for its subcommands, section 1. They are reproducible (no
//! date): the same binary always writes the same bytes.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap_complete::Shell;
use clap_mangen::Man;

use crate::cli::UsageError;

/// `TOOL completions SHELL`: prints the completion script for SHELL.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Install it where the shell looks for completions (NAME is the tool's name; the Debian
package installs all three):
  bash: ~/.local/share/bash-completion/completions/NAME
  zsh:  _NAME in a directory of $fpath (before compinit runs)
  fish: ~/.config/fish/completions/NAME.fish")]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

impl CompletionsArgs {
    /// Writes the completion script of `cmd` (the tool's whole command line) to stdout.
    pub fn run(&self, cmd: clap::Command) -> anyhow::Result<()> {
        let mut out = io::stdout().lock();
        let result = write_completions(cmd, self.shell, &mut out).and_then(|()| out.flush());
        ignore_broken_pipe(result).context("cannot write the completions to stdout")
    }
}

/// `TOOL man [SUBCOMMAND...] [--dir DIR]`: prints a manual page, or writes them all.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Pipe a page to `man -l -` to read it; `man -l DIR/NAME.1` reads one written with --dir.")]
pub struct ManArgs {
    /// The subcommand whose page to print, with its parents for a nested one (`cloud list`);
    /// none: the tool's own page.
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Vec<String>,
    /// Write every page (the tool's and one per subcommand, as NAME.1) into DIR, created if
    /// missing, and print their paths.
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    pub dir: Option<PathBuf>,
}

impl ManArgs {
    /// Prints the page asked for of `cmd` (the tool's whole command line) in roff, or writes
    /// every page into `--dir`. An unknown subcommand is a usage error naming the known ones.
    pub fn run(&self, cmd: clap::Command) -> anyhow::Result<()> {
        if let Some(dir) = &self.dir {
            let written = write_man_pages(cmd, dir)?;
            let mut out = io::stdout().lock();
            let listed = written
                .iter()
                .try_for_each(|p| writeln!(out, "{}", p.display()))
                .and_then(|()| out.flush());
            return ignore_broken_pipe(listed).context("cannot write to stdout");
        }
        let page = man_page(cmd, &self.subcommand)?;
        let mut out = io::stdout().lock();
        let result = out.write_all(&page).and_then(|()| out.flush());
        ignore_broken_pipe(result).context("cannot write the manual page to stdout")
    }
}

/// Writes the completion script of `cmd` for `shell`.
pub fn write_completions(
    mut cmd: clap::Command,
    shell: Shell,
    out: &mut dyn Write,
) -> io::Result<()> {
    let name = cmd.get_name().to_owned();
    // clap_complete writes with `write_all` and panics on an error; render into memory so a
    // closed stdout is an error returned, not a panic.
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    out.write_all(&buf)
}

/// The manual page (roff) of the subcommand at `path` of `cmd` (`[]`: the tool itself).
///
/// # Errors
///
/// A [`UsageError`] when `path` names no subcommand (or a hidden one).
pub fn man_page<S: AsRef<str>>(cmd: clap::Command, path: &[S]) -> anyhow::Result<Vec<u8>> {
    let root = prepare(cmd);
    let mut chain = vec![&root];
    for name in path {
        let name = name.as_ref();
        let parent = chain[chain.len() - 1];
        let Some(sub) = visible_subcommands(parent).find(|s| s.get_name() == name) else {
            let known: Vec<&str> = visible_subcommands(parent).map(|s| s.get_name()).collect();
            let whose = chain
                .iter()
                .map(|c| c.get_name())
                .collect::<Vec<_>>()
                .join(" ");
            return Err(UsageError::new(if known.is_empty() {
                format!("{whose} has no subcommand, so no page for {name:?}")
            } else {
                format!(
                    "{whose} has no subcommand {name:?} (it has: {})",
                    known.join(", ")
                )
            })
            .into());
        };
        chain.push(sub);
    }
    let mut page = Vec::new();
    render(&root, &chain, &mut page).context("cannot render the manual page")?;
    Ok(page)
}

/// Writes the page of `cmd` and of each of its visible subcommands, nested ones included,
/// into `dir` (created if missing) as `NAME.1`, and returns their paths, the tool's first.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(
        root: &clap::Command,
        chain: &mut Vec<&clap::Command>,
        dir: &Path,
        written: &mut Vec<PathBuf>,
    ) -> anyhow::Result<()> {
        let cmd = chain[chain.len() - 1];
        let mut page = Vec::new();
        render(root, chain, &mut page).context("cannot render a manual page")?;
        let path = dir.join(format!("{}.1", display_name(cmd)));
        crate::atomic::write(&path, &page)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        for sub in visible_subcommands(cmd) {
            chain.push(sub);
            walk(root, chain, dir, written)?;
            chain.pop();
        }
        Ok(())
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let root = prepare(cmd);
    let mut written = Vec::new();
    walk(&root, &mut vec![&root], dir, &mut written)?;
    Ok(written)
}

/// The command built (so every subcommand has its display name, `tool-sub-subsub`), without
/// clap's `help` subcommand, which has no page.
fn prepare(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

fn display_name(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// Renders the page of the last command of `chain` (the root first): clap_mangen's page,
/// with the tool's name and version as its source, and a SEE ALSO section naming the parent
/// command's page.
fn render(root: &clap::Command, chain: &[&clap::Command], out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = chain[chain.len() - 1].clone();
    let source = format!(
        "{} {}",
        root.get_name(),
        root.get_version().unwrap_or_default()
    );
    if chain.len() > 1 {
        // The synopsis shows the whole command line (`webscaler cloud list`), not `list`.
        let words: Vec<&str> = chain.iter().map(|c| c.get_name()).collect();
        cmd = cmd.bin_name(words.join(" "));
    }
    Man::new(cmd).source(source).render(out)?;
    if chain.len() > 1 {
        // Written by hand: a second `Roff` would repeat clap_mangen's preamble. Command names
        // are plain words and hyphens, which roff wants as `\-`.
        let parent = display_name(chain[chain.len() - 2]).replace('-', "\\-");
        write!(out, ".SH \"SEE ALSO\"\n\\fB{parent}\\fR(1)\n")?;
    }
    Ok(())
}

fn ignore_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        // `TOOL man | head` is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn tool() -> Command {
        Command::new("tool")
            .version("1.2.3")
            .about("Does things.")
            .arg(
                Arg::new("loop")
                    .short('l')
                    .long("loop")
                    .help("Loop every SECS seconds."),
            )
            .subcommand(
                Command::new("cloud")
                    .about("Operates the cloud.")
                    .subcommand(Command::new("list").about("Lists the servers."))
                    .subcommand(Command::new("secret").hide(true)),
            )
            .subcommand(Command::new("plot").about("Draws a chart."))
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn the_tools_page_lists_its_subcommands_and_options() {
        let page = text(&man_page(tool(), &[] as &[&str]).unwrap());
        assert!(page.contains(".TH tool 1  \"tool 1.2.3\""), "{page}");
        assert!(page.contains("tool\\-cloud(1)"), "{page}");
        assert!(page.contains("tool\\-plot(1)"), "{page}");
        assert!(page.contains("\\-\\-loop"), "{page}");
        assert!(!page.contains("SEE ALSO"), "{page}");
        assert!(!page.contains("tool\\-help"), "{page}");
    }

    #[test]
    fn a_nested_subcommand_has_its_own_page_with_the_whole_command_line() {
        let page = text(&man_page(tool(), &["cloud", "list"]).unwrap());
        assert!(
            page.contains(".TH tool-cloud-list 1  \"tool 1.2.3\""),
            "{page}"
        );
        assert!(page.contains("Lists the servers."), "{page}");
        assert!(page.contains("\\fBtool cloud list\\fR"), "{page}");
        assert!(
            page.ends_with(".SH \"SEE ALSO\"\n\\fBtool\\-cloud\\fR(1)\n"),
            "{page}"
        );
        assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble: {page}");
    }

    #[test]
    fn an_unknown_or_hidden_subcommand_is_a_usage_error_naming_the_known_ones() {
        for path in [&["nope"][..], &["cloud", "secret"], &["plot", "x"]] {
            let err = man_page(tool(), path).unwrap_err();
            assert_eq!(crate::cli::exit_status(&err), crate::cli::EXIT_USAGE);
            let msg = err.to_string();
            assert!(msg.contains(path[path.len() - 1]), "{msg}");
        }
        let msg = man_page(tool(), &["nope"]).unwrap_err().to_string();
        assert_eq!(msg, "tool has no subcommand \"nope\" (it has: cloud, plot)");
        let msg = man_page(tool(), &["cloud", "x"]).unwrap_err().to_string();
        assert_eq!(msg, "tool cloud has no subcommand \"x\" (it has: list)");
    }

    #[test]
    fn every_visible_page_is_written_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(tool(), &dir.path().join("man1")).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["tool.1", "tool-cloud.1", "tool-cloud-list.1", "tool-plot.1"]
        );
        let first = std::fs::read(&written[2]).unwrap();
        assert_eq!(first, man_page(tool(), &["cloud", "list"]).unwrap());
        write_man_pages(tool(), &dir.path().join("man1")).unwrap();
        assert_eq!(std::fs::read(&written[2]).unwrap(), first);
    }

    #[test]
    fn completions_name_the_subcommands_for_each_shell() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            write_completions(tool(), shell, &mut out).unwrap();
            let script = text(&out);
            assert!(
                script.contains("cloud") && script.contains("plot"),
                "{shell}: {script}"
            );
            assert!(
                script.contains("--loop") || script.contains("-l loop"),
                "{shell}: {script}"
            );
        }
        let mut out = Vec::new();
        write_completions(tool(), Shell::Bash, &mut out).unwrap();
        assert!(text(&out).contains("complete -F _tool"), "{}", text(&out));
    }
}
