//! Writing result files: parent folders created, contents written to a
//! temporary file then renamed, so a crash never leaves half a report.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{CliError, Result};

/// Writes `contents` to `path` atomically.
///
/// # Errors
/// [`CliError::Io`] naming the file.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(CliError::io("create folder", dir.display()))?;
    }
    let tmp = path.with_extension("partial");
    let mut f = fs::File::create(&tmp).map_err(CliError::io("create", tmp.display()))?;
    f.write_all(contents)
        .map_err(CliError::io("write", tmp.display()))?;
    f.sync_all().map_err(CliError::io("sync", tmp.display()))?;
    fs::rename(&tmp, path).map_err(CliError::io("rename into", path.display()))?;
    Ok(())
}

/// Writes `value` as pretty JSON.
///
/// # Errors
/// As [`write_file`].
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_file(path, text.as_bytes())
}
