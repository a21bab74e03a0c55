//! The Python protocol clients and servers in `tests/clients/`: real gRPC
//! (grpcio), WebSocket (websockets) and HTTP/2 (h2) peers.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::process::Backend;

/// `tests/clients/<script>`.
pub fn client_script(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(script)
}

/// Starts a Python server (`grpc_server.py`, `ws_server.py`) answering as
/// `name` on an ephemeral loopback port, with `extra` arguments, and waits
/// for its readiness line.
pub fn python_server(script: &str, name: &str, extra: &[&str]) -> Backend {
    let child = Command::new("python3")
        .arg(client_script(script))
        .args(["--listen", "127.0.0.1:0", "--name", name])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn python3 server");
    Backend::adopt(child, name)
}

/// Runs a Python client to completion and parses the JSON it prints.
pub fn python_client(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(client_script(script))
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .expect("run python3 client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{script} {args:?} printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
