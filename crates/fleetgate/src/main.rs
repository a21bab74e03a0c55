//! `fleetgate`: the multi-cluster edge gateway binary.
//!
//! `fleetgate run -c FILE` serves; `fleetgate check -c FILE` validates;
//! `fleetgate routes -c FILE` prints the compiled route table. Logging goes
//! through env_logger (`RUST_LOG`, default `info`). A running gateway
//! reloads on SIGHUP (and on file changes with `--watch`), drains on
//! SIGTERM, and serves an admin API (see `admin`).

mod admin;
mod admin_auth;
mod admin_client;
mod background;
mod build_info;
mod certificates;
mod check;
mod cli;
mod discovery;
mod drain_cmd;
mod drains;
mod hub;
mod hub_cache;
mod live_settings;
mod load;
mod log_reopen;
mod memory;
mod metrics;
mod notify;
mod pid_file;
mod reload;
mod replace_file;
mod routes;
mod run;
mod shutdown;
mod state;
mod status_page;
mod upgrade;
mod watchdog;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Run(_) => "info",
        _ => "warn",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    // A panic anywhere (a bug) goes to the log with its thread, at error
    // level, where an operator's alerting looks; what survives it (a
    // request, a health-check pass, a reload) says so itself.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        log::error!(
            "panic in thread {}: {info}",
            thread.name().unwrap_or("unnamed")
        );
    }));
    if !matches!(cli.command, Command::Run(_)) {
        // Listing commands end quietly when their reader goes away
        // (`fleetgate routes -c ... | head`), like other Unix tools; `run`
        // keeps Rust's default of ignoring SIGPIPE, which Pingora needs.
        // SAFETY: restores the default disposition of one signal before any
        // thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let code = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Check(args) => check::check(&args),
        Command::Routes(args) => routes::routes(&args),
        Command::Drain(args) => drain_cmd::drain(&args, true),
        Command::Undrain(args) => drain_cmd::drain(&args, false),
    };
    std::process::exit(code);
}
