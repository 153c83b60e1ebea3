//! The history file: `gradlab-history` version 1, JSON Lines.
//!
//! One JSON object per line, each with a `type`: the `run` line first, then
//! `step`, `check`, `probe`, `shuffle_control` and `depth_control` lines in
//! the order they happened. docs/diagnostics.md ("The history file") gives every field and
//! docs/gradlab-history.schema.json the JSON Schema of a line.
//!
//! [`HistoryWriter`] appends one line at a time and flushes it, so a run that
//! is killed keeps every complete line; [`read_history`] reads a file back,
//! ignoring a torn last line with a warning and naming the line and the
//! field of anything else that is wrong. Non-finite numbers are written as
//! `null`; a required number read as `null` is NaN, an optional one is
//! absent. Unknown fields and record types are ignored.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::activations::Activation;
use crate::error::{DiagError, Result};
use crate::history::{CheckRecord, DepthControl, History, RunInfo};
use crate::probe::ProbeResult;
use crate::recorder::{check_record, LayerStat, PositionStat, StepRecord};

/// The `format` of the run line.
pub const FORMAT: &str = "gradlab-history";
/// The version this crate writes and the newest it reads.
pub const VERSION: u64 = 1;

#[derive(Serialize)]
struct RunLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    format: &'static str,
    version: u64,
    num_classes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    class_counts: Option<&'a [usize]>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    positions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    activation: Option<Activation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
}

#[derive(Serialize)]
struct LayerLine<'a> {
    name: &'a str,
    index: usize,
    grad_rms: f64,
    weight_rms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act_grad_rms: Option<f64>,
}

#[derive(Serialize)]
struct PositionLine<'a> {
    name: &'a str,
    act_grad_rms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    diversity: Option<f64>,
}

#[derive(Serialize)]
struct StepLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    step: usize,
    loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    grad_norm: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cos_previous: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    saturated_max: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    non_finite: bool,
    layers: Vec<LayerLine<'a>>,
    positions: Vec<PositionLine<'a>>,
}

#[derive(Serialize)]
struct CheckLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    check: &'a CheckRecord,
}

#[derive(Serialize)]
struct ProbeLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    probe: &'a ProbeResult,
}

#[derive(Serialize)]
struct ShuffleLine {
    #[serde(rename = "type")]
    kind: &'static str,
    step: usize,
    loss: f64,
}

#[derive(Serialize)]
struct DepthLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    model: &'a str,
    step: usize,
    loss: f64,
}

/// Writes a history file line by line, flushing each line.
pub struct HistoryWriter {
    out: BufWriter<File>,
    path: String,
}

impl HistoryWriter {
    /// Creates (or truncates) the file at `path` and writes the run line of
    /// `history`, then everything it already holds (steps, checks, probe,
    /// shuffle control).
    ///
    /// # Errors
    /// [`DiagError::Io`]; [`DiagError::InvalidValue`] when `num_classes < 2`.
    pub fn create(path: impl AsRef<Path>, history: &History) -> Result<Self> {
        if history.num_classes < 2 {
            return Err(DiagError::InvalidValue {
                what: "num_classes (at least 2)",
                value: history.num_classes as f64,
            });
        }
        let path_ref = path.as_ref();
        let file = File::create(path_ref).map_err(|source| DiagError::Io {
            what: "cannot create history file",
            path: path_ref.display().to_string(),
            source,
        })?;
        let mut w = HistoryWriter {
            out: BufWriter::new(file),
            path: path_ref.display().to_string(),
        };
        let run = &history.run;
        w.line(&RunLine {
            kind: "run",
            format: FORMAT,
            version: VERSION,
            num_classes: history.num_classes,
            class_counts: run.class_counts.as_deref(),
            positions: &run.positions,
            activation: run.activation,
            source: run.source.as_deref(),
            model: run.model.as_deref(),
            data: run.data.as_deref(),
            batch_size: run.batch_size,
        })?;
        for s in &history.steps {
            w.step(s)?;
        }
        for c in &history.checks {
            w.check(c)?;
        }
        if let Some(p) = &history.probe {
            w.probe(p)?;
        }
        for &(step, loss) in history.shuffle_control.iter().flatten() {
            w.shuffle_control(step, loss)?;
        }
        if let Some(d) = &history.depth_control {
            for &(step, loss) in &d.losses {
                w.depth_control(&d.model, step, loss)?;
            }
        }
        Ok(w)
    }

    fn line(&mut self, value: &impl Serialize) -> Result<()> {
        let mut text = serde_json::to_vec(value).map_err(|e| DiagError::Io {
            what: "cannot encode a history line for",
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        text.push(b'\n');
        self.out
            .write_all(&text)
            .and_then(|()| self.out.flush())
            .map_err(|source| DiagError::Io {
                what: "cannot write history file",
                path: self.path.clone(),
                source,
            })
    }

    /// Appends a step line.
    ///
    /// # Errors
    /// [`DiagError::Io`].
    pub fn step(&mut self, s: &StepRecord) -> Result<()> {
        self.line(&StepLine {
            kind: "step",
            step: s.step,
            loss: s.loss,
            accuracy: s.accuracy,
            grad_norm: s.grad_norm,
            cos_previous: s.cos_previous,
            dead_max: s.dead_max,
            saturated_max: s.saturated_max,
            non_finite: s.non_finite,
            layers: s
                .layers
                .iter()
                .map(|l| LayerLine {
                    name: &l.name,
                    index: l.index,
                    grad_rms: l.grad_rms,
                    weight_rms: l.weight_rms,
                    update_ratio: l.update_ratio,
                    act_grad_rms: l.act_grad_rms,
                })
                .collect(),
            positions: s
                .positions
                .iter()
                .map(|p| PositionLine {
                    name: &p.name,
                    act_grad_rms: p.act_grad_rms,
                    diversity: p.diversity,
                })
                .collect(),
        })
    }

    /// Appends a held-out check line.
    ///
    /// # Errors
    /// [`DiagError::Io`].
    pub fn check(&mut self, check: &CheckRecord) -> Result<()> {
        self.line(&CheckLine {
            kind: "check",
            check,
        })
    }

    /// Appends the data probe's line.
    ///
    /// # Errors
    /// [`DiagError::Io`].
    pub fn probe(&mut self, probe: &ProbeResult) -> Result<()> {
        self.line(&ProbeLine {
            kind: "probe",
            probe,
        })
    }

    /// Appends one loss of the label-shuffle control.
    ///
    /// # Errors
    /// [`DiagError::Io`].
    pub fn shuffle_control(&mut self, step: usize, loss: f64) -> Result<()> {
        self.line(&ShuffleLine {
            kind: "shuffle_control",
            step,
            loss,
        })
    }
}

impl HistoryWriter {
    /// Appends one loss of the depth control's reference network `model`.
    ///
    /// # Errors
    /// [`DiagError::Io`].
    pub fn depth_control(&mut self, model: &str, step: usize, loss: f64) -> Result<()> {
        self.line(&DepthLine {
            kind: "depth_control",
            model,
            step,
            loss,
        })
    }
}

/// Writes a whole history to `path` at once.
///
/// # Errors
/// As [`HistoryWriter::create`].
pub fn write_history(path: impl AsRef<Path>, history: &History) -> Result<()> {
    HistoryWriter::create(path, history).map(|_| ())
}

/// A history read back, with what the reader had to skip.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRead {
    /// The history.
    pub history: History,
    /// Things skipped, one sentence each (a torn last line).
    pub warnings: Vec<String>,
}

/// Reads the history file at `path`.
///
/// # Errors
/// [`DiagError::Io`] when it cannot be read; [`DiagError::HistoryFormat`]
/// naming the line and field of anything that is not a valid
/// `gradlab-history` version 1 file (see [`parse_history`]).
pub fn read_history(path: impl AsRef<Path>) -> Result<HistoryRead> {
    let path = path.as_ref();
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|source| DiagError::Io {
            what: "cannot read history file",
            path: path.display().to_string(),
            source,
        })?;
    parse_history(&bytes, &path.display().to_string())
}

/// Parses the bytes of a history file; `name` names it in errors.
///
/// A last line without its newline that is not valid JSON is a line torn by
/// a killed writer: it is skipped with a warning. Blank lines are skipped.
///
/// # Errors
/// [`DiagError::HistoryFormat`] with the line and field for: an empty file;
/// text that is not UTF-8 or not a JSON object; a first line that is not a
/// `run` line of format `gradlab-history`, or has a newer `version`;
/// `num_classes` below 2; a missing required field; a value of the wrong
/// type, negative where it must not be, or out of range; steps whose
/// layers or positions differ from the first step's, or that do not
/// increase; no step at all.
pub fn parse_history(bytes: &[u8], name: &str) -> Result<HistoryRead> {
    let err = |line: usize, field: &str, reason: String| DiagError::HistoryFormat {
        path: name.to_string(),
        line,
        field: field.to_string(),
        reason,
    };
    let mut warnings = Vec::new();
    let mut history: Option<History> = None;
    let mut shuffle: Vec<(usize, f64)> = Vec::new();
    let mut depth: Option<DepthControl> = None;
    let mut last_line = 0;
    let segments: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let count = segments.len();
    for (i, raw) in segments.into_iter().enumerate() {
        let no = i + 1;
        // The segment after the last newline is empty for a complete file.
        let terminated = i + 1 < count;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        last_line = no;
        let parsed = std::str::from_utf8(raw)
            .map_err(|_| "is not UTF-8 text (is this a binary file?)".to_string())
            .and_then(|text| {
                serde_json::from_str::<Value>(text).map_err(|e| format!("is not valid JSON: {e}"))
            });
        let value = match parsed {
            Ok(v) => v,
            Err(reason) if !terminated && history.is_some() => {
                warnings.push(format!(
                    "{name} line {no}: ignored a torn last line ({} bytes without a newline; the writer was probably killed)",
                    raw.len()
                ));
                let _ = reason;
                break;
            }
            Err(reason) => return Err(err(no, "", format!("the line {reason}"))),
        };
        let Value::Object(obj) = value else {
            return Err(err(no, "", "the line is not a JSON object".into()));
        };
        let line = Line {
            obj: &obj,
            no,
            name,
            prefix: String::new(),
        };
        let kind = line.req_str("type")?;
        match (&mut history, kind) {
            (None, "run") => history = Some(line.run()?),
            (None, other) => {
                return Err(err(
                    no,
                    "type",
                    format!(
                        "the first line must be the run line (\"type\":\"run\"), found \"{other}\""
                    ),
                ))
            }
            (Some(_), "run") => {
                return Err(err(
                    no,
                    "type",
                    "a second run line: one file holds one run".into(),
                ))
            }
            (Some(h), "step") => {
                let record = line.step()?;
                check_record(&record, h.steps.last())
                    .map_err(|(field, reason)| err(no, &field, reason))?;
                h.steps.push(record);
            }
            (Some(h), "check") => h.checks.push(line.check()?),
            (Some(h), "probe") => h.probe = Some(line.probe()?),
            (Some(_), "shuffle_control") => {
                shuffle.push((line.req_usize("step")?, line.req_f64("loss")?))
            }
            (Some(_), "depth_control") => {
                let model = line.req_str("model")?;
                let pair = (line.req_usize("step")?, line.req_f64("loss")?);
                match &mut depth {
                    Some(d) if d.model != model => {
                        return Err(err(
                            no,
                            "model",
                            format!(
                                "depth_control lines name two references, \"{}\" and \"{model}\": one file holds one control",
                                d.model
                            ),
                        ))
                    }
                    Some(d) => d.losses.push(pair),
                    None => {
                        depth = Some(DepthControl {
                            model: model.to_string(),
                            losses: vec![pair],
                        })
                    }
                }
            }
            (Some(_), _) => {} // unknown record types are ignored
        }
    }
    let Some(mut history) = history else {
        return Err(err(
            1,
            "",
            "the file is empty: expected the run line {\"type\":\"run\",\"format\":\"gradlab-history\",...}".into(),
        ));
    };
    if history.steps.is_empty() {
        return Err(err(
            last_line + 1,
            "",
            "no step line: a history needs at least one {\"type\":\"step\",...} line".into(),
        ));
    }
    if !shuffle.is_empty() {
        history.shuffle_control = Some(shuffle);
    }
    history.depth_control = depth;
    Ok(HistoryRead { history, warnings })
}

/// One JSON object of a line (or nested in it, with a field prefix).
struct Line<'a> {
    obj: &'a Map<String, Value>,
    no: usize,
    name: &'a str,
    prefix: String,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Line<'a> {
    fn field(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn err(&self, key: &str, reason: String) -> DiagError {
        DiagError::HistoryFormat {
            path: self.name.to_string(),
            line: self.no,
            field: self.field(key),
            reason,
        }
    }

    fn missing(&self, key: &str) -> DiagError {
        self.err(key, "required field is missing".into())
    }

    fn nested(&self, obj: &'a Map<String, Value>, prefix: String) -> Line<'a> {
        Line {
            obj,
            no: self.no,
            name: self.name,
            prefix,
        }
    }

    /// A number; `null` is NaN (a non-finite value).
    fn req_f64(&self, key: &str) -> Result<f64> {
        match self.obj.get(key) {
            None => Err(self.missing(key)),
            Some(Value::Null) => Ok(f64::NAN),
            Some(v) => self.number(key, v),
        }
    }

    /// A number, absent when missing or `null`.
    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.number(key, v).map(Some),
        }
    }

    fn number(&self, key: &str, v: &Value) -> Result<f64> {
        v.as_f64().ok_or_else(|| {
            self.err(
                key,
                format!("expected a number (or null), found {} {v}", kind_of(v)),
            )
        })
    }

    fn non_negative(&self, key: &str, v: f64) -> Result<f64> {
        if v < 0.0 {
            return Err(self.err(key, format!("{v} is negative; it must be >= 0")));
        }
        Ok(v)
    }

    fn req_nonneg(&self, key: &str) -> Result<f64> {
        let v = self.req_f64(key)?;
        self.non_negative(key, v)
    }

    fn opt_nonneg(&self, key: &str) -> Result<Option<f64>> {
        self.opt_f64(key)?
            .map(|v| self.non_negative(key, v))
            .transpose()
    }

    fn opt_unit(&self, key: &str) -> Result<Option<f64>> {
        match self.opt_f64(key)? {
            Some(v) if !(0.0..=1.0).contains(&v) => {
                Err(self.err(key, format!("{v} is not in [0, 1]")))
            }
            v => Ok(v),
        }
    }

    fn usize_of(&self, key: &str, v: &Value) -> Result<usize> {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                self.err(
                    key,
                    format!("expected a non-negative integer, found {} {v}", kind_of(v)),
                )
            })
    }

    fn req_usize(&self, key: &str) -> Result<usize> {
        match self.obj.get(key) {
            None => Err(self.missing(key)),
            Some(v) => self.usize_of(key, v),
        }
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.usize_of(key, v).map(Some),
        }
    }

    fn req_str(&self, key: &str) -> Result<&'a str> {
        match self.obj.get(key) {
            None => Err(self.missing(key)),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.err(key, format!("expected a string, found {} {v}", kind_of(v)))),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(key, format!("expected a string, found {} {v}", kind_of(v)))),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(
                key,
                format!("expected true or false, found {} {v}", kind_of(v)),
            )),
        }
    }

    fn array(&self, key: &str, required: bool) -> Result<&'a [Value]> {
        match self.obj.get(key) {
            None | Some(Value::Null) if !required => Ok(&[]),
            None => Err(self.missing(key)),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.err(key, format!("expected an array, found {} {v}", kind_of(v)))),
        }
    }

    fn object_at(&self, key: &str, i: usize, v: &'a Value) -> Result<Line<'a>> {
        match v {
            Value::Object(o) => Ok(self.nested(o, format!("{}{key}[{i}].", self.prefix))),
            other => Err(self.err(
                &format!("{key}[{i}]"),
                format!("expected an object, found {} {other}", kind_of(other)),
            )),
        }
    }

    fn run(&self) -> Result<History> {
        let format = self.req_str("format")?;
        if format != FORMAT {
            return Err(self.err(
                "format",
                format!("\"{format}\" is not a gradlab history (expected \"{FORMAT}\")"),
            ));
        }
        let version = self.req_usize("version")? as u64;
        if version > VERSION {
            return Err(self.err(
                "version",
                format!(
                    "version {version} is newer than this reader, which reads version {VERSION}: update gradlab"
                ),
            ));
        }
        if version == 0 {
            return Err(self.err(
                "version",
                "version 0 does not exist (the first is 1)".into(),
            ));
        }
        let k = self.req_usize("num_classes")?;
        if k < 2 {
            return Err(self.err(
                "num_classes",
                format!("{k} classes: a classification has at least 2"),
            ));
        }
        let mut history = History::new(k);
        let counts = match self.obj.get("class_counts") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let counts = a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.usize_of(&format!("class_counts[{i}]"), v))
                    .collect::<Result<Vec<_>>>()?;
                if counts.len() != k {
                    return Err(self.err(
                        "class_counts",
                        format!("{} counts for {k} classes", counts.len()),
                    ));
                }
                Some(counts)
            }
            Some(v) => {
                return Err(self.err(
                    "class_counts",
                    format!("expected an array of counts, found {} {v}", kind_of(v)),
                ))
            }
        };
        let positions = self
            .array("positions", false)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(self.err(
                    &format!("positions[{i}]"),
                    format!("expected a tap name, found {} {other}", kind_of(other)),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let activation = self
            .opt_str("activation")?
            .map(|a| {
                a.parse::<Activation>()
                    .map_err(|e| self.err("activation", e.to_string()))
            })
            .transpose()?;
        let run = RunInfo {
            class_counts: counts,
            positions,
            activation,
            source: self.opt_str("source")?,
            model: self.opt_str("model")?,
            data: self.opt_str("data")?,
            batch_size: self.opt_usize("batch_size")?,
        };
        if let Some(counts) = &run.class_counts {
            history.set_class_prior(counts);
        }
        history.run = run;
        Ok(history)
    }

    fn step(&self) -> Result<StepRecord> {
        let step = self.req_usize("step")?;
        let loss = self.req_f64("loss")?;
        let grad_norm = self.req_nonneg("grad_norm")?;
        let mut layers = Vec::new();
        for (i, v) in self.array("layers", true)?.iter().enumerate() {
            let l = self.object_at("layers", i, v)?;
            layers.push(LayerStat {
                name: l.req_str("name")?.to_string(),
                index: l.req_usize("index")?,
                grad_rms: l.req_nonneg("grad_rms")?,
                act_grad_rms: l.opt_nonneg("act_grad_rms")?,
                weight_rms: l.req_nonneg("weight_rms")?,
                update_ratio: l.opt_nonneg("update_ratio")?,
            });
        }
        let mut positions = Vec::new();
        for (i, v) in self.array("positions", true)?.iter().enumerate() {
            let p = self.object_at("positions", i, v)?;
            positions.push(PositionStat {
                name: p.req_str("name")?.to_string(),
                act_grad_rms: p.req_nonneg("act_grad_rms")?,
                diversity: p.opt_nonneg("diversity")?,
            });
        }
        let cos_previous = match self.opt_f64("cos_previous")? {
            Some(c) if !(-1.0..=1.0).contains(&c) => {
                return Err(self.err("cos_previous", format!("{c} is not in [-1, 1]")))
            }
            c => c,
        };
        let non_finite = self.opt_bool("non_finite")?.unwrap_or(false)
            || !loss.is_finite()
            || !grad_norm.is_finite();
        Ok(StepRecord {
            step,
            loss,
            accuracy: self.opt_unit("accuracy")?,
            layers,
            positions,
            grad_norm,
            cos_previous,
            dead_max: self.opt_unit("dead_max")?,
            saturated_max: self.opt_unit("saturated_max")?,
            non_finite,
        })
    }

    fn check(&self) -> Result<CheckRecord> {
        Ok(CheckRecord {
            step: self.req_usize("step")?,
            train_loss: self.req_f64("train_loss")?,
            train_accuracy: self.req_f64("train_accuracy")?,
            val_loss: self.opt_f64("val_loss")?,
            val_accuracy: self.opt_unit("val_accuracy")?,
            val_examples: self.req_usize("val_examples")?,
            snr: self.opt_f64("snr")?,
            train_val_cos: match self.opt_f64("train_val_cos")? {
                Some(c) if !(-1.0..=1.0).contains(&c) => {
                    return Err(self.err("train_val_cos", format!("{c} is not in [-1, 1]")))
                }
                c => c,
            },
        })
    }

    fn probe(&self) -> Result<ProbeResult> {
        let accuracy = self.req_f64("accuracy")?;
        let unit = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(self.err(key, format!("{v} is not in [0, 1]")))
            }
        };
        let accuracy = unit("accuracy", accuracy)?;
        let chance = unit("chance", self.req_f64("chance")?)?;
        let p_value = unit("p_value", self.req_f64("p_value")?)?;
        Ok(ProbeResult {
            linear_accuracy: self.opt_unit("linear_accuracy")?.unwrap_or(accuracy),
            knn_accuracy: self.opt_unit("knn_accuracy")?.unwrap_or(accuracy),
            accuracy,
            chance,
            n_val: self.opt_usize("n_val")?.unwrap_or(0),
            p_value,
            beats_chance: self.opt_bool("beats_chance")?.unwrap_or(p_value < 1e-3),
        })
    }
}
