//! swt-bench: the tools that measure swt, kept out of the product (`swt`) so that none of
//! them is in a validated binary's scope. The library holds the trace benchmark
//! ([`trace`]); the binary `swt-bench` wires its commands (`trace`, `simulate`) to it.

pub mod trace;

use std::time::Duration;

/// The tools' HTTP client: keep-alive HTTP/1.1 as a scanner or a manager's browser holds
/// it, every status handed back to the caller (the tools judge statuses themselves), a
/// request given up after a minute.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The same, following no redirect: a page's answer is judged as the browser gets it.
pub fn http_agent_no_redirects() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}
