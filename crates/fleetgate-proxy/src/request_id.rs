//! The request id: one `X-Request-Id` per request, sent upstream and
//! written to the access log, so that one request can be followed from the
//! client through the gateway to the endpoint's own logs.
//!
//! An id a trusted proxy in front sent is kept (it already names the
//! request in that proxy's logs); from any other client, the header is
//! replaced with a fresh id, because a client could otherwise make many
//! requests look like one. Fresh ids are 32 hex digits, the shape nginx's
//! `$request_id` has: two draws of a per-thread splitmix64 sequence seeded
//! from the process's random hash keys. They need to be unique, not
//! secret (a thread's ids never repeat within 2^64 draws, and threads
//! start at random points); it costs a few nanoseconds and no lock.
//!
//! A W3C `traceparent` (and `tracestate`) passes through untouched, as
//! every header the gateway does not own.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use http::header::HeaderName;
use http::HeaderValue;
use pingora_http::RequestHeader;

/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client id kept; longer ones are replaced.
const MAX_KEPT_LEN: usize = 200;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// A random starting point for this thread's sequence.
fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

/// The next 64 bits of this thread's splitmix64 sequence.
fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A fresh id: 32 lowercase hex digits.
pub fn generate() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (half, word) in [next_u64(), next_u64()].into_iter().enumerate() {
        for i in 0..16 {
            out[half * 16 + i] = HEX[((word >> (60 - 4 * i)) & 0xf) as usize];
        }
    }
    HeaderValue::from_bytes(&out).expect("hex digits are a valid header value")
}

/// Whether a client-sent id is worth keeping: one value, short, visible
/// ASCII only.
fn keepable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_KEPT_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Gives `request` its id and returns it: the one a trusted peer sent (if
/// it sent exactly one that is [`keepable`]), else a fresh one that
/// replaces whatever the client wrote.
pub fn assign(request: &mut RequestHeader, peer_trusted: bool) -> HeaderValue {
    if peer_trusted {
        let mut sent = request.headers.get_all(&X_REQUEST_ID).iter();
        if let (Some(only), None) = (sent.next(), sent.next()) {
            if keepable(only) {
                return only.clone();
            }
        }
    }
    let id = generate();
    // Replaces every value the client sent; cannot fail for a valid name.
    let _ = request.insert_header(X_REQUEST_ID, id.clone());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ids: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for id in ids {
            r.append_header(X_REQUEST_ID, *id).unwrap();
        }
        r
    }

    #[test]
    fn fresh_ids_are_32_hex_digits_and_differ() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, b);
    }

    #[test]
    fn a_trusted_peer_keeps_its_id() {
        let mut r = request(&["abc-123"]);
        assert_eq!(assign(&mut r, true), "abc-123");
        assert_eq!(r.headers.get(X_REQUEST_ID).unwrap(), "abc-123");
    }

    #[test]
    fn an_untrusted_client_gets_a_fresh_id_in_place_of_its_own() {
        let mut r = request(&["abc-123", "def"]);
        let id = assign(&mut r, false);
        assert_ne!(id, "abc-123");
        let sent: Vec<_> = r.headers.get_all(X_REQUEST_ID).iter().collect();
        assert_eq!(sent, vec![&id]);
    }

    #[test]
    fn trusted_but_unusable_ids_are_replaced() {
        for ids in [&["a", "b"][..], &["has space"], &[""]] {
            let mut r = request(ids);
            let id = assign(&mut r, true);
            assert_eq!(id.len(), 32, "{ids:?}");
        }
        let long = "x".repeat(201);
        let mut r = request(&[&long]);
        assert_eq!(assign(&mut r, true).len(), 32);
    }
}
