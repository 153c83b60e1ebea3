//! [`MetricsLog`]: one row per training step, CSV or JSON Lines, that
//! survives a crash: every row a checkpoint covers is on disk before the
//! checkpoint is, and a resumed run first cuts the log back to the
//! checkpoint's step, so its log equals an uninterrupted run's byte for byte.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Result, TrainError};
use crate::parallel::NoiseScale;

/// The CSV header. `step` counts updates done (1 after the first step);
/// `epoch` is 1-based, as the console prints it.
pub const CSV_HEADER: &str = "step,epoch,loss,accuracy,lr";

/// The CSV header of a data-parallel run on more than one rank: the
/// step's gradient noise scale `B_simple` and its two estimates `|G|²` and
/// `tr(Σ)` (see [`NoiseScale`]) follow the columns of [`CSV_HEADER`].
pub const CSV_HEADER_NOISE: &str = "step,epoch,loss,accuracy,lr,noise_scale,grad_sq,grad_trace";

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
    /// Whether the CSV has the noise-scale columns.
    noise: bool,
}

impl MetricsLog {
    /// Creates (or empties) the log at `path` for a fresh run.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn create(path: &Path) -> Result<MetricsLog> {
        MetricsLog::create_with(path, false)
    }

    /// [`MetricsLog::create`], with the noise-scale columns of
    /// [`CSV_HEADER_NOISE`] in a CSV when `noise` is set (JSON Lines rows
    /// carry the fields whenever a row has them).
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn create_with(path: &Path, noise: bool) -> Result<MetricsLog> {
        let file = File::create(path).map_err(TrainError::io("create log", path.display()))?;
        let mut log = MetricsLog::wrap(path, file, noise);
        if log.csv {
            writeln!(log.out, "{}", log.header())
                .map_err(TrainError::io("write log", path.display()))?;
        }
        Ok(log)
    }

    fn header(&self) -> &'static str {
        if self.noise {
            CSV_HEADER_NOISE
        } else {
            CSV_HEADER
        }
    }

    /// Opens the log of a run resumed at `step`: keeps the header and the
    /// rows of steps up to `step`, drops later ones and any torn last line
    /// (written after the checkpoint, or cut by a crash), and appends after
    /// them. A missing log is created.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn resume(path: &Path, step: u64) -> Result<MetricsLog> {
        MetricsLog::resume_with(path, step, false)
    }

    /// [`MetricsLog::resume`] for a run that wants the noise-scale columns
    /// when `noise` is set. A CSV keeps the columns its header has (a run
    /// resumed with another number of ranks leaves the noise-scale cells
    /// empty, or drops them, rather than mix column counts).
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn resume_with(path: &Path, step: u64, noise: bool) -> Result<MetricsLog> {
        if !path.exists() {
            return MetricsLog::create_with(path, noise);
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
        let mut noise = noise;
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break; // torn by a crash
            }
            let body = line.trim_end();
            if csv && !header_seen && keep == 0 && (body == CSV_HEADER || body == CSV_HEADER_NOISE)
            {
                noise = body == CSV_HEADER_NOISE;
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
        let mut log = MetricsLog::wrap(path, file, noise);
        if csv && keep == 0 {
            writeln!(log.out, "{}", log.header()).map_err(io("write log"))?;
        }
        Ok(log)
    }

    fn wrap(path: &Path, file: File, noise: bool) -> MetricsLog {
        MetricsLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            csv: is_csv(path),
            noise,
        }
    }

    /// Appends one row (buffered; [`MetricsLog::sync`] puts it on disk).
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn row(&mut self, r: &LogRow) -> Result<()> {
        self.row_with(r, None)
    }

    /// Appends one row with the step's noise scale (a data-parallel step;
    /// see [`NoiseScale`]): in the extra columns of a CSV that has them
    /// (empty cells for `None`), as `noise_scale`, `grad_sq` and
    /// `grad_trace` fields in JSON Lines.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the path.
    pub fn row_with(&mut self, r: &LogRow, noise: Option<&NoiseScale>) -> Result<()> {
        let written = if self.csv {
            write!(
                self.out,
                "{},{},{:?},{:?},{:?}",
                r.step, r.epoch, r.loss, r.accuracy, r.lr
            )
            .and_then(|()| match (self.noise, noise) {
                (false, _) => writeln!(self.out),
                (true, None) => writeln!(self.out, ",,,"),
                (true, Some(n)) => writeln!(
                    self.out,
                    ",{:?},{:?},{:?}",
                    n.b_simple(),
                    n.grad_sq,
                    n.trace
                ),
            })
        } else {
            let mut v = json!({"step": r.step, "epoch": r.epoch, "loss": r.loss,
                               "accuracy": r.accuracy, "lr": r.lr});
            if let (Some(n), Some(map)) = (noise, v.as_object_mut()) {
                map.insert("noise_scale".into(), finite_or_null(n.b_simple()));
                map.insert("grad_sq".into(), finite_or_null(n.grad_sq));
                map.insert("grad_trace".into(), finite_or_null(n.trace));
            }
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

/// A JSON number, or null for NaN and infinities (which JSON cannot hold).
fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
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
