//! A binary upgrade that cannot take the service down.
//!
//! Pingora's hand-over: a new process started with `--upgrade` listens on
//! the upgrade socket and waits (about five seconds) for the listening
//! sockets; the old one, on SIGQUIT, sends them and shuts down. Pingora
//! shuts the old process down even when nobody took the sockets, which
//! would leave nothing listening. So fleetgate only hands over when a new
//! process is waiting: on SIGQUIT it first looks for a listener on the
//! upgrade socket (in `/proc/self/net/unix`, without connecting: the new process
//! accepts one connection only) and, if there is none, says so and keeps
//! serving.
//!
//! SIGUSR2 does the whole upgrade from inside the running process: it
//! starts the binary found at the path this process was started from (the
//! new one, after a package upgrade) with the same arguments plus
//! `--upgrade`, waits until it listens on the upgrade socket, and hands
//! over. The new process is a child of the old one, so under systemd it
//! stays in the unit's cgroup with its sandboxing and limits, and it tells
//! systemd it is the main process now (`MAINPID=`, which needs
//! `NotifyAccess=all`). If it exits before it is ready (a configuration
//! that does not load, a binary that does not start), the old process
//! keeps serving and `/status` says why.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest wait for a new process to listen on the upgrade socket.
const START_LIMIT: Duration = Duration::from_secs(60);

/// How often the wait looks.
const POLL: Duration = Duration::from_millis(20);

/// Whether a process listens on the unix socket at `path` (a new process
/// waiting for the listening sockets). Reads `/proc/self/net/unix`; never
/// connects.
pub fn new_process_waiting(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/net/unix") else {
        return false;
    };
    listening_in(&table, path)
}

/// Whether the `/proc/self/net/unix` text `table` has a listening socket bound
/// to `path`.
fn listening_in(table: &str, path: &Path) -> bool {
    /// `__SO_ACCEPTCON`: the socket listens.
    const ACCEPTING: u32 = 0x0001_0000;
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path
        fields.len() >= 8
            && Path::new(fields[7]) == path
            && u32::from_str_radix(fields[3], 16).is_ok_and(|f| f & ACCEPTING != 0)
    })
}

/// A new process not yet ready: killed and reaped when dropped (a start
/// that failed, timed out, or was given up for SIGTERM or SIGINT).
struct Starting(Option<Child>);

impl std::ops::Deref for Starting {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a child until handed over")
    }
}

impl std::ops::DerefMut for Starting {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child until handed over")
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last upgrade this process tried, for `/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpgradeRecord {
    /// When it was asked for (RFC 3339).
    pub at: String,
    /// Whether the sockets went to a new process.
    pub handed_over: bool,
    /// What happened.
    pub message: String,
}

/// Starts new processes for SIGUSR2 and keeps what happened.
pub struct Upgrader {
    /// The binary to start: the path this process was started from.
    exe: PathBuf,
    /// This process's arguments, without the program name.
    args: Vec<OsString>,
    /// The upgrade socket.
    pub socket: PathBuf,
    last: Mutex<Option<UpgradeRecord>>,
}

impl Upgrader {
    /// An upgrader for this process, handing over through `socket`.
    pub fn for_this_process(socket: PathBuf) -> Self {
        let mut argv = std::env::args_os();
        let program = argv.next().unwrap_or_default();
        // The path as started (resolved against the working directory),
        // not /proc/self/exe, which keeps naming the replaced binary.
        let exe = std::env::current_dir()
            .map(|dir| dir.join(&program))
            .unwrap_or_else(|_| PathBuf::from(&program));
        let exe = if Path::new(&program).components().count() > 1 {
            exe
        } else {
            std::env::current_exe().unwrap_or(exe)
        };
        let mut args: Vec<OsString> = argv.collect();
        if !args.iter().any(|a| a == "--upgrade") {
            args.push("--upgrade".into());
        }
        Upgrader {
            exe,
            args,
            socket,
            last: Mutex::new(None),
        }
    }

    /// Records the outcome of an upgrade attempt, and logs it.
    pub fn record(&self, handed_over: bool, message: String) {
        if handed_over {
            log::info!("upgrade: {message}");
        } else {
            log::error!("upgrade: {message}");
        }
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(UpgradeRecord {
            at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            handed_over,
            message,
        });
    }

    /// The last attempt, if any.
    pub fn last(&self) -> Option<UpgradeRecord> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts the new process and waits until it listens on the upgrade
    /// socket. On failure the new process is gone and the error says why.
    pub async fn start_new_process(&self) -> Result<u32, String> {
        if new_process_waiting(&self.socket) {
            return Err(format!(
                "another process already waits on {}; not starting a second",
                self.socket.display()
            ));
        }
        let child: Child = Command::new(&self.exe)
            .args(&self.args)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        let mut child = Starting(Some(child));
        let pid = child.id();
        log::info!(
            "upgrade: started {} (pid {pid}); waiting for it to listen on {}",
            self.exe.display(),
            self.socket.display()
        );
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Err(format!(
                        "the new process (pid {pid}) exited with {status} before it took the sockets; see its log lines above"
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("cannot watch the new process (pid {pid}): {e}")),
            }
            if new_process_waiting(&self.socket) {
                // It lives on as the gateway (reaped by whoever is its
                // parent once it exits).
                child.0 = None;
                return Ok(pid);
            }
            if started.elapsed() > START_LIMIT {
                return Err(format!(
                    "the new process (pid {pid}) did not listen on {} within {START_LIMIT:?}; stopped it",
                    self.socket.display()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 20843 /run/fleetgate/fleetgate-gw.upgrade.sock
0000000000000000: 00000003 00000000 00000000 0001 03 20851 /tmp/other.sock
0000000000000000: 00000002 00000000 00010000 0001 01 17990
";

    #[test]
    fn finds_a_listener_on_the_upgrade_socket_only() {
        assert!(listening_in(
            TABLE,
            Path::new("/run/fleetgate/fleetgate-gw.upgrade.sock")
        ));
        // Connected, not listening.
        assert!(!listening_in(TABLE, Path::new("/tmp/other.sock")));
        assert!(!listening_in(TABLE, Path::new("/tmp/none.sock")));
    }
}
