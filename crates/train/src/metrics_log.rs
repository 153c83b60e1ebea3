//! [`MetricsLog`]: one row per training step, CSV or JSON Lines, that
//! survives a crash: every row a checkpoint covers is on disk before the
//! checkpoint is, and a resumed run first cuts the log back to the
//! checkpoint's step, so its log equals an uninterrupted run's byte for byte.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Result, TrainError};

/// The CSV header. `step` counts updates done (1 after the first step);
/// `epoch` is 1-based, as the console prints it.
pub const CSV_HEADER: &str = "step,epoch,loss,accuracy,lr";

/// One logged step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRow {
    /// Updates done, this step included.
    pub step: u64,
    /// The epoch, 1-based.
    pub epoch: u64,
    /// Mini-batch loss.
    pub loss: f64,
    /// Mini-batch accuracy.
    pub accuracy: f64,
    /// Learning rate of the step.
    pub lr: f64,
}

/// A per-step metrics file: CSV for a `.csv` path, JSON Lines otherwise.
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
    csv: bool,
}

impl MetricsLog {
    /// Creates (or empties) the log at `path` for a fresh run.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn create(path: &Path) -> Result<MetricsLog> {
        let file = File::create(path).map_err(TrainError::io("create log", path.display()))?;
        let mut log = MetricsLog::wrap(path, file);
        if log.csv {
            writeln!(log.out, "{CSV_HEADER}")
                .map_err(TrainError::io("write log", path.display()))?;
        }
        Ok(log)
    }

    /// Opens the log of a run resumed at `step`: keeps the header and the
    /// rows of steps up to `step`, drops later ones and any torn last line
    /// (written after the checkpoint, or cut by a crash), and appends after
    /// them. A missing log is created.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn resume(path: &Path, step: u64) -> Result<MetricsLog> {
        if !path.exists() {
            return MetricsLog::create(path);
        }
        let io = |what| TrainError::io(what, path.display());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io("open log"))?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io("read log"))?;
        let csv = is_csv(path);
        let mut keep = 0usize;
        let mut header_seen = false;
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break; // torn by a crash
            }
            let body = line.trim_end();
            if csv && !header_seen && keep == 0 && body == CSV_HEADER {
                header_seen = true;
                keep += line.len();
                continue;
            }
            match row_step(body, csv) {
                Some(s) if s <= step => keep += line.len(),
                _ => break,
            }
        }
        file.set_len(keep as u64).map_err(io("cut log"))?;
        file.seek(SeekFrom::End(0)).map_err(io("seek log"))?;
        let mut log = MetricsLog::wrap(path, file);
        if csv && keep == 0 {
            writeln!(log.out, "{CSV_HEADER}").map_err(io("write log"))?;
        }
        Ok(log)
    }

    fn wrap(path: &Path, file: File) -> MetricsLog {
        MetricsLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            csv: is_csv(path),
        }
    }

    /// Appends one row (buffered; [`MetricsLog::sync`] puts it on disk).
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn row(&mut self, r: &LogRow) -> Result<()> {
        let written = if self.csv {
            writeln!(
                self.out,
                "{},{},{:?},{:?},{:?}",
                r.step, r.epoch, r.loss, r.accuracy, r.lr
            )
        } else {
            let v = json!({"step": r.step, "epoch": r.epoch, "loss": r.loss,
                           "accuracy": r.accuracy, "lr": r.lr});
            writeln!(self.out, "{v}")
        };
        written.map_err(TrainError::io("write log", self.path.display()))
    }

    /// Flushes the buffer and waits until the rows are on disk: called
    /// before every checkpoint, so the checkpoint never covers a lost row.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn sync(&mut self) -> Result<()> {
        let io = || TrainError::io("write log", self.path.display());
        self.out.flush().map_err(io())?;
        self.out.get_ref().sync_data().map_err(io())
    }
}

fn is_csv(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "csv")
}

/// The step of a log row, `None` for a line that is not one.
fn row_step(line: &str, csv: bool) -> Option<u64> {
    if csv {
        line.split(',').next()?.parse().ok()
    } else {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()?
            .get("step")?
            .as_u64()
    }
}
