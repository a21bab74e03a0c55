//! `fleetgate routes`: print the compiled route table.

use std::fmt::Write;

use fleetgate_pool::EndpointPool;
use fleetgate_proxy::Snapshot;
use fleetgate_router::{outlook, Down, Outlook, Target, TargetPools};

use crate::cli::RoutesArgs;
use crate::load::load_and_compile;
use fleetgate_config::Config;

/// "c7fb82a1=9 cd3007b2=1" for a pool, with unavailable endpoints noted.
fn per_cluster(pool: &EndpointPool) -> String {
    if pool.is_empty() {
        return "(none)".to_string();
    }
    let mut out = String::new();
    for (cluster, (up, n)) in pool.availability_by_cluster() {
        let sep = if out.is_empty() { "" } else { " " };
        if up == n {
            let _ = write!(out, "{sep}{cluster}={n}");
        } else {
            let _ = write!(out, "{sep}{cluster}={up}/{n} up");
        }
    }
    let draining = pool
        .endpoints()
        .filter(|e| e.weight == 0 && e.condition == fleetgate_pool::Condition::Terminating)
        .count();
    if draining > 0 {
        let _ = write!(out, " (+{draining} terminating, draining)");
    }
    out
}

/// Where a target's traffic goes, per cluster.
fn describe_target(target: &Target) -> String {
    match &target.pools {
        TargetPools::Undeclared => "(service not declared: 503)".to_string(),
        TargetPools::Whole(pool) if pool.is_empty() => "(no endpoints: 503)".to_string(),
        TargetPools::Whole(pool) => per_cluster(pool),
        TargetPools::Tiered(t) => {
            let tiers: Vec<String> = t
                .pools
                .iter()
                .zip(&t.names)
                .map(|(p, name)| format!("{name}: {}", per_cluster(p)))
                .collect();
            tiers.join("; then ")
        }
    }
}

/// Where `target`'s traffic would go with `down` down, as a table cell;
/// `canary`: a canary's requests fall back to main when it has nowhere.
pub fn describe_outlook(target: &Target, down: &Down, canary: bool) -> String {
    match outlook(target, down) {
        Outlook::Nowhere if canary => "main (no canary endpoint left)".to_string(),
        Outlook::Nowhere => "503 (no endpoint left)".to_string(),
        shares => shares.to_string(),
    }
}

/// Splits `names` into ids and zones of `clusters`; an error names what
/// is neither.
pub fn parse_down(
    clusters: &[fleetgate_config::Cluster],
    names: &[String],
) -> Result<Down, String> {
    let mut down = Down::default();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        down.asked.push(name.to_string());
        if clusters.iter().any(|c| c.id == name) {
            down.clusters.push(name.to_string());
        } else if clusters.iter().any(|c| c.zone.as_deref() == Some(name)) {
            // The zone's clusters, and endpoints labelled with the zone
            // (a live source's EndpointSlice zone may differ from its
            // cluster's configured one).
            down.zones.push(name.to_string());
            down.clusters.extend(
                clusters
                    .iter()
                    .filter(|c| c.zone.as_deref() == Some(name))
                    .map(|c| c.id.clone()),
            );
        } else {
            let ids: Vec<&str> = clusters.iter().map(|c| c.id.as_str()).collect();
            let mut zones: Vec<&str> = clusters.iter().filter_map(|c| c.zone.as_deref()).collect();
            zones.dedup();
            return Err(format!(
                "--down {name}: no cluster or zone of that name; clusters: {}; zones: {}",
                ids.join(", "),
                if zones.is_empty() {
                    "(none)".to_string()
                } else {
                    zones.join(", ")
                }
            ));
        }
    }
    Ok(down)
}

/// Renders the table, with a what-if column when `down` is given.
pub fn render(snapshot: &Snapshot, down: Option<&Down>) -> String {
    let what_if = down.map(|d| format!("IF {} DOWN", d.asked.join(", ")));
    let mut rows = vec![[
        "HOST".to_string(),
        "PATH".to_string(),
        "TYPE".to_string(),
        "INGRESS".to_string(),
        "SERVICE".to_string(),
        "ENDPOINTS".to_string(),
        what_if.clone().unwrap_or_default(),
    ]];
    let cell = |target: &Target, canary: bool| {
        down.map(|d| describe_outlook(target, d, canary))
            .unwrap_or_default()
    };
    for r in snapshot.router.table().routes() {
        let route = snapshot.router.route(r.target);
        rows.push([
            r.host.to_string(),
            r.path.clone(),
            if r.regex {
                format!("{} (regex)", r.path_type)
            } else {
                r.path_type.to_string()
            },
            route.ingress.to_string(),
            route.main.service.to_string(),
            describe_target(&route.main),
            cell(&route.main, false),
        ]);
        if let Some(canaries) = &route.canaries {
            for (i, (ingress, condition)) in canaries.describe().into_iter().enumerate() {
                let target = canaries.target(i);
                rows.push([
                    String::new(),
                    format!("  canary: {condition}"),
                    String::new(),
                    ingress,
                    target.service.to_string(),
                    describe_target(target),
                    cell(target, true),
                ]);
            }
        }
    }
    for (host, target) in snapshot.router.table().host_defaults() {
        let route = snapshot.router.route(*target);
        rows.push([
            host.to_string(),
            "(default backend)".to_string(),
            "-".to_string(),
            route.ingress.to_string(),
            route.main.service.to_string(),
            describe_target(&route.main),
            cell(&route.main, false),
        ]);
    }
    if let Some(target) = snapshot.router.table().global_default() {
        let route = snapshot.router.route(*target);
        rows.push([
            "*".to_string(),
            "(gateway default backend)".to_string(),
            "-".to_string(),
            "-".to_string(),
            route.main.service.to_string(),
            describe_target(&route.main),
            cell(&route.main, false),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if snapshot.router.table().routes().is_empty()
        && snapshot.router.table().global_default().is_none()
    {
        out.push_str("(no routes: every request gets 404)\n");
    }
    out
}

/// Every Service port's endpoints, one line each: address, cluster, zone,
/// condition, weight and source.
pub fn render_endpoints(snapshot: &Snapshot, config: &Config) -> String {
    let mut out = String::new();
    for pool in snapshot
        .router
        .pools()
        .iter()
        .filter(|p| config.services.iter().any(|s| s.key() == p.name()))
    {
        let _ = writeln!(out, "{}:", pool.name());
        if pool.is_empty() {
            out.push_str("  (no endpoints)\n");
        }
        for e in pool.endpoints() {
            let source = config
                .clusters
                .iter()
                .find(|c| c.id == e.cluster)
                .map_or("-", |c| c.source.kind());
            let _ = writeln!(
                out,
                "  {:<24} cluster={} zone={} {} weight={} source={source}",
                e.address.to_string(),
                e.cluster,
                e.zone.as_deref().unwrap_or("-"),
                e.condition.as_str(),
                e.weight,
            );
        }
    }
    out
}

/// Runs `routes`; returns the exit code.
pub fn routes(args: &RoutesArgs) -> i32 {
    let Some((config, snapshot)) =
        load_and_compile(&args.config.config, &fleetgate_pool::HealthChecks::new())
    else {
        return 1;
    };
    let down = match parse_down(&config.clusters, &args.down) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fleetgate routes: {e}");
            return 1;
        }
    };
    print!("{}", render(&snapshot, (!down.is_empty()).then_some(&down)));
    if args.endpoints {
        println!();
        print!("{}", render_endpoints(&snapshot, &config));
    }
    for line in crate::certificates::certificate_lines(&snapshot) {
        println!("{line}");
    }
    for line in snapshot.report.lines() {
        println!("{line}");
    }
    0
}
