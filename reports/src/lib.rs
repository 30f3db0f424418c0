//! # SCX convergence reports
//!
//! Results in, pages out. A run's trace, or one or more campaigns, become a
//! report directory: `report.html` (one self-contained file: inline SVG
//! charts drawn with plotters, inline CSS, no network reference),
//! `report.md` and `report.json` with the same figures, and the data behind
//! every chart as CSV beside it.
//!
//! A campaign is a [`CampaignAggregate`]: fed one [`model::RunRecord`] at a
//! time (by `scx fuzz` as runs finish, or by [`read_results_into`] from a
//! results file read line by line), merged across shards, and rendered by
//! [`write_campaign_report`]. Its memory does not grow with the number of
//! runs; percentiles come from HDR histograms (see [`distribution`]).
//!
//! Invariant: the same input gives byte-identical output files: no
//! timestamps, stable ordering, fixed float formatting.

pub mod aggregate;
pub mod charts;
pub mod compare;
pub mod distribution;
pub mod input;
pub mod model;
mod render;
pub mod stats;

pub use aggregate::CampaignAggregate;
pub use input::{Input, ReportError, ResultsReader, read_input, read_results_into, read_trace};
pub use render::{ReportFiles, ReportOptions, Speed, write_campaign_report, write_run_report};
