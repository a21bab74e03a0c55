//! `fleetgate routes`: print the compiled route table.

use std::collections::BTreeMap;
use std::fmt::Write;

use fleetgate_proxy::{Route, Snapshot};

use crate::cli::ConfigArgs;
use crate::load::{compile, load_config};

/// "c7fb82a1=9 cd3007b2=1" for a route's pool, or why there is none.
fn endpoints_per_cluster(snapshot: &Snapshot, route: &Route) -> String {
    let Some(pool) = snapshot.pool(route) else {
        return "(service not declared: 503)".to_string();
    };
    if pool.is_empty() {
        return "(no endpoints: 503)".to_string();
    }
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for e in pool.endpoints() {
        *per.entry(e.cluster.as_str()).or_default() += 1;
    }
    let mut out = String::new();
    for (cluster, n) in per {
        let _ = write!(
            out,
            "{}{cluster}={n}",
            if out.is_empty() { "" } else { " " }
        );
    }
    out
}

/// Renders the table as aligned text.
pub fn render(snapshot: &Snapshot) -> String {
    let mut rows = vec![[
        "HOST".to_string(),
        "PATH".to_string(),
        "TYPE".to_string(),
        "INGRESS".to_string(),
        "SERVICE".to_string(),
        "ENDPOINTS".to_string(),
    ]];
    for r in snapshot.table.routes() {
        let route = &snapshot.routes[r.target as usize];
        rows.push([
            r.host.to_string(),
            r.path.clone(),
            r.path_type.to_string(),
            route.ingress.to_string(),
            route.service.to_string(),
            endpoints_per_cluster(snapshot, route),
        ]);
    }
    for (host, target) in snapshot.table.host_defaults() {
        let route = &snapshot.routes[*target as usize];
        rows.push([
            host.to_string(),
            "(default backend)".to_string(),
            "-".to_string(),
            route.ingress.to_string(),
            route.service.to_string(),
            endpoints_per_cluster(snapshot, route),
        ]);
    }
    if let Some(target) = snapshot.table.global_default() {
        let route = &snapshot.routes[*target as usize];
        rows.push([
            "*".to_string(),
            "(gateway default backend)".to_string(),
            "-".to_string(),
            "-".to_string(),
            route.service.to_string(),
            endpoints_per_cluster(snapshot, route),
        ]);
    }
    let mut widths = [0usize; 6];
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
    if snapshot.table.routes().is_empty() && snapshot.table.global_default().is_none() {
        out.push_str("(no routes: every request gets 404)\n");
    }
    out
}

/// Runs `routes`; returns the exit code.
pub fn routes(args: &ConfigArgs) -> i32 {
    let Some(config) = load_config(&args.config) else {
        return 1;
    };
    let snapshot = compile(&config, 1, &fleetgate_pool::HealthChecks::new());
    print!("{}", render(&snapshot));
    for (name, reason) in &snapshot.report.ignored {
        println!("ignored: Ingress {name}: {reason}");
    }
    for w in &snapshot.report.warnings {
        println!("warning: {w}");
    }
    0
}
