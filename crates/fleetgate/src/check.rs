//! `fleetgate check`: validate and summarise.

use crate::cli::CheckArgs;
use crate::load::{endpoint_counts, load_and_compile};

/// Runs `check`; returns the exit code.
pub fn check(args: &CheckArgs) -> i32 {
    let Some((config, snapshot)) =
        load_and_compile(&args.config.config, &fleetgate_pool::HealthChecks::new())
    else {
        return 1;
    };
    let (endpoints, clusters) = endpoint_counts(&config, &snapshot);
    println!("{}: configuration OK", config.source.display());
    println!(
        "  {} Ingress(es) served, {} ignored; {} route(s); {} Service port(s); {} endpoint(s) in {} of {} cluster(s); Ingresses from {}",
        snapshot.report.served.len(),
        snapshot.report.ignored.len(),
        snapshot.router.table().routes().len(),
        config.services.len(),
        endpoints,
        clusters,
        config.clusters.len(),
        config
            .manifest_source
            .describe(config.manifest_files.len()),
    );
    if !config.gateway.listen_tls.is_empty() || !snapshot.certificates.is_empty() {
        for line in crate::certificates::certificate_lines(&snapshot) {
            println!("  {line}");
        }
    }
    for line in snapshot.report.lines() {
        println!("  {line}");
    }
    let problems = snapshot.report.warnings.len() + snapshot.report.unbound.len();
    if args.strict && problems > 0 {
        eprintln!(
            "{}: {problems} warning(s), and --strict treats them as errors",
            config.source.display()
        );
        return 1;
    }
    0
}
