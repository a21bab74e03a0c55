//! HTTP basic authentication (RFC 7617) against htpasswd files, as the
//! `auth-type: basic` Ingress annotation asks, and the logic of external
//! authentication (`auth-url`, see [`forward`]).
//!
//! An htpasswd file holds one `user:hash` line per user. The hashes the
//! `htpasswd` tool writes are understood: bcrypt (`-B`, `$2y$`), MD5
//! (`-m`, the default of Apache's tool, `$apr1$`) and SHA1 (`-s`,
//! `{SHA}`). Others (the DES `crypt` of `-d`, plain text) are refused when
//! the file is read, not when a request comes: a file fleetgate cannot
//! check would lock everybody out, or worse, in.
//!
//! Pure logic with no I/O: the configuration crate reads the files, the
//! proxy's module asks [`Credentials::check`] per request. Every
//! comparison of secret material is constant-time; an unknown user costs
//! the same check as a wrong password, so timing does not tell which
//! users exist.

mod apr1;
mod basic;
pub mod forward;
mod htpasswd;

pub use basic::parse_basic;
pub use htpasswd::{Credentials, HtpasswdError, PasswordHash};
