//! Atomic file writing, for every file gradlab saves (checkpoints, reports,
//! histories): a reader, or a crash at any moment, sees the old file or the
//! new one, never a mix, and never a special file replaced.
//!
//! [`write_atomic`] writes to a temporary file in the folder of the *target*
//! (symlinks followed, so a link keeps pointing at the new content), fsyncs
//! it, renames it over the target and fsyncs the folder. Temporary files are
//! named `.NAME.tmp-PID-RANDOM` after the target's file name `NAME` and the
//! writing process; one left behind by a killed save (its process is gone) is
//! removed by the next save of the same target. Nothing else in the folder
//! is ever touched. [`check_output_path`] validates an output path before a
//! long computation starts, so a bad path fails in a second, not after an
//! hour of training.

use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::NamedTempFile;

use crate::error::{NnError, Result};

/// Symlinks followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Where the process of a temporary file cannot be checked (no `/proc`), a
/// temporary file this old is taken as left behind by a killed save.
const STALE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NnError + 'a {
    move |source| NnError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What a non-regular file is, in words for the error message.
fn kind_of(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
    }
    "not a regular file"
}

/// The file `path` finally names, symlinks followed (the target may not
/// exist yet); an error if it exists and is not a regular file. Errors name
/// `path` as given.
fn resolve_target(path: &Path) -> Result<PathBuf> {
    if path.file_name().is_none() {
        return Err(NnError::Io {
            op: "write",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        });
    }
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current).map_err(io_error("read link", path))?;
                // A relative link is relative to the folder holding the link.
                current = parent_dir(&current).join(link);
            }
            Ok(meta) if meta.is_file() => return Ok(current),
            Ok(meta) => {
                return Err(NnError::NotRegularFile {
                    path: path.to_path_buf(),
                    kind: kind_of(&meta),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if current.file_name().is_none() {
                    break;
                }
                return Ok(current);
            }
            Err(e) => return Err(io_error("inspect", path)(e)),
        }
    }
    Err(NnError::Io {
        op: "resolve",
        path: path.to_path_buf(),
        source: io::Error::other(format!(
            "more than {MAX_LINKS} symbolic links, or a link to a folder"
        )),
    })
}

/// The prefix of this process's temporary files for a target named `name`.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-{}-", std::process::id())
}

/// Whether the process `pid` that created a temporary file is gone.
fn is_stale(pid: u32, meta: &Metadata) -> bool {
    if pid == std::process::id() {
        return false;
    }
    if Path::new("/proc/self").exists() {
        // A save in another pid namespace sharing this folder would look
        // dead; its rename would then fail with an error, never corrupt a
        // file.
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    meta.modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_AGE)
}

/// Removes the temporary files of target `name` in `dir` whose process is
/// gone (left by a killed save). Only names of the form
/// `.NAME.tmp-PID-SUFFIX` are considered; a failure is ignored, since the
/// save itself does not depend on it.
fn remove_stale(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some((pid, suffix)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if suffix.is_empty() {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_file() && is_stale(pid, &meta) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A temporary file written and synced beside its target, not yet renamed
/// over it. Dropping it removes the temporary file.
#[derive(Debug)]
pub(crate) struct StagedFile {
    tmp: NamedTempFile,
    target: PathBuf,
    shown: PathBuf,
}

impl StagedFile {
    /// Writes `path`'s new content to a fresh temporary file beside the
    /// resolved target and fsyncs it.
    pub(crate) fn write(
        path: &Path,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Self> {
        let target = resolve_target(path)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = parent_dir(&target);
        remove_stale(&dir, &name);
        let prefix = temp_prefix(&name);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).rand_bytes(6);
        #[cfg(unix)]
        {
            // tempfile's default is 0600; a saved file should get the same
            // permissions as any file the user creates (0666 less the umask).
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let tmp = builder
            .tempfile_in(&dir)
            .map_err(io_error("create a temporary file for", path))?;
        if let Ok(old) = fs::metadata(&target) {
            // Replacing a file keeps its permissions.
            tmp.as_file()
                .set_permissions(old.permissions())
                .map_err(io_error("set permissions of", path))?;
        }
        let staged = StagedFile {
            tmp,
            target,
            shown: path.to_path_buf(),
        };
        {
            let mut out = BufWriter::new(staged.tmp.as_file());
            write(&mut out).map_err(io_error("write", path))?;
            out.flush().map_err(io_error("write", path))?;
        }
        staged
            .tmp
            .as_file()
            .sync_all()
            .map_err(io_error("sync", path))?;
        Ok(staged)
    }

    /// The temporary file.
    pub(crate) fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// The path the caller gave.
    pub(crate) fn path(&self) -> &Path {
        &self.shown
    }

    /// Renames the temporary file over the target and fsyncs the folder.
    pub(crate) fn commit(self) -> Result<()> {
        let StagedFile { tmp, target, shown } = self;
        // The target may have been replaced since the write started; never
        // rename over a special file.
        resolve_target(&target).map_err(|e| match e {
            NnError::NotRegularFile { kind, .. } => NnError::NotRegularFile {
                path: shown.clone(),
                kind,
            },
            other => other,
        })?;
        // On failure the temporary file is dropped, which removes it.
        tmp.persist(&target)
            .map_err(|e| io_error("rename into", &shown)(e.error))?;
        let dir = parent_dir(&target);
        // Make the rename durable. Opening a folder for sync is a POSIX habit;
        // where it is not supported the rename has still happened.
        if let Ok(d) = File::open(&dir) {
            d.sync_all()
                .map_err(io_error("sync the folder of", &shown))?;
        }
        Ok(())
    }
}

/// Writes a file atomically: `write` fills a temporary file in the target's
/// folder, which is fsynced, renamed over the target, and the folder fsynced.
///
/// A symlink at `path` is followed (the link stays and points at the new
/// content). A `path` that is a directory, device, FIFO, socket or any other
/// non-regular file is refused before anything is written. Temporary files
/// left by a killed earlier save of the same target are removed. On any
/// failure, the previous file is untouched and no temporary file is left.
///
/// # Errors
/// [`NnError::NotRegularFile`]; [`NnError::Io`] (naming `path`, not the
/// temporary file) when the folder is missing or not writable, or `write`,
/// the sync or the rename fails.
///
/// # Examples
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("report.json");
/// gradlab_nn::write_atomic(&path, |w| writeln!(w, "{{\"ok\": true}}"))?;
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"ok\": true}\n");
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub fn write_atomic(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    StagedFile::write(path.as_ref(), write)?.commit()
}

/// [`write_atomic`] of a byte buffer.
///
/// # Errors
/// Those of [`write_atomic`].
pub fn write_atomic_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Validates an output path before any work starts, and returns the file it
/// finally names (symlinks resolved).
///
/// Creates the missing parent folders, refuses a path that exists and is not
/// a regular file (directory, device such as `/dev/null`, FIFO, socket), and
/// checks that a file can be created in the folder (by creating and removing
/// a temporary file there). An existing file is not modified.
///
/// # Errors
/// [`NnError::NotRegularFile`]; [`NnError::Io`] naming `path` when a folder
/// cannot be created or written to.
pub fn check_output_path(path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = path.as_ref();
    let target = resolve_target(path)?;
    let dir = parent_dir(&target);
    fs::create_dir_all(&dir).map_err(io_error("create the folder of", path))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The probe has the temporary-file name of this target, so even a probe
    // left by a kill is cleaned up by the next save.
    tempfile::Builder::new()
        .prefix(&temp_prefix(&name))
        .tempfile_in(&dir)
        .map_err(io_error("create a file beside", path))?;
    Ok(target)
}
