//! `fleetgate`: the multi-cluster edge gateway binary.
//!
//! `fleetgate run -c FILE` serves; `fleetgate check -c FILE` validates;
//! `fleetgate routes -c FILE` prints the compiled route table. Logging goes
//! through env_logger (`RUST_LOG`, default `info`).

mod check;
mod cli;
mod load;
mod routes;
mod run;
mod shutdown;

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
    let code = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Check(args) => check::check(&args),
        Command::Routes(args) => routes::routes(&args),
    };
    std::process::exit(code);
}
