//! htpasswd files and the hashes in them.

use base64::Engine as _;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::apr1::apr1_hash;

/// One user's password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// bcrypt (`$2y$`, `$2b$`, `$2a$`), as written.
    Bcrypt(String),
    /// Apache MD5 (`$apr1$salt$hash`).
    Apr1 {
        /// Up to 8 characters.
        salt: String,
        /// 22 characters.
        hash: String,
    },
    /// SHA1 (`{SHA}` + base64 of the digest), unsalted.
    Sha1([u8; 20]),
}

impl std::fmt::Debug for PasswordHash {
    /// The kind only: hashes stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PasswordHash::Bcrypt(_) => "bcrypt",
            PasswordHash::Apr1 { .. } => "apr1",
            PasswordHash::Sha1(_) => "sha1",
        })
    }
}

impl PasswordHash {
    /// Reads a hash as `htpasswd` writes it.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with("$2y$") || s.starts_with("$2b$") || s.starts_with("$2a$") {
            // Checked now, so that a broken line fails the load, not a
            // request.
            s.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("not a bcrypt hash: {e}"))?;
            return Ok(PasswordHash::Bcrypt(s.to_string()));
        }
        if let Some(rest) = s.strip_prefix("$apr1$") {
            let (salt, hash) = rest
                .split_once('$')
                .ok_or("an $apr1$ hash is $apr1$<salt>$<hash>")?;
            if salt.is_empty() || salt.len() > 8 || hash.len() != 22 {
                return Err(
                    "an $apr1$ hash has a salt of 1 to 8 characters and 22 hash characters".into(),
                );
            }
            return Ok(PasswordHash::Apr1 {
                salt: salt.to_string(),
                hash: hash.to_string(),
            });
        }
        if let Some(b64) = s.strip_prefix("{SHA}") {
            let digest = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|d| <[u8; 20]>::try_from(d).ok())
                .ok_or("a {SHA} hash is the base64 of a 20-byte SHA1 digest")?;
            return Ok(PasswordHash::Sha1(digest));
        }
        Err(
            "unsupported hash: use bcrypt (htpasswd -B), MD5 (htpasswd -m, $apr1$) or SHA1 (htpasswd -s, {SHA}); \
             crypt (-d) and plain text are not accepted"
                .into(),
        )
    }

    /// Whether `password` has this hash (constant-time in the hash).
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            PasswordHash::Apr1 { salt, hash } => {
                let got = apr1_hash(password, salt.as_bytes());
                got.as_bytes().ct_eq(hash.as_bytes()).into()
            }
            PasswordHash::Sha1(digest) => {
                let got = Sha1::digest(password);
                got.as_slice().ct_eq(digest.as_slice()).into()
            }
        }
    }
}

/// A line of an htpasswd file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtpasswdError {
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for HtpasswdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// The users of an htpasswd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    users: Vec<(String, PasswordHash)>,
}

impl Credentials {
    /// Reads `user:hash` lines; blank lines and `#` comments are skipped.
    /// A user listed twice, a line without `:` or a hash of an unsupported
    /// kind is an error, and so is a file without users.
    pub fn parse(text: &str) -> Result<Self, HtpasswdError> {
        let mut users: Vec<(String, PasswordHash)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let err = |message: String| HtpasswdError {
                line: i + 1,
                message,
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| err("expected user:hash".into()))?;
            Self::add(&mut users, user, hash).map_err(err)?;
        }
        Self::finish(users)
    }

    /// Users and hashes given one by one (a Secret of type `auth-map`:
    /// each key a user, each value a hash).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, HtpasswdError> {
        let mut users = Vec::new();
        for (user, hash) in pairs {
            Self::add(&mut users, user, hash.trim()).map_err(|m| HtpasswdError {
                line: 0,
                message: format!("user {user:?}: {m}"),
            })?;
        }
        Self::finish(users)
    }

    fn add(users: &mut Vec<(String, PasswordHash)>, user: &str, hash: &str) -> Result<(), String> {
        if user.is_empty() {
            return Err("empty user name".into());
        }
        if users.iter().any(|(u, _)| u == user) {
            return Err(format!("user {user:?} is listed twice"));
        }
        let hash = PasswordHash::parse(hash).map_err(|m| format!("user {user:?}: {m}"))?;
        users.push((user.to_string(), hash));
        Ok(())
    }

    fn finish(users: Vec<(String, PasswordHash)>) -> Result<Self, HtpasswdError> {
        if users.is_empty() {
            return Err(HtpasswdError {
                line: 0,
                message: "no users: nobody could sign in".into(),
            });
        }
        Ok(Credentials { users })
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` may sign in with `password`. An unknown user is
    /// checked against the file's costliest hash (a bcrypt one if there
    /// is one) and refused, so that it takes as long as a known user
    /// when every user's hash is of one kind and cost.
    pub fn check(&self, user: &str, password: &[u8]) -> bool {
        match self.users.iter().find(|(u, _)| u == user) {
            Some((_, hash)) => hash.verify(password),
            None => {
                let costliest = self
                    .users
                    .iter()
                    .map(|(_, h)| h)
                    .find(|h| matches!(h, PasswordHash::Bcrypt(_)))
                    .or_else(|| self.users.first().map(|(_, h)| h));
                if let Some(hash) = costliest {
                    let _ = hash.verify(password);
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_hash_checks() {
        let creds = Credentials::parse(
            "# users\n\
             apr:$apr1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1\n\
             sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\r\n\
             \n\
             bc:$2y$05$.6oI7Iu4gG2MSSa8SRXvQ.VNwhYYyqeVvc6JlUPrEoO.XB7jdntAC\n",
        )
        .unwrap();
        assert_eq!(creds.len(), 3);
        assert!(creds.check("apr", b"password"));
        assert!(creds.check("sha", b"password"));
        assert!(!creds.check("apr", b"Password"));
        assert!(!creds.check("sha", b""));
        assert!(!creds.check("nobody", b"password"));
        assert!(!creds.check("bc", b"wrong"));
        assert!(creds.check("bc", b"password"));
    }

    #[test]
    fn unreadable_lines_name_their_number() {
        let err = Credentials::parse("a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nb:plain\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unsupported hash"), "{err}");
        let err = Credentials::parse(
            "a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\na:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
        )
        .unwrap_err();
        assert!(err.message.contains("twice"));
        assert_eq!(Credentials::parse("no colon").unwrap_err().line, 1);
        assert_eq!(Credentials::parse("# nobody\n").unwrap_err().line, 0);
        assert!(Credentials::parse("x:$2y$05$short").is_err());
        assert!(Credentials::parse("x:$apr1$toolongsalt$FBwExRW4dCc8aL.OvjpIE1").is_err());
    }

    #[test]
    fn debug_output_hides_hashes() {
        let creds = Credentials::parse("a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=").unwrap();
        assert!(!format!("{creds:?}").contains("W6ph"));
    }
}
