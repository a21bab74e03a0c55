//! Log rotation: SIGUSR1 (as nginx and Traefik take it) and SIGHUP make
//! the access log open its path again, so `mv` + a signal, or logrotate's
//! `postrotate`, rotates it without losing a line.
//!
//! Without a handler, SIGUSR1 would end the process (the default action),
//! so it is installed even when the log goes to stdout or is off.

use fleetgate_proxy::AccessLog;

/// Installs the handler thread.
pub fn watch(log: AccessLog) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGUSR1, SIGHUP])?;
    std::thread::Builder::new()
        .name("fleetgate-log-reopen".into())
        .spawn(move || {
            for _ in signals.forever() {
                // Does nothing unless the log goes to a file.
                log.reopen();
            }
        })?;
    Ok(())
}
