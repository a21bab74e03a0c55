//! `fleetgate run`: serve.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use fleetgate_config::AccessLogTarget;
use fleetgate_proxy::tls_info::RecordServerName;
use fleetgate_proxy::{AccessLog, ConnectionLimits, ConnectionLog, Gateway, GuardedApp, Metrics};
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::protocols::http::v2::server::default_h2_options;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;

use crate::admin::AdminApp;
use crate::cli::RunArgs;
use crate::discovery::{initial_wait, Discovery};
use crate::load::{endpoint_counts, load_with_hub};
use crate::state::{ConfigView, GatewayState, Phase};
use crate::{notify, reload, shutdown};

/// Most admin API connections open at once.
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// How long the listeners may take to answer before the state is Failed.
const LISTEN_DEADLINE: Duration = Duration::from_secs(30);

/// Fails early, and clearly, when an address is taken.
fn check_bindable(what: &str, addr: &SocketAddr) -> bool {
    match TcpListener::bind(addr) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("fleetgate: cannot listen on {addr} ({what}): {e}");
            false
        }
    }
}

/// Waits for the listeners to accept, then reports readiness.
fn watch_readiness(state: Arc<GatewayState>, listeners: Vec<SocketAddr>, pid_file: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("fleetgate-ready".into())
        .spawn(move || {
            let started = Instant::now();
            loop {
                let up = listeners
                    .iter()
                    .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
                if up {
                    state.listeners_up();
                    crate::pid_file::write(&pid_file);
                    // After a binary upgrade this process is the unit's
                    // main process from now on (needs NotifyAccess=all).
                    notify::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
                    return;
                }
                if started.elapsed() > LISTEN_DEADLINE {
                    state.set_phase(Phase::Failed(format!(
                        "listeners {listeners:?} did not accept connections within {LISTEN_DEADLINE:?}"
                    )));
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the readiness watcher: {e}");
    }
}

/// `<dir>/fleetgate-<name>.<suffix>`.
fn runtime_file(dir: &std::path::Path, name: &str, suffix: &str) -> String {
    dir.join(format!("fleetgate-{name}.{suffix}"))
        .display()
        .to_string()
}

/// Runs `run`; returns an exit code only on failure to start.
pub fn run(args: &RunArgs) -> i32 {
    let path = &args.config.config;
    let checks = fleetgate_pool::HealthChecks::new();
    let hub = crate::hub::Hub::default();
    // Live endpoint sources answer before the first snapshot is built, so
    // that it starts with their endpoints.
    let discovery = Discovery::default();
    let mut built = 0;
    let mut built_from = None;
    let Some((config, snapshot, hub_build, text)) = load_with_hub(&hub, path, |config| {
        for cluster in discovery.configure(Some(config), initial_wait(config)) {
            log::warn!(
                "cluster {cluster}: no complete answer from its endpoint source yet; serving without its endpoints until it answers"
            );
        }
        let discovered = discovery.snapshot_for(config);
        built = discovered.as_ref().map_or(0, |d| d.version);
        let compiled =
            fleetgate::compile::compile_with(config, 1, &checks, None, discovered.as_ref());
        built_from = discovered;
        compiled
    }) else {
        return 1;
    };
    // Drains kept across the restart apply before the first request.
    if let Some(path) = &config.admin.drain_file {
        match crate::drains::restore(checks.clusters(), path) {
            Ok(ids) if !ids.is_empty() => log::warn!(
                "drain: clusters drained before the restart stay drained: {} (from {})",
                ids.join(", "),
                path.display()
            ),
            Ok(_) => {}
            Err(e) => log::error!("drain: {e}; starting with no cluster drained"),
        }
    }
    // On a graceful upgrade the old process still holds the sockets.
    if !args.upgrade {
        for addr in &config.gateway.listen {
            if !check_bindable("gateway", addr) {
                return 1;
            }
        }
        for addr in &config.gateway.listen_tls {
            if !check_bindable("gateway TLS", addr) {
                return 1;
            }
        }
        if !check_bindable("admin API", &config.admin.listen) {
            return 1;
        }
    }
    // Started even when off, so that a reload can turn it on.
    let access_log = match AccessLog::start(
        &crate::live_settings::destination(&config.log),
        crate::live_settings::format(&config.log),
    ) {
        Ok(log) => log,
        Err(e) => {
            match &config.log.access {
                AccessLogTarget::File(p) => {
                    eprintln!("fleetgate: cannot open access log {}: {e}", p.display())
                }
                _ => eprintln!("fleetgate: cannot start the access log: {e}"),
            }
            return 1;
        }
    };

    let (endpoints, clusters) = endpoint_counts(&config, &snapshot);
    let served = snapshot.report.served.len();
    let ignored = snapshot.report.ignored.len();
    let route_count = snapshot.router.table().routes().len();
    let services = config.services.len();
    let mut cluster_sources: Vec<String> = vec![format!(
        "  Ingresses from {}",
        config.manifest_source.describe(config.manifest_files.len())
    )];
    cluster_sources.extend(
        config
            .clusters
            .iter()
            .map(|c| format!("  cluster {}: endpoints from {}", c.id, c.source.describe())),
    );
    let shared = Arc::new(ArcSwap::from_pointee(snapshot));
    let metrics = Metrics::new();
    let mut gateway = Gateway::new(Arc::clone(&shared))
        .with_seed(config.gateway.canary_seed)
        .with_forwarded_headers(fleetgate::compile::forwarded_headers(
            config.gateway.forwarded_headers,
        ))
        .with_https_port(config.gateway.listen_tls.first().map(|a| a.port()))
        .with_keepalive_timeout(config.gateway.keepalive_timeout)
        .with_body_limits(fleetgate::compile::body_limits(
            &config.gateway.client_limits,
        ))
        .with_metrics(metrics.clone());
    if let Err(e) = crate::log_reopen::watch(access_log.clone()) {
        eprintln!("fleetgate: cannot install the SIGUSR1 handler: {e}");
        return 1;
    }
    gateway = gateway.with_access_log(access_log.clone());
    let stats = gateway.stats();

    let grace = config.gateway.grace_period;
    let shutdown_delay = config.gateway.shutdown_delay;
    let upgrade_sock = runtime_file(
        &config.gateway.runtime_dir,
        &config.gateway.name,
        "upgrade.sock",
    );
    let pid_file = runtime_file(&config.gateway.runtime_dir, &config.gateway.name, "pid");
    let upgrader = Arc::new(crate::upgrade::Upgrader::for_this_process(PathBuf::from(
        &upgrade_sock,
    )));
    let conf = ServerConf {
        threads: config.gateway.threads,
        grace_period_seconds: Some(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)),
        graceful_shutdown_timeout_seconds: Some(1),
        upgrade_sock,
        pid_file: pid_file.clone(),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: args.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let listen = config.gateway.listen.clone();
    let listen_tls = config.gateway.listen_tls.clone();
    let h2c = config.gateway.h2c;
    let keepalive_requests = config.gateway.keepalive_requests;
    let client_limits = config.gateway.client_limits;
    let keepalive_timeout = config.gateway.keepalive_timeout;
    let admin_listen = config.admin.listen;
    let live = crate::live_settings::LiveSettings::new(
        config.admin.token.clone(),
        access_log.clone(),
        config.log.clone(),
    );
    let name = config.gateway.name.clone();
    let source = config.source.clone();
    let view = ConfigView::from(&config);
    let started_with = crate::state::StartSettings::of(&config);
    hub.commit(&config, &shared.load().report, &text, hub_build);
    discovery.keep(Arc::new(config));
    discovery.set_built_from(built_from);
    crate::memory::release_free_memory();
    crate::memory::trim_after_bursts(Arc::clone(&stats.connections));
    let state = GatewayState::new(
        view,
        Arc::clone(&shared),
        Arc::clone(&checks),
        Arc::clone(&stats),
        metrics,
        discovery,
        hub,
        started_with,
        live,
        upgrader,
    );
    if let Err(e) = crate::discovery::start_applier(Arc::clone(&state), built) {
        eprintln!("fleetgate: cannot start the endpoint updater: {e}");
        return 1;
    }

    if let Err(e) = crate::hub::start_applier(Arc::clone(&state), path.clone()) {
        eprintln!("fleetgate: cannot start the hub cluster updater: {e}");
        return 1;
    }

    if let Err(e) = shutdown::watch_exit(
        Arc::clone(&stats),
        server.watch_execution_phase(),
        grace,
        state.live.access_log().clone(),
    ) {
        eprintln!("fleetgate: cannot start the shutdown watcher: {e}");
        return 1;
    }
    if let Err(e) = reload::on_sighup(Arc::clone(&state), path.clone()) {
        eprintln!("fleetgate: cannot install the SIGHUP handler: {e}");
        return 1;
    }
    if args.watch {
        if let Err(e) = reload::watch(Arc::clone(&state), path.clone()) {
            eprintln!("fleetgate: cannot start watching files: {e}");
            return 1;
        }
    }

    let mut options = HttpServerOptions::default();
    options.h2c = h2c;
    // Pingora counts reuses after the first request.
    options.keepalive_request_limit = Some(keepalive_requests.saturating_sub(1));
    // HTTP/2 connections idle out like HTTP/1 keep-alive ones.
    options.h2_idle_timeout = Some(keepalive_timeout).filter(|t| !t.is_zero());
    let mut http = pingora_proxy::HttpProxy::new(gateway, Arc::clone(&server.configuration));
    http.server_options = Some(options);
    // HTTP/2 header lists get the same bound as HTTP/1 heads.
    let mut h2 = default_h2_options();
    h2.max_header_list_size(u32::try_from(client_limits.max_header_size).unwrap_or(u32::MAX));
    http.h2_options = Some(h2);
    http.handle_init_modules();
    let guarded = GuardedApp::new(
        http,
        ConnectionLimits {
            header_timeout: client_limits.header_timeout,
            max_header_size: client_limits.max_header_size,
            max_connections: client_limits.max_connections as usize,
        },
        Arc::clone(&stats.connections),
    )
    .with_log(ConnectionLog::new(
        state.metrics.clone(),
        Some(state.live.access_log().clone()),
    ));
    let mut proxy = Service::new("fleetgate".to_string(), guarded);
    for addr in &listen {
        proxy.add_tcp(&addr.to_string());
    }
    for addr in &listen_tls {
        // The callback keeps each connection's SNI for the access log.
        let mut tls = match TlsSettings::with_callbacks(Box::new(RecordServerName)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("fleetgate: cannot set up TLS on {addr}: {e}");
                return 1;
            }
        };
        tls.set_cert_resolver(Arc::new(state.certificates.clone()));
        tls.enable_h2();
        proxy.add_tls_with_settings(&addr.to_string(), None, tls);
    }
    server.add_service(proxy);
    // The admin API is for a few operators and scrapers: its own small
    // connection and head limits, whoever reaches its listener.
    let admin_app = GuardedApp::new(
        AdminApp::new(Arc::clone(&state)),
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            max_header_size: 16 * 1024,
            max_connections: ADMIN_MAX_CONNECTIONS,
        },
        Arc::default(),
    );
    let mut admin = Service::new("fleetgate admin".to_string(), admin_app);
    admin.add_tcp(&admin_listen.to_string());
    server.add_service(admin);
    server.add_service(background_service("health checks", checks.supervisor()));
    server.add_service(background_service(
        "systemd watchdog",
        crate::watchdog::Watchdog::from_env(Arc::clone(&state)),
    ));

    let urls: Vec<String> = listen
        .iter()
        .map(|a| format!("http://{a}{}", if h2c { " (+h2c)" } else { "" }))
        .chain(listen_tls.iter().map(|a| format!("https://{a}")))
        .collect();
    println!(
        "fleetgate {} ({}): gateway \"{name}\" listening on {}",
        crate::build_info::VERSION,
        crate::build_info::COMMIT,
        urls.join(", ")
    );
    println!(
        "  loaded {served} Ingress(es) ({ignored} ignored), {route_count} route(s), {services} Service port(s), {endpoints} endpoint(s) in {clusters} cluster(s) from {}",
        source.display()
    );
    for line in &cluster_sources {
        println!("{line}");
    }
    println!("  admin API: http://{admin_listen}/status");
    log::info!("serving generation 1");
    let upgrader = Arc::clone(&state.upgrader);
    let exit_log = state.live.access_log().clone();
    watch_readiness(
        state,
        listen.into_iter().chain(listen_tls).collect(),
        PathBuf::from(pid_file),
    );
    server.run(pingora_core::server::RunArgs {
        shutdown_signal: Box::new(shutdown::SignalWatch {
            delay: shutdown_delay,
            stats,
            upgrader,
        }),
    });
    // Pingora returns after SIGINT, or when its grace period ran out
    // before the exit watcher's: the same last steps as the watcher's.
    shutdown::last_steps(&exit_log);
    0
}
