//! `fleetgate drain` and `fleetgate undrain`: the admin API's drain calls
//! from the command line, for maintenance scripts.
//!
//! The admin address and token come from the configuration file, so the
//! command takes the same `-c` as the others. `drain --wait` returns once
//! no request is in flight to the cluster any more: the moment its
//! maintenance may begin.

use std::time::{Duration, Instant};

use fleetgate_config::Config;
use serde_json::Value;

use crate::admin_client::AdminClient;
use crate::cli::DrainArgs;

/// Runs `drain` (`drained = true`) or `undrain`; returns the exit code.
pub fn drain(args: &DrainArgs, drained: bool) -> i32 {
    let path = &args.config.config;
    let admin = match Config::read_text(path).and_then(|text| Config::admin_of(path, &text)) {
        Ok(a) => a,
        Err(errors) => {
            eprintln!("{errors}");
            return 1;
        }
    };
    let client = AdminClient::new(&admin);
    let action = if drained { "drain" } else { "undrain" };
    let cluster = &args.cluster;
    let mut state = match call(&client, "POST", &format!("/clusters/{cluster}/{action}")) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("fleetgate {action}: {e}");
            return 1;
        }
    };
    println!("{}", describe(&state));
    if !(drained && args.wait) {
        return 0;
    }
    if crate::drains::is_done(state["phase"].as_str().unwrap_or_default()) {
        return 0;
    }
    let deadline = Instant::now() + args.timeout.unwrap_or(Duration::from_secs(300));
    while !crate::drains::is_done(state["phase"].as_str().unwrap_or_default()) {
        if Instant::now() >= deadline {
            eprintln!(
                "fleetgate drain: cluster {cluster} still has {} request(s) in flight after the timeout; it stays drained",
                state["in_flight"]
            );
            return 1;
        }
        std::thread::sleep(Duration::from_millis(200));
        state = match call(&client, "GET", &format!("/clusters/{cluster}")) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("fleetgate drain: {e}");
                return 1;
            }
        };
    }
    println!("{}", describe(&state));
    0
}

/// One call; a non-200 answer is an error carrying the API's message.
fn call(client: &AdminClient, method: &str, path: &str) -> Result<Value, String> {
    let (status, body) = client.request(method, path)?;
    if status != 200 {
        return Err(body.trim_end().to_string());
    }
    serde_json::from_str(&body).map_err(|e| format!("unexpected answer from the admin API: {e}"))
}

/// "cluster zone-a: draining, 3 request(s) in flight".
fn describe(state: &Value) -> String {
    format!(
        "cluster {}: {}, {} request(s) in flight",
        state["id"].as_str().unwrap_or("?"),
        state["phase"].as_str().unwrap_or("?"),
        state["in_flight"]
    )
}
