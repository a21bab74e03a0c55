//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// fleetgate: one gateway address in front of the same application in
/// several Kubernetes clusters, routing by Ingress rules.
#[derive(Debug, Parser)]
#[command(name = "fleetgate", version = crate::build_info::LONG_VERSION, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve traffic with the given configuration until SIGTERM (graceful)
    /// or SIGINT (immediate).
    Run(RunArgs),
    /// Validate the configuration and every manifest it names; print a
    /// summary and exit 0, or print every error and exit 1.
    Check(CheckArgs),
    /// Print the compiled route table: host, path, type, Ingress, Service
    /// and endpoints per cluster.
    Routes(RoutesArgs),
    /// Take a cluster out of rotation on the running gateway (planned
    /// maintenance): new requests go to the other clusters, requests in
    /// flight finish. Talks to the admin API named in the configuration;
    /// the drain holds across reloads (and restarts with `[admin]
    /// drain_file`).
    Drain(DrainArgs),
    /// Let a drained cluster take traffic again.
    Undrain(DrainArgs),
}

/// Arguments of `drain` and `undrain`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The configuration file of the running gateway (for its admin
    /// address and token).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The cluster id (`[[cluster]] id`).
    #[arg(value_name = "CLUSTER")]
    pub cluster: String,
    /// Return only once no request is in flight to the cluster (exit 1 if
    /// some still are after --timeout).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. "90s" (default 5m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// The configuration file argument shared by every subcommand.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
}

/// Arguments of `routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also list every Service port's endpoints: address, cluster, zone,
    /// condition (ready or terminating), weight and where they came from.
    #[arg(long)]
    pub endpoints: bool,
    /// What-if: add a column with where each route's traffic would go,
    /// in shares per cluster, if these clusters or zones were down (ids
    /// or zone names; repeat the flag or separate with commas).
    #[arg(long, value_name = "CLUSTER|ZONE", value_delimiter = ',')]
    pub down: Vec<String>,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also fail (exit 1) on warnings: unsupported or unknown annotations,
    /// backends without a declared Service or endpoints, unbound canaries,
    /// certificate problems. For CI gates.
    #[arg(long)]
    pub strict: bool,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Reload when the configuration file or any manifest changes (SIGHUP
    /// always reloads).
    #[arg(long)]
    pub watch: bool,
    /// Take over the listening sockets of a running fleetgate (graceful
    /// binary upgrade): start the new binary with --upgrade, then send
    /// SIGQUIT to the old process, which hands its sockets over and drains.
    #[arg(long)]
    pub upgrade: bool,
}
