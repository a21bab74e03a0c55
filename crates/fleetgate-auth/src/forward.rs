//! External ("forward") authentication, as ingress-nginx's `auth-url`
//! annotation asks: before a request goes upstream, the gateway asks an
//! authentication service; a 2xx lets the request through (with headers
//! the service chose), 401 and 403 go back to the client (401 may instead
//! send a browser to a sign-in page), anything else is a 500.
//!
//! This module is the logic without I/O: the URL templates with the
//! nginx variables users put in them (`https://$host/oauth2/auth`,
//! `...?rd=$escaped_request_uri`), the sign-in URL ingress-nginx builds,
//! and what an answer of the service means. The proxy does the request.

use std::fmt::Write as _;

/// The nginx variables a template may use.
const VARIABLES: [&str; 8] = [
    "escaped_request_uri",
    "request_uri",
    "best_http_host",
    "http_host",
    "host",
    "pass_access_scheme",
    "scheme",
    "remote_addr",
];

/// What the variables of one request stand for.
#[derive(Debug, Clone, Copy)]
pub struct RequestVars<'a> {
    /// `$host`: the request's host, lower-case, without port.
    pub host: &'a str,
    /// `$http_host`, `$best_http_host`: the `Host` header as sent.
    pub http_host: &'a str,
    /// `$scheme`, `$pass_access_scheme`: `http` or `https`.
    pub scheme: &'a str,
    /// `$request_uri`: the path and query as sent.
    pub request_uri: &'a str,
    /// `$remote_addr`: the client's address.
    pub remote_addr: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Variable(&'static str),
}

/// A URL with nginx variables, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    pieces: Vec<Piece>,
}

impl UrlTemplate {
    /// Parses `text`: an absolute `http://` or `https://` URL in which `$name`
    /// (or `${name}`) is one of the supported variables.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err("an absolute http:// or https:// URL".into());
        }
        if let Some(c) = text
            .chars()
            .find(|c| c.is_ascii_whitespace() || c.is_ascii_control() || !c.is_ascii())
        {
            return Err(format!("{c:?} cannot appear in a URL (percent-encode it)"));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            if dollar > 0 {
                pieces.push(Piece::Literal(rest[..dollar].to_string()));
            }
            let after = &rest[dollar + 1..];
            let (name, used) = match after.strip_prefix('{') {
                Some(inner) => {
                    let end = inner
                        .find('}')
                        .ok_or_else(|| "an unclosed ${".to_string())?;
                    (&inner[..end], end + 2)
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], end)
                }
            };
            let variable = VARIABLES.iter().find(|v| **v == name).ok_or_else(|| {
                format!(
                    "${name} is not a variable fleetgate fills in (it knows ${})",
                    VARIABLES.join(", $")
                )
            })?;
            pieces.push(Piece::Variable(variable));
            rest = &after[used..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        Ok(UrlTemplate { pieces })
    }

    /// Whether the template has no variable.
    pub fn is_fixed(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Literal(_)))
    }

    /// Writes the URL for a request into `out` (cleared first).
    pub fn expand(&self, vars: &RequestVars<'_>, out: &mut String) {
        out.clear();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Variable(name) => match *name {
                    "escaped_request_uri" => escape_into(vars.request_uri, out),
                    "request_uri" => out.push_str(vars.request_uri),
                    "best_http_host" | "http_host" => out.push_str(vars.http_host),
                    "host" => out.push_str(vars.host),
                    "pass_access_scheme" | "scheme" => out.push_str(vars.scheme),
                    _ => out.push_str(vars.remote_addr),
                },
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters (nginx's
/// `$escaped_request_uri` for a query parameter value).
fn escape_into(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The sign-in URL a browser is sent to when the service answers 401, as
/// ingress-nginx builds it from `auth-signin`: unless the URL already has
/// the redirect parameter (`param`, `rd` by default), it gets
/// `param=$pass_access_scheme://$http_host$escaped_request_uri`, so that
/// the sign-in page can send the user back.
pub fn sign_in_template(signin: &str, param: &str) -> String {
    let query = signin.split_once('?').map(|(_, q)| q);
    let has_param = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some(param))
    });
    if has_param {
        return signin.to_string();
    }
    let separator = match query {
        None => '?',
        Some("") => '\0',
        Some(_) => '&',
    };
    let mut url = signin.to_string();
    if separator != '\0' {
        url.push(separator);
    }
    url.push_str(param);
    url.push_str("=$pass_access_scheme://$http_host$escaped_request_uri");
    url
}

/// What an answer of the authentication service means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: the request goes on.
    Allow,
    /// 401: the client must authenticate (or sign in).
    Unauthenticated,
    /// 403: the client may not.
    Forbidden,
    /// Any other status, or no answer: 500, the request does not go on.
    Failed,
}

impl Verdict {
    /// The verdict of a status.
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Verdict::Allow,
            401 => Verdict::Unauthenticated,
            403 => Verdict::Forbidden,
            _ => Verdict::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: RequestVars<'static> = RequestVars {
        host: "shop.example.com",
        http_host: "Shop.example.com:8443",
        scheme: "https",
        request_uri: "/cart?id=1&x=a b",
        remote_addr: "10.1.2.3",
    };

    fn expand(t: &str) -> String {
        let mut out = String::new();
        UrlTemplate::parse(t).unwrap().expand(&VARS, &mut out);
        out
    }

    #[test]
    fn variables_are_filled_in() {
        assert_eq!(
            expand("https://$host/oauth2/auth"),
            "https://shop.example.com/oauth2/auth"
        );
        assert_eq!(
            expand("http://auth/check?rd=$escaped_request_uri&ip=${remote_addr}"),
            "http://auth/check?rd=%2Fcart%3Fid%3D1%26x%3Da%20b&ip=10.1.2.3"
        );
        assert_eq!(
            expand("https://$http_host/x"),
            "https://Shop.example.com:8443/x"
        );
    }

    #[test]
    fn unknown_variables_and_non_urls_are_refused() {
        assert!(UrlTemplate::parse("https://a/$cookie_session")
            .unwrap_err()
            .contains("$cookie_session"));
        assert!(UrlTemplate::parse("/auth")
            .unwrap_err()
            .contains("absolute"));
        assert!(UrlTemplate::parse("https://a/${host")
            .unwrap_err()
            .contains("unclosed"));
        assert!(UrlTemplate::parse("https://a/ b")
            .unwrap_err()
            .contains("cannot appear"));
        assert!(UrlTemplate::parse("https://auth.local/check")
            .unwrap()
            .is_fixed());
    }

    #[test]
    fn sign_in_urls_get_the_redirect_parameter_as_ingress_nginx() {
        assert_eq!(
            sign_in_template("https://$host/oauth2/start", "rd"),
            "https://$host/oauth2/start?rd=$pass_access_scheme://$http_host$escaped_request_uri"
        );
        assert_eq!(
            sign_in_template("https://login/?app=shop", "rd"),
            "https://login/?app=shop&rd=$pass_access_scheme://$http_host$escaped_request_uri"
        );
        assert_eq!(
            sign_in_template("https://login/?rd=$escaped_request_uri", "rd"),
            "https://login/?rd=$escaped_request_uri"
        );
        assert_eq!(
            sign_in_template("https://login/", "next"),
            "https://login/?next=$pass_access_scheme://$http_host$escaped_request_uri"
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::of(200), Verdict::Allow);
        assert_eq!(Verdict::of(204), Verdict::Allow);
        assert_eq!(Verdict::of(401), Verdict::Unauthenticated);
        assert_eq!(Verdict::of(403), Verdict::Forbidden);
        for s in [301, 302, 400, 404, 500, 503] {
            assert_eq!(Verdict::of(s), Verdict::Failed, "{s}");
        }
    }
}
