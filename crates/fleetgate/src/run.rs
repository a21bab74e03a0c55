//! `fleetgate run`: serve.

use std::net::TcpListener;
use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_proxy::Gateway;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;

use crate::cli::ConfigArgs;
use crate::load::{compile, endpoint_counts, load_config};
use crate::shutdown;

/// Runs `run`; returns an exit code only on failure to start.
pub fn run(args: &ConfigArgs) -> i32 {
    let Some(config) = load_config(&args.config) else {
        return 1;
    };
    // Fail early, and clearly, when a listener address is taken.
    for addr in &config.gateway.listen {
        if let Err(e) = TcpListener::bind(addr) {
            eprintln!("fleetgate: cannot listen on {addr}: {e}");
            return 1;
        }
    }
    let checks = fleetgate_pool::HealthChecks::new();
    let snapshot = compile(&config, 1, &checks);
    let (endpoints, clusters) = endpoint_counts(&config);
    let served = snapshot.report.served.len();
    let ignored = snapshot.report.ignored.len();
    let route_count = snapshot.table.routes().len();
    let shared = Arc::new(ArcSwap::from_pointee(snapshot));

    let grace = config.gateway.grace_period;
    let conf = ServerConf {
        threads: config.gateway.threads,
        grace_period_seconds: Some(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)),
        graceful_shutdown_timeout_seconds: Some(1),
        upgrade_sock: format!("/tmp/fleetgate-{}-upgrade.sock", config.gateway.name),
        pid_file: format!("/tmp/fleetgate-{}.pid", config.gateway.name),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let gateway = Gateway::new(Arc::clone(&shared));
    if let Err(e) = shutdown::watch_sigterm(gateway.in_flight(), grace) {
        eprintln!("fleetgate: cannot install the SIGTERM handler: {e}");
        return 1;
    }
    let mut service =
        pingora_proxy::http_proxy_service_with_name(&server.configuration, gateway, "fleetgate");
    for addr in &config.gateway.listen {
        service.add_tcp(&addr.to_string());
    }
    server.add_service(service);
    server.add_service(pingora_core::services::background::background_service(
        "health checks",
        checks.supervisor(),
    ));

    let listen: Vec<String> = config
        .gateway
        .listen
        .iter()
        .map(|a| format!("http://{a}"))
        .collect();
    println!(
        "fleetgate {}: gateway \"{}\" listening on {}",
        env!("CARGO_PKG_VERSION"),
        config.gateway.name,
        listen.join(", ")
    );
    println!(
        "  loaded {} Ingress(es) ({} ignored), {} route(s), {} Service port(s), {} endpoint(s) in {} cluster(s)",
        served,
        ignored,
        route_count,
        config.services.len(),
        endpoints,
        clusters
    );
    log::info!("serving generation 1 from {}", config.source.display());
    server.run_forever()
}
