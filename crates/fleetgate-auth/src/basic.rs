//! The `Authorization: Basic` header.

use base64::Engine as _;

/// The user and password of an `Authorization: Basic <base64>` header
/// value; `None` for another scheme or a value that does not decode to
/// `user:password`.
pub fn parse_basic(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_password() {
        // "alice:open sesame:x"
        let got = parse_basic(b"Basic YWxpY2U6b3BlbiBzZXNhbWU6eA==").unwrap();
        assert_eq!(got, ("alice".to_string(), b"open sesame:x".to_vec()));
        assert_eq!(
            parse_basic(b"basic  YWxpY2U6b3BlbiBzZXNhbWU6eA== ")
                .unwrap()
                .0,
            "alice"
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
        // "nocolon"
        assert_eq!(parse_basic(b"Basic bm9jb2xvbg=="), None);
    }
}
