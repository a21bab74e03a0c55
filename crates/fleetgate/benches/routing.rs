//! Cost of fleetgate's routing decision, of compiling a large configuration,
//! and the memory the compiled configuration takes.
//!
//! Configurations are generated in code (a TOML file plus Ingress YAML in a
//! temporary directory, loaded with `Config::load`, compiled with
//! `compile::compile`), shaped like the side-by-side benchmark's workloads
//! (`bench/gen.py`): N hosts `host-i.example.com`, one `/` Prefix Ingress
//! each, one Service each with endpoints in two clusters weighted 9:1.
//! "plain" has just that; "canary" adds to every route a header canary, a
//! 10% weight canary (two more Ingresses) and a cluster subset on the main
//! Ingress.
//!
//! Benchmarks:
//! - `decision/{plain,canary}/N`: the request path of `Gateway::upstream_peer`
//!   (host/path lookup, canary decision, tier and endpoint pick), over
//!   requests rotating across all N hosts, each head in cache as a freshly
//!   parsed one is (see [`Requests`]); `decision_cold_request/...` the same
//!   with every request head cache-cold too; `decision_peer/...` also builds
//!   the `HttpPeer` as the proxy does;
//! - `config/load/plain/1000`, `config/compile/plain/1000`: `Config::load`
//!   and `compile::compile` under criterion.
//!
//! Benchmark ids count Ingress objects (3 per host with canaries). Before
//! the benchmarks, it prints, per size, the time of one `Config::load` and
//! one `compile::compile` (the 10,000-Ingress compile is the one timed for
//! the 200 ms target: too slow today to repeat under criterion) and the heap
//! bytes the compiled snapshot holds (a counting global allocator;
//! `memory:` lines).
//!
//! Run with `cargo bench -p fleetgate --bench routing -- --warm-up-time 1 --measurement-time 3`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion};
use fleetgate::compile;
use fleetgate_canary::Dice;
use fleetgate_config::Config;
use fleetgate_pool::HealthChecks;
use fleetgate_proxy::Snapshot;
use fleetgate_router::{Attempt, Attempts};
use http::header::{HeaderValue, HOST};
use http::request::Parts;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

/// Bytes currently allocated through [`Counting`].
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Writes a configuration of `hosts` routes into a fresh temporary directory
/// and returns the TOML file's path.
fn write_config(hosts: usize, canary: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fleetgate-routing-bench-{}-{hosts}-{canary}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut toml = String::from(
        "[gateway]\nlisten = [\"127.0.0.1:18400\"]\nthreads = 1\n\n[log]\naccess = \"off\"\n\n\
         [[cluster]]\nid = \"c0000001\"\nname = \"cluster-1\"\nzone = \"zone-a\"\n\n\
         [[cluster]]\nid = \"c0000002\"\nname = \"cluster-2\"\nzone = \"zone-b\"\n\n",
    );
    let mut yaml = String::new();
    let service = |toml: &mut String, name: &str, eps: &[(&str, u16, u32)]| {
        let _ = writeln!(
            toml,
            "[[service]]\nnamespace = \"bench\"\nname = \"{name}\"\nport = 80\nendpoints = ["
        );
        for (cluster, port, weight) in eps {
            let _ = writeln!(
                toml,
                "  {{ cluster = \"{cluster}\", address = \"127.0.0.1:{port}\", weight = {weight} }},"
            );
        }
        toml.push_str("]\n\n");
    };
    let ingress = |yaml: &mut String, name: &str, host: &str, svc: &str, ann: &[(&str, &str)]| {
        let _ = write!(
            yaml,
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: bench\n"
        );
        if !ann.is_empty() {
            yaml.push_str("  annotations:\n");
            for (k, v) in ann {
                let _ = writeln!(yaml, "    {k}: \"{v}\"");
            }
        }
        let _ = write!(
            yaml,
            "spec:\n  ingressClassName: fleetgate\n  rules:\n  - host: {host}\n    http:\n      paths:\n      \
             - path: /\n        pathType: Prefix\n        backend:\n          service:\n            \
             name: {svc}\n            port:\n              number: 80\n"
        );
    };
    for i in 0..hosts {
        let host = format!("host-{i}.example.com");
        let svc = format!("svc-{i}");
        service(
            &mut toml,
            &svc,
            &[("c0000001", 18501, 9), ("c0000002", 18502, 1)],
        );
        if !canary {
            ingress(&mut yaml, &svc, &host, &svc, &[]);
            continue;
        }
        service(
            &mut toml,
            &format!("{svc}-canary"),
            &[("c0000002", 18502, 1)],
        );
        service(
            &mut toml,
            &format!("{svc}-weight"),
            &[("c0000001", 18501, 1)],
        );
        ingress(
            &mut yaml,
            &svc,
            &host,
            &svc,
            &[
                ("mse.ingress.kubernetes.io/service-subset", "cluster-1"),
                (
                    "mse.ingress.kubernetes.io/subset-labels",
                    "topology.istio.io/cluster c0000001",
                ),
            ],
        );
        ingress(
            &mut yaml,
            &format!("{svc}-canary"),
            &host,
            &format!("{svc}-canary"),
            &[
                ("nginx.ingress.kubernetes.io/canary", "true"),
                ("nginx.ingress.kubernetes.io/canary-by-header", "x-canary"),
                (
                    "nginx.ingress.kubernetes.io/canary-by-header-value",
                    "always",
                ),
            ],
        );
        ingress(
            &mut yaml,
            &format!("{svc}-weight"),
            &host,
            &format!("{svc}-weight"),
            &[
                ("nginx.ingress.kubernetes.io/canary", "true"),
                ("nginx.ingress.kubernetes.io/canary-weight", "10"),
            ],
        );
    }
    toml.push_str("[manifests]\nnamespace = \"bench\"\nfiles = [\"ingress.yaml\"]\n");
    std::fs::write(dir.join("ingress.yaml"), yaml).expect("write manifests");
    let path = dir.join("fleetgate.toml");
    std::fs::write(&path, toml).expect("write toml");
    path
}

/// Compiles `config` as `fleetgate run` does at start.
fn compile(config: &Config) -> Snapshot {
    compile::compile(config, 1, &HealthChecks::new(), None).expect("compiles")
}

/// Request heads for the benchmarks. The proxy routes a request whose head
/// it has just parsed, so the head is in cache: a ring of 20 heads is reused
/// (the last one carrying the header canary's header, like workload c of the
/// side-by-side benchmark), and each request first gets the Host of the next
/// host in rotation; that header insert is counted in the decision's time.
/// [`Requests::cold`] instead keeps one head per host, each cache-cold when
/// its turn comes (the method of the first rounds, kept for comparison).
struct Requests {
    heads: Vec<Parts>,
    /// Host values, static so that setting one copies two words.
    hosts: Vec<HeaderValue>,
    cold: bool,
    next: usize,
}

impl Requests {
    fn head(canary: bool) -> Parts {
        let mut b = http::Request::builder().uri("/");
        if canary {
            b = b.header("x-canary", "always");
        }
        b.body(()).expect("request").into_parts().0
    }

    fn hosts(hosts: usize) -> Vec<HeaderValue> {
        (0..hosts)
            .map(|i| {
                let host: &'static str = format!("host-{i}.example.com").leak();
                HeaderValue::from_static(host)
            })
            .collect()
    }

    /// Hot heads, hosts rotating.
    fn hot(hosts: usize) -> Self {
        Requests {
            heads: (0..20).map(|i| Self::head(i == 19)).collect(),
            hosts: Self::hosts(hosts),
            cold: false,
            next: 0,
        }
    }

    /// One head per host (at least 20), each with its Host set once.
    fn cold(hosts: usize) -> Self {
        let values = Self::hosts(hosts);
        let heads = (0..hosts.max(20))
            .map(|i| {
                let mut head = Self::head(i % 20 == 19);
                head.headers.insert(HOST, values[i % hosts].clone());
                head
            })
            .collect();
        Requests {
            heads,
            hosts: values,
            cold: true,
            next: 0,
        }
    }

    /// Every request once, for checking that all route.
    fn all(&mut self) -> impl Iterator<Item = Parts> + '_ {
        let n = self.hosts.len().max(self.heads.len());
        (0..n).map(|_| self.next().clone())
    }

    #[inline]
    fn next(&mut self) -> &Parts {
        self.next = self.next.wrapping_add(1);
        let slot = self.next % self.heads.len();
        if !self.cold {
            let host = self.hosts[self.next % self.hosts.len()].clone();
            self.heads[slot].headers.insert(HOST, host);
        }
        &self.heads[slot]
    }
}

/// The routing decision of `Gateway::request_filter` + `upstream_peer` for
/// a first try: the router's lookup, plan and first pick.
#[inline]
fn decide<'s>(snapshot: &'s Snapshot, req: &Parts, dice: &Dice) -> Option<Attempt<'s>> {
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let router = &snapshot.router;
    let route = router.lookup(host, req.uri.path())?;
    let plan = router.plan(route, req, || dice.roll());
    router.next_peer(plan, &Attempts::new(), req, || dice.roll())
}

/// A compiled configuration and what building it cost.
struct Built {
    /// "plain" or "canary".
    kind: &'static str,
    /// Hosts (routes).
    hosts: usize,
    /// Ingress objects (3 per host with canaries).
    ingresses: usize,
    snapshot: Snapshot,
}

/// Loads and compiles a configuration, printing the heap bytes the compiled
/// snapshot holds and how long loading and compiling took (`memory:` line).
fn build(hosts: usize, canary: bool) -> Built {
    let kind = if canary { "canary" } else { "plain" };
    let ingresses = if canary { hosts * 3 } else { hosts };
    let path = write_config(hosts, canary);
    let base = ALLOCATED.load(Ordering::Relaxed);
    let started = Instant::now();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("generated config: {e:?}"));
    let loaded = started.elapsed();
    let config_bytes = ALLOCATED.load(Ordering::Relaxed) - base;
    let started = Instant::now();
    let snapshot = compile(&config);
    let compiled = started.elapsed();
    drop(config);
    let held = ALLOCATED.load(Ordering::Relaxed) - base;
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    println!(
        "memory: {kind}/{hosts} hosts ({ingresses} Ingresses, {} pools): Config::load {loaded:?} \
         ({:.1} MiB), compile {compiled:?}, compiled snapshot holds {held} bytes \
         ({:.1} MiB, {} bytes/host)",
        snapshot.router.pools().len(),
        config_bytes as f64 / 1048576.0,
        held as f64 / 1048576.0,
        held / hosts as isize,
    );
    Built {
        kind,
        hosts,
        ingresses,
        snapshot,
    }
}

fn bench_decision(c: &mut Criterion, built: &Built) {
    let dice = Dice::new(7);
    let snapshot = &built.snapshot;
    let mut reqs = Requests::hot(built.hosts);
    assert!(reqs.all().all(|r| decide(snapshot, &r, &dice).is_some()));
    c.bench_with_input(
        BenchmarkId::new(format!("decision/{}", built.kind), built.ingresses),
        &built.ingresses,
        |b, _| b.iter(|| black_box(decide(snapshot, black_box(reqs.next()), &dice))),
    );
    let mut cold = Requests::cold(built.hosts);
    c.bench_with_input(
        BenchmarkId::new(
            format!("decision_cold_request/{}", built.kind),
            built.ingresses,
        ),
        &built.ingresses,
        |b, _| b.iter(|| black_box(decide(snapshot, black_box(cold.next()), &dice))),
    );
    c.bench_with_input(
        BenchmarkId::new(format!("decision_peer/{}", built.kind), built.ingresses),
        &built.ingresses,
        |b, _| {
            b.iter(|| {
                let attempt = decide(snapshot, black_box(reqs.next()), &dice).expect("routed");
                black_box(attempt.peer())
            })
        },
    );
}

fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("config");
    group.sample_size(10);
    let path = write_config(1_000, false);
    group.bench_function("load/plain/1000", |b| {
        b.iter(|| Config::load(black_box(&path)).expect("loads"))
    });
    let config = Config::load(&path).expect("loads");
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    group.bench_function("compile/plain/1000", |b| {
        b.iter(|| compile(black_box(&config)))
    });
    group.finish();
}

/// Sizes (hosts, with canaries) to build; `ROUTING_BENCH_SIZES=small` keeps
/// the ones that compile in seconds (10,000 Ingresses take ~15 s to compile
/// and the canary one with 10,002 Ingresses ~40 s, see docs/benchmarks.md).
fn sizes() -> Vec<(usize, bool)> {
    let all = [
        (10, false),
        (1_000, false),
        (10_000, false),
        (4, true),
        (334, true),
        (3_334, true),
    ];
    let small = std::env::var("ROUTING_BENCH_SIZES").is_ok_and(|v| v == "small");
    all.into_iter()
        .filter(|&(hosts, canary)| !small || hosts * if canary { 3 } else { 1 } <= 1_002)
        .collect()
}

fn main() {
    println!(
        "memory: size_of HttpPeer {} bytes, EndpointPool {} bytes",
        std::mem::size_of::<pingora_core::upstreams::peer::HttpPeer>(),
        std::mem::size_of::<fleetgate_pool::EndpointPool>(),
    );
    let built: Vec<Built> = sizes()
        .into_iter()
        .map(|(hosts, canary)| build(hosts, canary))
        .collect();
    let mut c = Criterion::default().configure_from_args();
    for b in &built {
        bench_decision(&mut c, b);
    }
    bench_compile(&mut c);
    c.final_summary();
}
