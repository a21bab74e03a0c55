//! End to end: zone drills on real network faults. `tests/clients/drill.py`
//! builds network namespaces (a client, the gateway, two zones with two
//! web-demo pods each) joined by veth links, runs the real fleetgate
//! binary in the gateway's, sends an open-loop load from the client's,
//! and breaks zone A: link down, all packets dropped, pods that accept and
//! never answer, 30 % loss, added latency, a slow zone. Needs root (CI runs
//! as root).

use std::process::{Command, Stdio};

use fleetgate_e2e::bin_path;
use fleetgate_e2e::python::client_script;
use serde_json::Value;

/// Runs `drills` through fleetgate; returns one result per drill. Asserts
/// that nothing of the topology is left behind.
fn run_drills(drills: &str) -> Vec<Value> {
    run_drills_with(drills, &[])
}

/// [`run_drills`] with more arguments to drill.py.
fn run_drills_with(drills: &str, extra: &[&str]) -> Vec<Value> {
    let bin_dir = bin_path("fleetgate");
    let bin_dir = bin_dir.parent().expect("target directory");
    let child = Command::new("python3")
        .arg(client_script("drill.py"))
        .args(["--bin-dir", bin_dir.to_str().unwrap()])
        .args(["--proxy", "fleetgate", "--drill", drills])
        .args(["--before", "2", "--during", "5", "--after", "4", "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run drill.py");
    let pid = child.id();
    let out = child.wait_with_output().expect("drill.py");
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(
        !namespaces.contains(&format!("fgd{pid}-")),
        "namespaces left behind: {namespaces}"
    );
    assert!(
        out.status.success(),
        "drill.py failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("drill.py prints JSON")
}

fn show(r: &Value) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

/// A zone cut off (link down, every packet dropped, or pods that accept and
/// never answer) costs no request: requests that were on their way there
/// are retried in the other zone, health checks take the zone out within
/// a few seconds, and it gets traffic back once healed.
#[test]
fn a_partitioned_zone_loses_no_request_and_gets_traffic_back() {
    for r in run_drills("link-down,loss-100,blackhole") {
        println!("{}", show(&r));
        assert_eq!(r["failed"], 0, "{}", show(&r));
        assert!(
            r["requests"].as_u64().unwrap() > 1500,
            "load too light: {}",
            show(&r)
        );
        assert_eq!(
            r["shift_settled"],
            true,
            "zone A still got requests at the end of the fault: {}",
            show(&r)
        );
        assert!(r["last_touch_s"].as_f64().unwrap() < 4.5, "{}", show(&r));
        assert!(
            r["return_s"].is_number(),
            "zone A never got traffic back: {}",
            show(&r)
        );
        assert!(
            r["zone_a_share_during"].as_f64().unwrap() < 0.05,
            "{}",
            show(&r)
        );
    }
}

/// A zone that is slow, or whose link adds latency, still answers: no
/// request fails, and its share comes back after the heal. 30 % packet
/// loss is survivable too: retries cover the requests whose packets are
/// lost for longer than the read timeout.
#[test]
fn a_degraded_zone_loses_no_request() {
    for r in run_drills("slow,latency,loss-30") {
        println!("{}", show(&r));
        assert_eq!(r["failed"], 0, "{}", show(&r));
        assert!(r["return_s"].is_number(), "{}", show(&r));
    }
}

/// Brown-outs: a zone that answers 300 ms late gets far less than its half
/// of the traffic when the Service balances by least request (round robin
/// would give it exactly half), and a zone that fails half its requests
/// with 503 is ejected by outlier detection while retries hide the
/// failures from clients.
#[test]
fn a_browned_out_zone_gets_less_traffic() {
    for r in run_drills_with("slow,errors", &["--balance", "least_request"]) {
        println!("{}", show(&r));
        assert_eq!(r["failed"], 0, "{}", show(&r));
        let share = r["zone_a_share_during"].as_f64().unwrap();
        assert!(
            share < 0.3,
            "zone A kept {share} of the traffic: {}",
            show(&r)
        );
    }
}

/// Non-idempotent requests (POST) are never sent twice: one that reached
/// zone A before the gateway stopped using it, and got no answer, fails
/// (504) rather than being retried. What is lost is bounded by what was
/// sent to zone A before the shift: about half the load (zone A's share)
/// for `last_touch_s`. A cut link loses only the few on connections
/// already open; pods that accept and never answer lose all of them.
#[test]
fn lost_non_idempotent_requests_are_bounded_by_the_shift() {
    for r in run_drills_with("link-down,blackhole", &["--method", "POST"]) {
        println!("{}", show(&r));
        let failed = r["failed"].as_f64().unwrap();
        let last_touch = r["last_touch_s"].as_f64().unwrap();
        // 200 requests/s, half of them to zone A, plus a margin.
        let bound = 0.5 * 200.0 * (last_touch + 0.5) + 5.0;
        assert!(
            failed <= bound,
            "{failed} lost, bound {bound}: {}",
            show(&r)
        );
        for f in r["failures"].as_array().unwrap() {
            let f = f.as_str().unwrap();
            assert!(
                f.starts_with("status 504") || f.starts_with("status 502"),
                "only the gateway's timeouts: {f}"
            );
        }
        assert_eq!(r["shift_settled"], true, "{}", show(&r));
    }
}
