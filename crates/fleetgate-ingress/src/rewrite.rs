//! Rewriting the path an upstream gets: ingress-nginx's `rewrite-target`
//! (a template with the regex path's capture groups) and Higress/MSE's
//! `rewrite-path` (the matched prefix, or the whole path, replaced).
//!
//! Both are worked out once per rule when the configuration is loaded; a
//! request only runs the rule's regex (for a template) and copies bytes.
//! They act on the path the rule matched (normalised, see
//! [`PathNormalization`](crate::PathNormalization)), as nginx rewrites its
//! normalised URI, and keep the request's query string.
//!
//! The template follows nginx's `rewrite` directive as ingress-nginx
//! writes it: the whole path is replaced by the template, `$1` to `$9`
//! (or `${1}`) stand for the path regex's capture groups (empty when a
//! group did not take part), and the original query string is appended,
//! after `&` when the template has its own query, not at all when the
//! template ends with `?`. nginx variables (`$host`, `$request_uri`, ...)
//! and absolute URLs (which nginx would answer with a redirect) are
//! refused when the configuration is loaded.

use std::fmt;

use regex::Regex;

use crate::path::{table_key, PathType};
use crate::regex_path::compile_path_regex;

/// A rewrite value that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRewrite {
    /// The value as written.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for InvalidRewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value {:?}: {}", self.value, self.reason)
    }
}

impl std::error::Error for InvalidRewrite {}

/// One part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Capture(usize),
}

/// A parsed `rewrite-target` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteTemplate {
    pieces: Vec<Piece>,
    /// The template has its own query (`?` in it).
    own_query: bool,
    /// The template ends with `?`: the request's query is dropped.
    drops_query: bool,
}

impl RewriteTemplate {
    /// Parses a template (see the module docs).
    pub fn parse(template: &str) -> Result<Self, InvalidRewrite> {
        let invalid = |reason: &str| InvalidRewrite {
            value: template.to_string(),
            reason: reason.to_string(),
        };
        let lower = template.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Err(invalid(
                "an absolute URL would be a redirect; use permanent-redirect or temporal-redirect",
            ));
        }
        if !template.starts_with('/') && !template.starts_with('$') {
            return Err(invalid("must start with '/' (or a capture such as $1)"));
        }
        if let Some(c) = template.chars().find(|&c| !uri_char(c)) {
            return Err(invalid(&format!(
                "{c:?} cannot appear in a URL path or query (percent-encode it)"
            )));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let bytes = template.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                let end = template[i..].find('$').map_or(template.len(), |n| i + n);
                literal.push_str(&template[i..end]);
                i = end;
                continue;
            }
            let (group, used) = match (bytes.get(i + 1), bytes.get(i + 2), bytes.get(i + 3)) {
                (Some(d @ b'1'..=b'9'), _, _) => (usize::from(d - b'0'), 2),
                (Some(b'{'), Some(d @ b'1'..=b'9'), Some(b'}')) => (usize::from(d - b'0'), 4),
                _ => {
                    return Err(invalid(
                        "'$' must start a capture group reference $1 to $9 (or ${1}); \
                         nginx variables are not supported",
                    ))
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Capture(group));
            i += used;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let braces = pieces
            .iter()
            .any(|p| matches!(p, Piece::Literal(t) if t.contains(['{', '}'])));
        if braces {
            return Err(invalid(
                "'{' and '}' only belong in ${1}; percent-encode them elsewhere",
            ));
        }
        Ok(RewriteTemplate {
            pieces,
            own_query: template.contains('?'),
            drops_query: template.ends_with('?'),
        })
    }
}

/// Characters a rewritten path and query may hold (RFC 3986: unreserved,
/// sub-delimiters, `:`, `@`, `/`, `?`, and `%` of percent-escapes), plus
/// the `{` `}` of `${1}`.
fn uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%{}".contains(c)
}

/// How one rule's requests are rewritten.
#[derive(Debug, Clone)]
pub struct PathRewrite {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `rewrite-target`: the rule's regex and a template.
    Template {
        regex: Regex,
        template: RewriteTemplate,
    },
    /// `rewrite-path` on a prefix rule: the first `matched` bytes of the
    /// path are replaced by `value`.
    Prefix { matched: usize, value: String },
    /// `rewrite-path` on an exact or regex rule: the whole path.
    Whole(String),
}

impl PathRewrite {
    /// ingress-nginx's `rewrite-target` for the regex rule `path` of type
    /// `path_type` (see the module docs). `None` when the template is the
    /// rule's own path, which ingress-nginx leaves unrewritten.
    pub fn nginx_target(
        path: &str,
        path_type: PathType,
        template: &str,
    ) -> Result<Option<Self>, InvalidRewrite> {
        if template == path {
            return Ok(None);
        }
        let parsed = RewriteTemplate::parse(template)?;
        let regex = compile_path_regex(path, path_type).map_err(|e| InvalidRewrite {
            value: template.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Some(PathRewrite {
            kind: Kind::Template {
                regex,
                template: parsed,
            },
        }))
    }

    /// Higress/MSE `rewrite-path` for the rule `path` of type `path_type`:
    /// a prefix rule (not matched as a regex) has its matched prefix
    /// replaced by `value`, any other rule its whole path.
    pub fn replace_path(
        path: &str,
        path_type: PathType,
        regex: bool,
        value: &str,
    ) -> Result<Self, InvalidRewrite> {
        check_path_value(value)?;
        let kind = if path_type.is_prefix() && !regex {
            let key = table_key(path, path_type);
            Kind::Prefix {
                matched: if key == "/" { 0 } else { key.len() },
                value: value.to_string(),
            }
        } else {
            Kind::Whole(value.to_string())
        };
        Ok(PathRewrite { kind })
    }

    /// Writes the path and query the upstream gets for a request whose
    /// (normalised) path is `path` and query `query` into `out`; `false`,
    /// leaving `out` empty, when the rule's regex does not match `path`
    /// (the request is then sent as it came).
    pub fn apply(&self, path: &str, query: Option<&str>, out: &mut String) -> bool {
        out.clear();
        let query = query.filter(|q| !q.is_empty());
        match &self.kind {
            Kind::Template { regex, template } => {
                let Some(caps) = regex.captures(path) else {
                    return false;
                };
                for piece in &template.pieces {
                    match piece {
                        Piece::Literal(text) => out.push_str(text),
                        Piece::Capture(n) => {
                            out.push_str(caps.get(*n).map_or("", |m| m.as_str()));
                        }
                    }
                }
                if template.drops_query {
                    out.pop();
                } else if let Some(q) = query {
                    out.push(if template.own_query { '&' } else { '?' });
                    out.push_str(q);
                }
                if !out.starts_with('/') {
                    // A template starting with a capture that was empty.
                    out.insert(0, '/');
                }
                // A capture may start mid-segment (`/app-(.*)` takes
                // `../admin` from `/app-../admin`): the upstream gets the
                // path with dot segments resolved and one leading slash.
                let query_at = out.find('?').unwrap_or(out.len());
                if needs_cleaning(&out[..query_at]) {
                    let cleaned = clean_path(&out[..query_at]);
                    out.replace_range(..query_at, &cleaned);
                }
                return true;
            }
            Kind::Prefix { matched, value } => {
                let rest = path.get(*matched..).unwrap_or("");
                out.push_str(value);
                if value.ends_with('/') && rest.starts_with('/') {
                    out.push_str(&rest[1..]);
                } else {
                    out.push_str(rest);
                }
            }
            Kind::Whole(value) => out.push_str(value),
        }
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        true
    }
}

/// Whether `path` has a `.` or `..` segment, or starts with `//`.
fn needs_cleaning(path: &str) -> bool {
    path.starts_with("//") || path.split('/').any(|s| s == "." || s == "..")
}

/// `path` with `.` and `..` segments removed (RFC 3986, 5.2.4; `..` at the
/// root stays at the root) and runs of leading `/` made one.
fn clean_path(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let last = segments.len() - 1;
    let mut trailing = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing = i == last,
            ".." => {
                kept.pop();
                trailing = i == last;
            }
            s => {
                kept.push(s);
                trailing = false;
            }
        }
    }
    let mut cleaned = String::with_capacity(path.len());
    cleaned.push('/');
    cleaned.push_str(&kept.join("/"));
    if trailing && !cleaned.ends_with('/') {
        cleaned.push('/');
    }
    cleaned
}

/// Checks a `rewrite-path` value: an absolute path of URI characters, no
/// query.
pub fn check_path_value(value: &str) -> Result<(), InvalidRewrite> {
    let invalid = |reason: String| InvalidRewrite {
        value: value.to_string(),
        reason,
    };
    if !value.starts_with('/') {
        return Err(invalid("must start with '/'".into()));
    }
    if let Some(c) = value
        .chars()
        .find(|&c| !uri_char(c) || matches!(c, '?' | '{' | '}'))
    {
        return Err(invalid(format!(
            "{c:?} cannot appear in a URL path (percent-encode it)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathType::{Exact, ImplementationSpecific as Impl, Prefix};

    fn run(rw: &PathRewrite, path: &str, query: Option<&str>) -> Option<String> {
        let mut out = String::new();
        rw.apply(path, query, &mut out).then_some(out)
    }

    fn target(path: &str, template: &str) -> PathRewrite {
        PathRewrite::nginx_target(path, Impl, template)
            .unwrap()
            .unwrap()
    }

    /// The rewrite examples of ingress-nginx's documentation.
    #[test]
    fn ingress_nginx_documentation_examples() {
        let rw = target("/something(/|$)(.*)", "/$2");
        assert_eq!(run(&rw, "/something", None).unwrap(), "/");
        assert_eq!(run(&rw, "/something/", None).unwrap(), "/");
        assert_eq!(run(&rw, "/something/new", None).unwrap(), "/new");
        let rw = target("/something(/|$)(.*)", "/prefix/$2");
        assert_eq!(run(&rw, "/something/new", None).unwrap(), "/prefix/new");
        let rw = target("/app(/|$)(.*)", "/$2");
        assert_eq!(
            run(&rw, "/app/stylesheets/main.css", None).unwrap(),
            "/stylesheets/main.css"
        );
    }

    #[test]
    fn query_strings_as_nginx() {
        let rw = target("/a/(.*)", "/b/$1");
        assert_eq!(run(&rw, "/a/x", Some("k=v")).unwrap(), "/b/x?k=v");
        assert_eq!(run(&rw, "/a/x", Some("")).unwrap(), "/b/x");
        let rw = target("/a/(.*)", "/b?from=$1");
        assert_eq!(run(&rw, "/a/x", Some("k=v")).unwrap(), "/b?from=x&k=v");
        let rw = target("/a/(.*)", "/b/$1?");
        assert_eq!(run(&rw, "/a/x", Some("k=v")).unwrap(), "/b/x");
    }

    #[test]
    fn captures_case_insensitive_braces_and_missing_groups() {
        let rw = target("/API/(v[0-9])/(.*)", "/${2}/$1/$3");
        assert_eq!(run(&rw, "/api/v2/users", None).unwrap(), "/users/v2/");
        // Whole path replaced, not only the matched part.
        let rw = target("/a", "/b");
        assert_eq!(run(&rw, "/a/long/tail", None).unwrap(), "/b");
        assert!(run(&rw, "/z", None).is_none());
        // An empty leading capture still gives an absolute path.
        let rw = target("/x/?(.*)", "$1");
        assert_eq!(run(&rw, "/x", None).unwrap(), "/");
    }

    #[test]
    fn captures_cannot_climb_out_of_the_template() {
        let rw = target("/app-(.*)", "/apps/$1");
        assert_eq!(run(&rw, "/app-../admin", None).unwrap(), "/admin");
        assert_eq!(
            run(&rw, "/app-x/../../etc", Some("a=1")).unwrap(),
            "/etc?a=1"
        );
        assert_eq!(run(&rw, "/app-./x/.", None).unwrap(), "/apps/x/");
        let rw = target("/x(.*)", "$1");
        assert_eq!(
            run(&rw, "/x//evil.example/y", None).unwrap(),
            "/evil.example/y"
        );
        assert_eq!(run(&rw, "/x/a/b", None).unwrap(), "/a/b");
    }

    #[test]
    fn a_target_equal_to_the_path_is_no_rewrite() {
        assert!(PathRewrite::nginx_target("/", Prefix, "/")
            .unwrap()
            .is_none());
    }

    #[test]
    fn templates_that_cannot_work_are_refused() {
        for (bad, why) in [
            ("https://x/$1", "redirect"),
            ("/$host/x", "nginx variables"),
            ("/a b", "cannot appear"),
            ("x/$1", "start with"),
            ("/$0", "capture group"),
            ("/a{b}", "only belong"),
        ] {
            let err = RewriteTemplate::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn rewrite_path_replaces_the_prefix_or_the_whole_path() {
        let rw = PathRewrite::replace_path("/v1/app", Prefix, false, "/v1").unwrap();
        assert_eq!(run(&rw, "/v1/app/x", Some("q=1")).unwrap(), "/v1/x?q=1");
        assert_eq!(run(&rw, "/v1/app", None).unwrap(), "/v1");
        let rw = PathRewrite::replace_path("/app/", Prefix, false, "/").unwrap();
        assert_eq!(run(&rw, "/app/x", None).unwrap(), "/x");
        assert_eq!(run(&rw, "/app", None).unwrap(), "/");
        let rw = PathRewrite::replace_path("/", Prefix, false, "/v2/").unwrap();
        assert_eq!(run(&rw, "/x/y", None).unwrap(), "/v2/x/y");
        let rw = PathRewrite::replace_path("/old", Exact, false, "/new").unwrap();
        assert_eq!(run(&rw, "/old", None).unwrap(), "/new");
        let rw = PathRewrite::replace_path("/o.*", Prefix, true, "/new").unwrap();
        assert_eq!(run(&rw, "/old/x", None).unwrap(), "/new");
        assert!(PathRewrite::replace_path("/a", Prefix, false, "/x?y").is_err());
        assert!(PathRewrite::replace_path("/a", Prefix, false, "x").is_err());
    }
}
