//! Writing result files, all through [`gradlab_nn::write_atomic`]: a unique
//! temporary file next to the target (symlinks followed), synced and renamed,
//! so a crash never leaves half a file and no file of the user's is touched
//! but the target; and the check of every output path before work starts.

use std::path::Path;

use crate::error::{CliError, Result};

/// Writes `contents` to `path` atomically, creating missing folders.
///
/// # Errors
/// [`CliError::Run`] naming the path: a folder that cannot be created, a
/// path that is a device, FIFO or folder, a failed write.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<()> {
    check_output(path)?;
    gradlab_nn::write_atomic_bytes(path, contents).map_err(|e| CliError::Run(e.to_string()))
}

/// Writes `value` as pretty JSON.
///
/// # Errors
/// As [`write_file`].
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_file(path, text.as_bytes())
}

/// Checks an output file path before any work starts: creates its parent
/// folders and refuses a path that is not (or cannot become) a regular
/// file, so a bad `--checkpoint`, `--log` or `--json` fails at once rather
/// than after an epoch.
///
/// # Errors
/// [`CliError::Run`] naming the path and what it is.
pub fn check_output(path: &Path) -> Result<()> {
    gradlab_nn::check_output_path(path)
        .map(|_| ())
        .map_err(|e| CliError::Run(e.to_string()))
}

/// Checks an output folder (`--out`): creates it and checks a file can be
/// written inside, before any work starts.
///
/// # Errors
/// [`CliError::Run`] naming the folder.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(CliError::Run(format!(
            "{}: exists and is not a folder",
            dir.display()
        )));
    }
    check_output(&dir.join("index.html"))
}
