//! The `[admin] token` and the `[log]` settings, applied in place by a
//! reload: the new token is required from the next admin request on (the
//! old one stops working at once), and the access log moves to its new
//! destination and format from its next line.
//!
//! The new log file is opened before anything else of the reload is
//! applied, so a path that cannot be opened rejects the reload whole.

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwapOption;
use fleetgate_config::{AccessLogFormat, AccessLogTarget, Config, LogSettings};
use fleetgate_proxy::{AccessLog, Destination, LogFormat};

/// The reloadable admin and log settings in use.
pub struct LiveSettings {
    token: ArcSwapOption<String>,
    access_log: AccessLog,
    log: Mutex<LogSettings>,
}

/// Where `settings` send the access log.
pub fn destination(settings: &LogSettings) -> Destination {
    match &settings.access {
        AccessLogTarget::Off => Destination::Off,
        AccessLogTarget::Stdout => Destination::Stdout,
        AccessLogTarget::File(p) => Destination::File(p.clone()),
    }
}

/// The log format `settings` ask for.
pub fn format(settings: &LogSettings) -> LogFormat {
    match settings.format {
        AccessLogFormat::Text => LogFormat::Text,
        AccessLogFormat::Json => LogFormat::Json,
    }
}

impl LiveSettings {
    /// The settings a process starts with: `access_log` was started from
    /// `log`.
    pub fn new(token: Option<String>, access_log: AccessLog, log: LogSettings) -> Self {
        LiveSettings {
            token: ArcSwapOption::from(token.map(Arc::new)),
            access_log,
            log: Mutex::new(log),
        }
    }

    /// The admin token required now, if any.
    pub fn token(&self) -> Option<Arc<String>> {
        self.token.load_full()
    }

    /// The access log.
    pub fn access_log(&self) -> &AccessLog {
        &self.access_log
    }

    /// Applies `config`'s token and log settings, and names those that
    /// changed. Only opening a new log file can fail; then nothing is
    /// changed.
    pub fn apply(&self, config: &Config) -> Result<Vec<&'static str>, String> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = Vec::new();
        if log.access != config.log.access {
            // The new destination and format start at the same line.
            let to = destination(&config.log);
            self.access_log
                .retarget(&to, format(&config.log))
                .map_err(|e| match &to {
                    Destination::File(p) => format!(
                        "[log] access: cannot open {}: {e}; nothing was applied",
                        p.display()
                    ),
                    _ => format!("[log] access: {e}; nothing was applied"),
                })?;
            changed.push("[log] access");
        } else if log.format != config.log.format {
            self.access_log.set_format(format(&config.log));
        }
        if log.format != config.log.format {
            changed.push("[log] format");
        }
        if self.token().as_deref() != config.admin.token.as_ref() {
            changed.push("[admin] token");
        }
        *log = config.log.clone();
        self.token.store(config.admin.token.clone().map(Arc::new));
        Ok(changed)
    }
}
