//! `--metrics ADDR`: the maps as Prometheus metrics. A listener bound
//! before the program loads, then a thread of its own (hyper's HTTP/1.1 on
//! a one-thread tokio runtime) that answers `GET /metrics` by reading the
//! maps (at scrape time, never in the probes' path) and writing them in the
//! Prometheus text format (0.0.4) or OpenMetrics, as the scraper's `Accept`
//! asks. rtrace's event loop never waits for a scrape: the server owns
//! duplicated map fds and maps `.bss` itself.
//!
//! Map → metric family (docs/reference.md, "Metrics"):
//! - `count()`, unsigned `sum()` → counter (`rtrace_NAME_total`); a gauge
//!   when the program can take values away (`delete()`, `clear()`,
//!   `zero()` on the map) or the sum is of signed values;
//! - `hist()`, `lhist()` → histogram (`le` the largest integer of each
//!   bucket; `_sum` from the totals the kernel keeps per bucket);
//! - `avg()`, `stats()` → a histogram of one bucket (`_count`, `_sum`) and
//!   a gauge `rtrace_NAME_avg`; `min()`, `max()`, integer values → gauge;
//! - strings, stacks, tuples, `tseries()` values and stack keys: skipped,
//!   with one warning when the server starts; maps named `@_...`: skipped.

use crate::contract::Counters;
use crate::diagnostic::Source;
use crate::output::text::key_text;
use crate::output::value::{MapValue as OutValue, Value};
use crate::sema::manifest::{MapInfo, MapValue};
use crate::sema::Checked;
use crate::types::Type;
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where `--metrics` listens when given no address: Prometheus's port for
/// this kind of exporter, on loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// Keys exported per map unless `RTRACE_METRICS_MAX_SERIES` says otherwise.
pub const DEFAULT_MAX_SERIES: u32 = 2000;

/// Scrapes read maps at the same time at most: a burst of scrapers waits
/// its turn instead of taking every core from the traced system.
const CONCURRENT_SCRAPES: usize = 2;

/// A connection that has not sent its request headers by then is closed.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics: `{0}` is not an address: use HOST:PORT, e.g. 127.0.0.1:9464 (or a port alone, on 127.0.0.1)")]
    Address(String),
    #[error("--metrics: cannot listen on {0}: {1}")]
    Listen(String, String),
}

/// `9464`, `:9464` → loopback; `HOST:PORT` as given.
pub fn address(text: &str) -> Result<std::net::SocketAddr, MetricsError> {
    use std::net::ToSocketAddrs;
    let text = text.trim();
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| MetricsError::Address(text.to_string()))
}

/// A bound socket: scrapes that come before the maps exist wait in its
/// queue until `serve` starts answering them.
pub struct Listener {
    socket: std::net::TcpListener,
}

impl Listener {
    pub fn bind(addr: &str) -> Result<Listener, MetricsError> {
        let at = address(addr)?;
        let failed = |e: std::io::Error| MetricsError::Listen(at.to_string(), crate::output::error_reason(&e));
        let socket = std::net::TcpListener::bind(at).map_err(failed)?;
        socket.set_nonblocking(true).map_err(failed)?;
        Ok(Listener { socket })
    }

    /// The address it listens on (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.socket.local_addr().ok()
    }

    /// Starts answering with the maps of the loaded program, on a thread
    /// of its own: an event loop of its own (tokio, one thread) for the
    /// connections, and the scrapes on tokio's blocking threads.
    pub fn serve(self, source: &Source, checked: &Checked, maps: Maps, max_series: u32) -> Exporter {
        let families = plan(source, checked, max_series);
        for warning in &families.warnings {
            crate::output::sink::to_stderr(warning);
        }
        let shared = Arc::new(Shared {
            plan: families,
            maps: maps.user,
            bss: maps.bss,
            attached: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = shared.clone();
        let socket = self.socket;
        let thread = std::thread::Builder::new()
            .name("rtrace-metrics".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .max_blocking_threads(CONCURRENT_SCRAPES)
                    .build();
                match runtime {
                    Ok(rt) => {
                        rt.block_on(accept(socket, server, stopped));
                        // Connections still open are dropped; a scrape that
                        // is reading maps is let finish.
                        rt.shutdown_timeout(std::time::Duration::from_secs(1));
                    }
                    Err(e) => crate::output::sink::to_stderr(&format!("error: --metrics: cannot start: {}", e)),
                }
            })
            .ok();
        Exporter { shared, stop: Some(stop), thread }
    }
}

/// The maps a scrape reads: the user maps by `MapId`, and `.bss`.
pub struct Maps {
    pub user: Vec<Option<MapHandle>>,
    pub bss: Option<MapHandle>,
}

/// The running server; dropping it stops it and releases the port.
pub struct Exporter {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    /// The probes are attached (`rtrace_runtime_probes_attached`).
    pub fn set_attached(&self, probes: usize) {
        self.shared.attached.store(probes as u64, Ordering::Relaxed);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Shared {
    plan: Plan,
    maps: Vec<Option<MapHandle>>,
    bss: Option<MapHandle>,
    attached: AtomicU64,
    scrapes: AtomicU64,
}

type Body = http_body_util::Full<hyper::body::Bytes>;

/// Accepts connections until `stopped`; each is served by hyper's HTTP/1.1
/// (keep-alive, malformed requests answered 400, a header timeout).
async fn accept(socket: std::net::TcpListener, shared: Arc<Shared>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(socket) else { return };
    let scrapes = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_SCRAPES));
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of fds, a connection reset before accept: try again.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let (shared, scrapes) = (shared.clone(), scrapes.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (shared, scrapes) = (shared.clone(), scrapes.clone());
                async move { Ok::<_, std::convert::Infallible>(respond(request, shared, scrapes).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn plain(code: u16, text: &'static str) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Body::from(text));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/plain"));
    r
}

/// `GET /metrics` (or `HEAD`); anything else a 4xx.
async fn respond(
    request: hyper::Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
    scrapes: Arc<tokio::sync::Semaphore>,
) -> hyper::Response<Body> {
    use hyper::Method;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = plain(405, "only GET /metrics is served\n");
        r.headers_mut().insert("allow", hyper::header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if request.uri().path() != "/metrics" {
        return plain(404, "rtrace serves /metrics only\n");
    }
    let openmetrics = request
        .headers()
        .get_all("accept")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    // Map reads are system calls: on a blocking thread, two at a time.
    let Ok(_permit) = scrapes.acquire_owned().await else { return plain(503, "shutting down\n") };
    let body = tokio::task::spawn_blocking(move || shared.scrape(openmetrics)).await.unwrap_or_default();
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    };
    let mut r = hyper::Response::new(Body::from(body));
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r
}

/// What the manifest says each map becomes, worked out once.
struct Plan {
    families: Vec<MapPlan>,
    warnings: Vec<String>,
    max_series: u32,
}

struct MapPlan {
    id: usize,
    info: MapInfo,
    name: String,
    help: String,
    kind: Export,
    /// Label names of the key values (`key`, `key0`.., record fields).
    labels: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Export {
    Counter,
    Gauge,
    Histogram,
    /// `avg()`/`stats()`: `_count` and `_sum` (a histogram of one bucket)
    /// and a gauge `_avg`.
    Average,
}

/// Names of the runtime's own metrics start with this; a map whose name
/// would too gets `rtrace_map_` instead.
const RUNTIME: &str = "rtrace_runtime_";

fn metric_name(map: &str) -> String {
    let bare = map.trim_start_matches('@');
    if bare.is_empty() {
        return "rtrace_anonymous".to_string();
    }
    let name = format!("rtrace_{}", bare);
    if name.starts_with(RUNTIME) || name == "rtrace_anonymous" {
        format!("rtrace_map_{}", bare)
    } else {
        name
    }
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`, not `__` (reserved)
/// nor `le` (a histogram's).
fn label_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    while out.starts_with("__") {
        out.remove(0);
    }
    if out == "le" || out == "quantile" {
        out.push('_');
    }
    out
}

fn exportable_scalar(ty: &Type) -> bool {
    matches!(ty, Type::Int { .. } | Type::Bool | Type::Enum(_) | Type::Ptr { .. })
}

fn plan(source: &Source, checked: &Checked, max_series: u32) -> Plan {
    let manifest = &checked.manifest;
    let mut families = Vec::new();
    let mut warnings = Vec::new();
    let mut skip = |info: &MapInfo, why: &str| {
        warnings.push(format!("warning: --metrics: map `{}` is not exported: {}", info.name, why));
    };
    for (id, info) in manifest.maps.iter().enumerate() {
        // `@_start[tid] = nsecs`: the program's own bookkeeping.
        if info.name.starts_with("@_") {
            continue;
        }
        let kind = match &info.value {
            MapValue::Count => Export::Counter,
            MapValue::Sum { signed: false } => Export::Counter,
            MapValue::Sum { signed: true } => Export::Gauge,
            MapValue::Min { .. } | MapValue::Max { .. } => Export::Gauge,
            MapValue::Hist | MapValue::Lhist { .. } => Export::Histogram,
            MapValue::Avg | MapValue::Stats => Export::Average,
            MapValue::Plain(ty) if exportable_scalar(ty) => Export::Gauge,
            MapValue::Plain(ty) => {
                skip(info, &format!("its values are {}s, not numbers", ty));
                continue;
            }
            MapValue::TSeries { .. } => {
                skip(info, "tseries() values are a time series of their own (read them with print())");
                continue;
            }
        };
        let kind = if kind == Export::Counter && info.shrinks { Export::Gauge } else { kind };
        if info.keys.iter().any(|k| matches!(k, Type::Stack(_))) {
            skip(info, "it is keyed by stacks, which make poor labels (use --flamegraph or -f folded)");
            continue;
        }
        let labels = match info.keys.as_slice() {
            [] => vec![],
            [Type::Record(r)] => r.fields.iter().map(|f| label_name(&f.name)).collect(),
            [_] => vec!["key".to_string()],
            keys => (0..keys.len()).map(|i| format!("key{}", i)).collect(),
        };
        families.push(MapPlan {
            id,
            name: metric_name(&info.name),
            help: help(source, checked, info),
            info: info.clone(),
            kind,
            labels,
        });
    }
    Plan { families, warnings, max_series }
}

/// `# HELP`: the map's statement and the probe it is in, on one line.
fn help(source: &Source, checked: &Checked, info: &MapInfo) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let start = info.span.start as usize;
    let text = &source.text;
    let statement = text
        .get(..start)
        .and_then(|before| {
            let from = before.rfind(['\n', ';', '{']).map_or(0, |i| i + 1);
            let to = text[start..].find(['\n', ';', '}']).map_or(text.len(), |i| start + i);
            text.get(from..to)
        })
        .map(one_line)
        .unwrap_or_else(|| info.name.clone());
    let probe =
        checked.programs.iter().find(|p| p.span.start as usize <= start && start < p.span.end as usize).and_then(|p| {
            let t = text.get(p.span.start as usize..p.span.end as usize)?;
            let header = t.split(['{', '/']).next().unwrap_or(t);
            Some(one_line(header))
        });
    let mut help = match probe {
        Some(p) if !p.is_empty() => format!("rtrace map {}: {} in {}", info.name, statement, p),
        _ => format!("rtrace map {}: {}", info.name, statement),
    };
    if help.chars().count() > 300 {
        help = help.chars().take(297).collect::<String>() + "...";
    }
    // HELP escapes `\` and newlines in both exposition formats; `"` only
    // in OpenMetrics (the text format refuses `\"`): it becomes `'`.
    help.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "'")
}

/// One map's raw entries: (key bytes, one value per CPU), in batches
/// where the kernel has them. The one place that reads a map for the exporter.
fn read_raw(map: &MapHandle, per_cpu: bool) -> Vec<RawEntry> {
    if let Some(b) = super::batch::read(map) {
        return (0..b.count).map(|i| (b.key(i).to_vec(), b.values(i).map(<[u8]>::to_vec).collect())).collect();
    }
    // Kernels without batch operations: key by key.
    let mut out = Vec::new();
    for key in map.keys() {
        let values = if per_cpu {
            map.lookup_percpu(&key, MapFlags::ANY).ok().flatten()
        } else {
            map.lookup(&key, MapFlags::ANY).ok().flatten().map(|v| vec![v])
        };
        if let Some(values) = values {
            out.push((key, values));
        }
    }
    out
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    bytes.get(off..off + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

/// A map entry as read: key bytes, one value per CPU.
type RawEntry = (Vec<u8>, Vec<Vec<u8>>);

/// A series' labels.
type Labels = Vec<(String, String)>;

/// A metric value as the exposition writes it.
#[derive(Debug, Clone)]
enum Sample {
    Counter(u64),
    Gauge(i64),
    GaugeF(f64),
    /// Buckets: (largest value in the bucket, count in it), not cumulative.
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    series: Vec<(Labels, Sample)>,
}

/// One scrape's families, encoded through prometheus-client.
#[derive(Debug)]
struct Snapshot(Vec<Family>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0 {
            let mut metric = encoder.encode_descriptor(&family.name, &family.help, None, family.kind)?;
            for (labels, sample) in &family.series {
                let mut m = metric.encode_family(labels)?;
                match sample {
                    Sample::Counter(v) => m.encode_counter::<NoLabelSet, u64, u64>(v, None)?,
                    Sample::Gauge(v) => m.encode_gauge(v)?,
                    Sample::GaugeF(v) => m.encode_gauge(v)?,
                    Sample::Histogram { sum, count, buckets } => {
                        m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// A gauge or counter family of one unlabelled value.
#[derive(Debug)]
struct Single(MetricType, Sample);

impl EncodeMetric for Single {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        match &self.1 {
            Sample::Counter(v) => encoder.encode_counter::<NoLabelSet, u64, u64>(v, None),
            Sample::GaugeF(v) => encoder.encode_gauge(v),
            Sample::Gauge(v) => encoder.encode_gauge(v),
            Sample::Histogram { .. } => Ok(()),
        }
    }
    fn metric_type(&self) -> MetricType {
        self.0
    }
}

impl Shared {
    /// Reads every map and writes the exposition.
    fn scrape(&self, openmetrics: bool) -> String {
        let started = Instant::now();
        // Mapped for this scrape: `Bss` stays on the thread that maps it.
        let bss = self.bss.as_ref().and_then(|m| MapHandle::try_from(m).ok()).map(super::bss::Bss::new);
        let bss = bss.as_ref();
        let mut families = Vec::new();
        let mut dropped = Vec::new();
        for plan in &self.plan.families {
            let Some(Some(map)) = self.maps.get(plan.id) else { continue };
            let raw = read_raw(map, plan.info.value.per_cpu());
            let (mut fams, n) = map_families(plan, raw, self.plan.max_series as usize);
            families.append(&mut fams);
            dropped.push((plan.info.name.clone(), n));
        }
        let counters = Counters { map_slots: self.maps.len() };
        let read = |i: usize| bss.map_or(0, |b| b.read(i));
        let map_label = |name: &str| vec![("map".to_string(), name.to_string())];
        families.push(Family {
            name: format!("{}lost_records", RUNTIME),
            help: "Records the probes could not send: the ring buffer was full".into(),
            kind: MetricType::Counter,
            series: vec![(vec![], Sample::Counter(read(Counters::LOST)))],
        });
        families.push(Family {
            name: format!("{}map_full_updates", RUNTIME),
            help: "Updates that failed because the map was full (raise RTRACE_MAP_KEYS_MAX)".into(),
            kind: MetricType::Counter,
            series: self
                .plan
                .families
                .iter()
                .map(|p| (map_label(&p.info.name), Sample::Counter(read(counters.map_full(p.id)))))
                .collect(),
        });
        families.push(Family {
            name: format!("{}series_dropped", RUNTIME),
            help: "Keys of the map left out of the last scrape by the cap (RTRACE_METRICS_MAX_SERIES)".into(),
            kind: MetricType::Gauge,
            series: dropped.into_iter().map(|(name, n)| (map_label(&name), Sample::Gauge(n as i64))).collect(),
        });
        families.push(Family {
            name: format!("{}probes_attached", RUNTIME),
            help: "Probes attached (0 until attaching is done)".into(),
            kind: MetricType::Gauge,
            series: vec![(vec![], Sample::Gauge(self.attached.load(Ordering::Relaxed) as i64))],
        });
        let scrapes = self.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let mut registry = Registry::default();
        registry.register(
            format!("{}scrapes", RUNTIME),
            "Scrapes answered",
            Single(MetricType::Counter, Sample::Counter(scrapes)),
        );
        let seconds = started.elapsed().as_secs_f64();
        registry.register(
            format!("{}scrape_duration_seconds", RUNTIME),
            "Time this scrape took to read the maps",
            Single(MetricType::Gauge, Sample::GaugeF(seconds)),
        );
        registry.register_collector(Box::new(Snapshot(families)));
        let mut body = String::new();
        let written = if openmetrics {
            prometheus_client::encoding::text::encode(&mut body, &registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut body, &registry)
        };
        if written.is_err() {
            body.clear();
        }
        body
    }
}

/// The families of one map (two for `avg()`/`stats()`) and how many keys
/// the cap left out.
fn map_families(plan: &MapPlan, raw: Vec<RawEntry>, max_series: usize) -> (Vec<Family>, usize) {
    let info = &plan.info;
    // Bucketed maps: one kernel entry per (key, bucket), grouped by key.
    let mut by_key: BTreeMap<Vec<u8>, Vec<RawEntry>> = BTreeMap::new();
    let prefix = if info.value.bucketed() { info.bucket_offset() as usize } else { usize::MAX };
    for (key, values) in raw {
        let k = key[..prefix.min(key.len())].to_vec();
        by_key.entry(k).or_default().push((key, values));
    }
    let mut series: Vec<(Labels, Sample, f64)> = Vec::new();
    for (key, entries) in &by_key {
        let labels = labels(plan, key);
        let Some(sample) = sample(plan, entries) else { continue };
        let weight = match &sample {
            Sample::Counter(v) => *v as f64,
            Sample::Gauge(v) => (*v as f64).abs(),
            Sample::GaugeF(v) => v.abs(),
            Sample::Histogram { count, .. } => *count as f64,
        };
        series.push((labels, sample, weight));
    }
    // A map without keys that holds nothing yet: 0 (a histogram of no
    // values), so that the series exists from the first scrape.
    if info.keys.is_empty() && series.is_empty() {
        let zero = match plan.kind {
            Export::Counter => Some(Sample::Counter(0)),
            Export::Histogram | Export::Average => {
                Some(Sample::Histogram { sum: 0.0, count: 0, buckets: vec![(f64::INFINITY, 0)] })
            }
            Export::Gauge if matches!(info.value, MapValue::Sum { .. }) => Some(Sample::Gauge(0)),
            Export::Gauge => None,
        };
        series.extend(zero.map(|s| (vec![], s, 0.0)));
    }
    let mut dropped = 0;
    if series.len() > max_series {
        // The biggest stay: the keys a reader of the map would look at first.
        series.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        dropped = series.len() - max_series;
        series.truncate(max_series);
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let family = |name: String, kind, series| Family { name, help: plan.help.clone(), kind, series };
    let fams = match plan.kind {
        Export::Counter => vec![family(plan.name.clone(), MetricType::Counter, strip(series))],
        Export::Gauge => vec![family(plan.name.clone(), MetricType::Gauge, strip(series))],
        Export::Histogram => vec![family(plan.name.clone(), MetricType::Histogram, strip(series))],
        Export::Average => {
            let avg = series
                .iter()
                .filter_map(|(l, s, _)| match s {
                    Sample::Histogram { sum, count, .. } if *count > 0 => {
                        Some((l.clone(), Sample::Gauge(OutValue::average(*count, *sum as i64))))
                    }
                    _ => None,
                })
                .collect();
            vec![
                family(plan.name.clone(), MetricType::Histogram, strip(series)),
                family(format!("{}_avg", plan.name), MetricType::Gauge, avg),
            ]
        }
    };
    (fams, dropped)
}

fn strip(series: Vec<(Labels, Sample, f64)>) -> Vec<(Labels, Sample)> {
    series.into_iter().map(|(l, s, _)| (l, s)).collect()
}

/// The labels of a key: `key`, `key0`.. or a record's field names.
fn labels(plan: &MapPlan, key_bytes: &[u8]) -> Vec<(String, String)> {
    if plan.info.keys.is_empty() {
        return vec![];
    }
    let values = super::decode::key(&plan.info, key_bytes);
    let texts: Vec<String> = match values.as_slice() {
        [Value::Record(fields)] if plan.labels.len() == fields.len() => {
            fields.iter().map(|(_, v)| label_text(v)).collect()
        }
        _ => values.iter().map(label_text).collect(),
    };
    plan.labels.iter().cloned().zip(texts).collect()
}

fn label_text(v: &Value) -> String {
    match v {
        Value::UInt(u) => u.to_string(),
        // Strings as they are (the exposition escapes `\`, `"` and newlines).
        Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
        other => key_text(std::slice::from_ref(other)),
    }
}

/// The sample of one key; `entries` are its kernel entries (one per bucket
/// for `hist()`/`lhist()`).
fn sample(plan: &MapPlan, entries: &[RawEntry]) -> Option<Sample> {
    let info = &plan.info;
    let (key, per_cpu) = entries.first()?;
    let sum_at = |per_cpu: &[Vec<u8>], off: usize| per_cpu.iter().fold(0u64, |a, v| a.wrapping_add(u64_at(v, off)));
    let as_gauge = |v: &Value| match v {
        Value::Int(i) => Some(Sample::Gauge(*i)),
        Value::UInt(u) => Some(if *u > i64::MAX as u64 { Sample::GaugeF(*u as f64) } else { Sample::Gauge(*u as i64) }),
        Value::Bool(b) => Some(Sample::Gauge(*b as i64)),
        Value::Enum { bits, signed: true, .. } => Some(Sample::Gauge(*bits as i64)),
        Value::Enum { bits, .. } => Some(Sample::GaugeF(*bits as f64)),
        _ => None,
    };
    match &info.value {
        MapValue::Count | MapValue::Sum { .. } if plan.kind == Export::Counter => {
            Some(Sample::Counter(sum_at(per_cpu, 0)))
        }
        MapValue::Avg | MapValue::Stats => {
            let (count, total) = (sum_at(per_cpu, 0), sum_at(per_cpu, 8) as i64);
            Some(Sample::Histogram { sum: total as f64, count, buckets: vec![(f64::INFINITY, count)] })
        }
        MapValue::Hist | MapValue::Lhist { .. } => Some(histogram(info, entries)),
        _ => match super::decode::map_value(info, key, &per_cpu.iter().map(Vec::as_slice).collect::<Vec<_>>()) {
            OutValue::Count(n) => Some(Sample::Gauge(n as i64)),
            OutValue::Sum(v) | OutValue::Min(v) | OutValue::Max(v) | OutValue::Value(v) => as_gauge(&v),
            _ => None,
        },
    }
}

/// A `hist()`/`lhist()` key's buckets: each bucket's upper bound is the
/// largest integer it holds (`le="7"` for bpftrace's `[4, 8)`), so that
/// `le` means "at most" exactly; `_sum` is the kernel's exact total.
fn histogram(info: &MapInfo, entries: &[RawEntry]) -> Sample {
    let n = info.value.buckets();
    let (mut counts, mut totals) = (vec![0u64; n], vec![0u64; n]);
    let at = info.bucket_offset() as usize;
    for (key, per_cpu) in entries {
        let b = u64_at(key, at) as usize;
        if b < n {
            for v in per_cpu {
                counts[b] = counts[b].wrapping_add(u64_at(v, 0));
                totals[b] = totals[b].wrapping_add(u64_at(v, 8));
            }
        }
    }
    let count: u64 = counts.iter().sum();
    let sum = totals.iter().fold(0i64, |a, t| a.wrapping_add(*t as i64)) as f64;
    let upper = |b: usize| -> f64 {
        match &info.value {
            MapValue::Lhist { min, step, .. } => {
                if b + 1 == n {
                    f64::INFINITY
                } else {
                    (*min as f64) + (b as f64) * (*step as f64) - 1.0
                }
            }
            // Negative, zero, then [2^k, 2^(k+1)).
            _ => match b {
                0 => -1.0,
                1 => 0.0,
                b if b + 1 == n => f64::INFINITY,
                b => 2f64.powi(b as i32 - 1) - 1.0,
            },
        }
    };
    let mut buckets = Vec::new();
    match &info.value {
        // lhist: every bucket, as its bounds are few and fixed.
        MapValue::Lhist { .. } => {
            for (b, c) in counts.iter().enumerate() {
                buckets.push((upper(b), *c));
            }
        }
        // hist: from `le="0"` (`le="-1"` too once there are negative
        // values) up to the highest bucket that holds values: a key's 66
        // buckets would be mostly zeros. The empty buckets below the
        // values stay, as `histogram_quantile` takes a bucket's lower
        // bound from the one before it. Then +Inf.
        _ => {
            let first = if counts[0] > 0 { 0 } else { 1 };
            if let Some(last) = counts.iter().rposition(|c| *c > 0) {
                for (b, c) in counts.iter().enumerate().take(last + 1).skip(first) {
                    buckets.push((upper(b), *c));
                }
            }
            if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                buckets.push((f64::INFINITY, 0));
            }
        }
    }
    Sample::Histogram { sum, count, buckets }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(address("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(address(":9100").unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(address("0.0.0.0:9464").unwrap().to_string(), "0.0.0.0:9464");
        assert_eq!(address("[::1]:9464").unwrap().to_string(), "[::1]:9464");
        assert!(address("script.rt").is_err());
    }

    fn map(value: MapValue) -> MapInfo {
        MapInfo {
            name: "@h".into(),
            keys: vec![],
            value,
            span: Default::default(),
            counted: false,
            shrinks: false,
            declared: None,
        }
    }

    /// (bucket, count, total) on one CPU → the kernel entry of a map without keys.
    fn entries(info: &MapInfo, buckets: &[(u64, u64, u64)]) -> Vec<RawEntry> {
        let at = info.bucket_offset() as usize;
        buckets
            .iter()
            .map(|(b, c, t)| {
                let mut key = vec![0u8; at + 8];
                key[at..].copy_from_slice(&b.to_le_bytes());
                (key, vec![[c.to_le_bytes(), t.to_le_bytes()].concat()])
            })
            .collect()
    }

    #[test]
    fn hist_buckets_are_the_largest_integer_they_hold() {
        let info = map(MapValue::Hist);
        // 3 × 100 (bucket 2 + 6: [64, 128)), 1 × 5000 ([4096, 8192)), 1 × 0.
        let Sample::Histogram { sum, count, buckets } =
            histogram(&info, &entries(&info, &[(8, 3, 300), (14, 1, 5000), (1, 1, 0)]))
        else {
            panic!("not a histogram")
        };
        assert_eq!((sum, count), (5300.0, 5));
        let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
        assert_eq!(bounds[..4], [0.0, 1.0, 3.0, 7.0]);
        assert_eq!(buckets.iter().find(|b| b.0 == 127.0).unwrap().1, 3);
        assert_eq!(buckets.iter().find(|b| b.0 == 8191.0).unwrap().1, 1);
        assert_eq!(*buckets.last().unwrap(), (f64::INFINITY, 0));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 5);
    }

    #[test]
    fn lhist_buckets_cover_below_min_and_from_max() {
        let info = map(MapValue::Lhist { min: 0, max: 1000, step: 250 });
        let Sample::Histogram { buckets, count, .. } =
            histogram(&info, &entries(&info, &[(0, 2, -4i64 as u64), (1, 3, 30), (5, 1, 5000)]))
        else {
            panic!("not a histogram")
        };
        assert_eq!(count, 6);
        let expect = [(-1.0, 2), (249.0, 3), (499.0, 0), (749.0, 0), (999.0, 0), (f64::INFINITY, 1)];
        assert_eq!(buckets, expect);
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(metric_name("@opens"), "rtrace_opens");
        assert_eq!(metric_name("@"), "rtrace_anonymous");
        assert_eq!(metric_name("@runtime_x"), "rtrace_map_runtime_x");
        assert_eq!(label_name("__x"), "_x");
        assert_eq!(label_name("le"), "le_");
        assert_eq!(label_name("1a"), "_1a");
    }
}
