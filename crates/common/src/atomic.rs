//! Replacing a whole file so that a reader, a crash or a full disk never leaves half of it.
//!
//! The one way the workspace writes a file that is replaced rather than appended to (state
//! files, generated configs, reports, charts): the content goes to a temporary file in the
//! same directory, which is synced, renamed over the target, and the directory is synced so
//! the rename itself survives a power cut. Until [`AtomicFile::commit`] the old file is
//! untouched; a dropped, uncommitted [`AtomicFile`] removes its temporary file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temporary file next to `path` that replaces `path` on [`commit`](AtomicFile::commit).
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file `.NAME.tmp-PID` beside `path`. It gets the mode of the file
    /// it will replace, or `mode` (before the umask) when there is none yet.
    pub fn create(path: &Path, mode: u32) -> io::Result<AtomicFile> {
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a file name", path.display()),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let existing = fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(existing.unwrap_or(mode))
            .open(&tmp)?;
        if let Some(mode) = existing {
            // An existing file's mode is kept exactly, whatever the umask says.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        Ok(AtomicFile {
            path: path.to_owned(),
            tmp,
            file: Some(file),
        })
    }

    /// The temporary file's path (for a check that reads the candidate, or a writer that
    /// opens it itself).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The file that will be installed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("an AtomicFile's file is open until commit")
    }

    /// Syncs the temporary file, renames it over the target and syncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("commit is called once");
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.path)?;
        sync_parent(&self.path)
    }

    /// Renames the temporary file over the target without syncing anything: a reader still
    /// sees the old file or the new one, never half of one, but after a power cut the file
    /// may be the old one (or, on some file systems, empty). For a file rewritten every few
    /// seconds whose loss costs nothing (a metrics textfile), where two syncs per write
    /// would mean a disk write, and a journal commit, per write.
    pub fn commit_unsynced(mut self) -> io::Result<()> {
        let file = self.file.take().expect("commit is called once");
        drop(file);
        fs::rename(&self.tmp, &self.path)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Replaces `path` with `bytes` atomically (see the module docs); a new file gets mode 0644
/// before the umask, an existing one keeps its mode.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, 0o644)
}

/// [`write`] with the mode a new file gets (0600 for anything holding secrets or sockets'
/// neighbours).
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.file().write_all(bytes)?;
    f.commit()
}

/// Syncs the directory holding `path`, so a rename or a creation in it is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// The output of a command would replace one of its inputs.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to write {}: it is the input file {}{}; choose another output file",
    output.display(), input.display(),
    if output == input { String::new() } else { " (the same file under another name)".to_owned() }
)]
pub struct OutputIsInput {
    /// The output as given.
    pub output: PathBuf,
    /// The input it resolves to.
    pub input: PathBuf,
}

/// Checks that writing `output` would not replace any of `inputs`: compared by device and
/// inode, through symbolic links and other names of the same file (`in.csv`, `./in.csv`, a
/// link to it). An output that does not exist yet is never an input.
pub fn refuse_overwriting_inputs<P: AsRef<Path>>(
    output: &Path,
    inputs: &[P],
) -> Result<(), OutputIsInput> {
    use std::os::unix::fs::MetadataExt;
    let Ok(out) = fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        let input = input.as_ref();
        if let Ok(m) = fs::metadata(input)
            && (m.dev(), m.ino()) == (out.dev(), out.ino())
        {
            return Err(OutputIsInput {
                output: output.to_owned(),
                input: input.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_under_any_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        fs::write(&input, "data").unwrap();
        let link = dir.path().join("link.svg");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let hard = dir.path().join("hard.csv");
        fs::hard_link(&input, &hard).unwrap();
        let other = dir.path().join("other.svg");
        fs::write(&other, "old").unwrap();
        for out in [&input, &link, &hard, &dir.path().join("./in.csv")] {
            let e = refuse_overwriting_inputs(out, &[&input]).unwrap_err();
            assert!(e.to_string().contains("is the input file"), "{e}");
        }
        refuse_overwriting_inputs(&other, &[&input]).unwrap();
        refuse_overwriting_inputs(&dir.path().join("new.svg"), &[&input]).unwrap();
        assert_eq!(fs::read_to_string(&input).unwrap(), "data");
    }

    #[test]
    fn write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"old content that is longer\n").unwrap();
        write(&path, b"new\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn an_unsynced_commit_replaces_the_whole_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.prom");
        write(&path, b"old content that is longer\n").unwrap();
        let mut f = AtomicFile::create(&path, 0o644).unwrap();
        f.file().write_all(b"new\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old content that is longer\n");
        f.commit_unsynced().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_uncommitted_file_leaves_the_old_one_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backends.cfg");
        fs::write(&path, "old\n").unwrap();
        {
            let mut f = AtomicFile::create(&path, 0o644).unwrap();
            f.file().write_all(b"half").unwrap();
            assert!(f.tmp_path().exists());
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_existing_mode_is_kept_and_a_new_file_gets_the_given_one() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        fs::write(&kept, "x").unwrap();
        fs::set_permissions(&kept, fs::Permissions::from_mode(0o640)).unwrap();
        write(&kept, b"y").unwrap();
        assert_eq!(
            fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o640
        );

        let new = dir.path().join("secret");
        write_with_mode(&new, b"z", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("f");
        assert!(write(&path, b"x").is_err());
        assert!(!path.exists());
    }
}
