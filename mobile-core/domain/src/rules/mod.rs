//! Scan rules, shared by the scanner (offline, instantly) and the server (at projection).
//!
//! Owns the verdict on one scan: accept, warn or reject, with a stable [`Reason`] code and
//! a short message a picker understands. Pure functions over the parse result, the task's
//! state ([`TaskState`]: kind, expected lines and units, what is already counted) and the
//! site's [`ReferenceData`](crate::model::ReferenceData). No I/O and no clock: "today" is
//! an argument.
//!
//! ```
//! use swt_domain::doc::{Expected, ExpectedLine, Header, TaskKind, TaskStatus};
//! use swt_domain::gs1::{parse, Date, ParseOptions};
//! use swt_domain::model::ReferenceData;
//! use swt_domain::rules::{Reason, TaskState, Verdict};
//! let header = Header { kind: TaskKind::Picking, site: "s1".into(),
//!                       refs: Default::default(), status: TaskStatus::Open };
//! let expected = Expected { lines: vec![ExpectedLine { gtin: "09506000134352".parse().unwrap(),
//!                           quantity: 1, lot: None }], units: vec![] };
//! let mut task = TaskState::new(&header, &expected);
//! let raw = b"]d2010950600013435221SER1";
//! let parsed = parse(raw, &ParseOptions::default());
//! let today = Date::new(2026, 11, 24).unwrap();
//! let out = task.evaluate(raw, &parsed, &ReferenceData::default(), today);
//! assert_eq!(out.verdict, Verdict::Warn); // the product master is empty: unknown_product
//! task.apply(&"d.1".parse().unwrap(), &out);
//! let again = task.evaluate(raw, &parsed, &ReferenceData::default(), today);
//! assert_eq!(again.reason, Reason::Duplicate);
//! ```

mod calendar;
mod judge;
mod outcome;
mod reason;
mod task_state;
#[cfg(test)]
mod tests;

pub use calendar::{date_from_unix_ms, days_from_civil};
pub use outcome::{Effect, Judgement, Outcome, identifiers};
pub use reason::{Finding, Reason, Verdict};
pub use task_state::{Progress, TaskState};
