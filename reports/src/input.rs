//! Reading report inputs: a run's trace (one JSON object) or a fuzz
//! results file (JSON lines). A bad line is a located error (file:line).

use crate::model::{RunRecord, Trace};
use std::path::{Path, PathBuf};

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of a results file is not a result record.
    #[error("{path}:{line}: not a result record: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parser's reason.
        reason: String,
    },
    /// The file holds no record.
    #[error("{path}: no result records in the file")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A chart could not be drawn.
    #[error("drawing the chart `{chart}`: {reason}")]
    Chart {
        /// Which chart.
        chart: String,
        /// Why.
        reason: String,
    },
}

/// One report input.
#[derive(Clone, Debug)]
pub enum Input {
    /// A single run's trace.
    Trace(Box<Trace>),
    /// A campaign's records, sorted by seed.
    Results(Vec<RunRecord>),
}

fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Io { path: path.to_path_buf(), source })
}

/// Reads a JSON-lines results file; records come back sorted by (scenario, seed).
pub fn read_results(path: &Path) -> Result<Vec<RunRecord>, ReportError> {
    parse_results(path, &read(path)?)
}

fn parse_results(path: &Path, text: &str) -> Result<Vec<RunRecord>, ReportError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str::<RunRecord>(line).map_err(|error| ReportError::BadLine {
            path: path.to_path_buf(),
            line: index + 1,
            reason: error.to_string(),
        })?;
        records.push(record);
    }
    if records.is_empty() {
        return Err(ReportError::Empty { path: path.to_path_buf() });
    }
    records.sort_by(|a, b| (&a.scenario_path, a.seed).cmp(&(&b.scenario_path, b.seed)));
    Ok(records)
}

/// Reads a trace file written by `scx run --trace`.
pub fn read_trace(path: &Path) -> Result<Trace, ReportError> {
    let text = read(path)?;
    serde_json::from_str(&text).map_err(|error| ReportError::BadLine {
        path: path.to_path_buf(),
        line: error.line(),
        reason: error.to_string(),
    })
}

/// Reads either kind of input, telling them apart by content.
pub fn read_input(path: &Path) -> Result<Input, ReportError> {
    let text = read(path)?;
    if let Ok(trace) = serde_json::from_str::<Trace>(&text) {
        return Ok(Input::Trace(Box::new(trace)));
    }
    parse_results(path, &text).map(Input::Results)
}
