//! holdcheck's analyzer: reads the traces the shim wrote, builds the
//! wait-for graph of locks and kernel queues, finds the cycles that can
//! really happen, and reports them.
//!
//! Data flows one way: trace files → [`trace`] → [`model`] → [`cycles`] →
//! [`findings`] → [`report`]. [`order`] tells which facts of two threads
//! could overlap (thread starts and joins), for grading the cycles.

pub mod classes;
pub mod confirm;
pub mod cycles;
pub mod findings;
pub mod inspect;
pub mod model;
pub mod observed;
pub mod order;
pub mod repeat;
pub mod report;
pub mod run;
pub mod shim;
pub mod symbolize;
pub mod trace;

use anyhow::Result;
use std::path::PathBuf;

/// Exit status: no findings.
pub const EXIT_CLEAN: i32 = 0;
/// Exit status: at least one finding.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit status: holdcheck itself failed (bad arguments, unreadable traces,
/// the command could not start).
pub const EXIT_ERROR: i32 = 2;

/// Reads trace directories and analyses them.
pub fn analyse_dirs(dirs: &[PathBuf]) -> Result<report::Report> {
    // Read as it is added: a trace is never held whole.
    let mut model = model::Model::from_dirs(dirs)?;
    Ok(findings::analyse(&mut model))
}
