//! Prometheus metrics: request counts and latencies by route, database pool state.
//! Each server instance owns its registry (no global), so tests can run many servers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::atomic::AtomicU64;

use crate::db::PoolState;
use crate::sync::SyncTimings;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    pool_size: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    sync_phase: Family<PhaseLabels, Counter<f64, AtomicU64>>,
    sync_documents: Counter,
    sync_document_loads: Counter,
    sync_snapshots: Counter,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s: sync rounds are milliseconds, big imports seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("swt");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        let pool_max = Gauge::default();
        let sync_phase = Family::<PhaseLabels, Counter<f64, AtomicU64>>::default();
        let sync_documents = Counter::default();
        let sync_document_loads = Counter::default();
        let sync_snapshots = Counter::default();
        registry.register(
            "sync_document_loads",
            "Whole task documents read and parsed for a sync exchange (not in the cache)",
            sync_document_loads.clone(),
        );
        registry.register(
            "sync_snapshots",
            "Whole task documents saved by a sync exchange (compacting appended changes)",
            sync_snapshots.clone(),
        );
        registry.register(
            "sync_phase_seconds",
            "Server time of document sync exchanges, by phase (lock_wait, load, merge, write)",
            sync_phase.clone(),
        );
        registry.register(
            "sync_documents",
            "Document sync exchanges answered",
            sync_documents.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method and route",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Open database connections not in use",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Configured maximum of database connections",
            pool_max.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            pool_size,
            pool_idle,
            pool_max,
            sync_phase,
            sync_documents,
            sync_document_loads,
            sync_snapshots,
        }
    }

    /// Records where one answered document sync exchange spent its time.
    pub fn observe_sync(&self, t: &SyncTimings) {
        self.sync_documents.inc();
        self.sync_document_loads.inc_by(u64::from(t.document_loads));
        self.sync_snapshots.inc_by(u64::from(t.snapshots));
        for (phase, d) in [
            ("lock_wait", t.lock_wait),
            ("load", t.load),
            ("merge", t.merge),
            ("write", t.write),
        ] {
            self.sync_phase
                .get_or_create(&PhaseLabels { phase })
                .inc_by(d.as_secs_f64());
        }
    }

    /// Records one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// The metrics in Prometheus text format, with the pool figures read just now, and
    /// the process's CPU time (`process_cpu_seconds_total`, the Prometheus convention),
    /// so a benchmark can tell what the server spent on its part of a run.
    pub fn render(&self, pool: PoolState) -> String {
        self.pool_size.set(i64::from(pool.size));
        self.pool_idle.set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        if let Some(cpu) = process_cpu_seconds() {
            // Before the registry's closing `# EOF`.
            let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_owned();
            out = format!(
                "{body}# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                 # TYPE process_cpu_seconds_total counter\n\
                 process_cpu_seconds_total {cpu}\n# EOF\n"
            );
        }
        out
    }
}

/// User plus system CPU time of this process so far, in seconds.
#[cfg(unix)]
#[allow(unsafe_code)]
fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage through the valid pointer it is given and
    // returns 0 when it did.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: written by the successful call above (and zeroed before in any case).
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

#[cfg(not(unix))]
fn process_cpu_seconds() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sync_phases() {
        let m = Metrics::new();
        let t = SyncTimings {
            lock_wait: std::time::Duration::from_millis(1),
            load: std::time::Duration::from_millis(2),
            merge: std::time::Duration::from_millis(250),
            write: std::time::Duration::from_millis(4),
            document_loads: 1,
            snapshots: 0,
        };
        m.observe_sync(&t);
        m.observe_sync(&t);
        let text = m.render(PoolState {
            size: 1,
            idle: 1,
            max: 1,
        });
        assert!(text.contains("swt_sync_documents_total 2"), "{text}");
        assert!(text.contains("swt_sync_document_loads_total 2"), "{text}");
        assert!(text.contains("swt_sync_snapshots_total 0"), "{text}");
        let cpu = text
            .lines()
            .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(cpu.is_some_and(|c| c > 0.0), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains(r#"swt_sync_phase_seconds_total{phase="merge"} 0.5"#),
            "{text}"
        );
    }

    #[test]
    fn renders_requests_and_pool() {
        let m = Metrics::new();
        m.observe_request("GET", "/healthz", 200, 0.001);
        m.observe_request("GET", "/healthz", 200, 0.002);
        let text = m.render(PoolState {
            size: 3,
            idle: 2,
            max: 8,
        });
        assert!(
            text.contains(
                r#"swt_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("swt_db_pool_idle_connections 2"), "{text}");
        assert!(
            text.contains(
                "swt_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 2"
            ),
            "{text}"
        );
    }
}
