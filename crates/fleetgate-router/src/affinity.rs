//! Keeping a client on one endpoint: consistent hashing on a request key
//! (ingress-nginx's `upstream-hash-by`) and cookie affinity (`affinity:
//! cookie`). Both are [`EndpointPicker`]s, so the router's rules still
//! decide which endpoints a try may use (subsets and spill-over, failed
//! endpoints, a cluster that looks down, health): a client whose endpoint
//! fails or goes unhealthy moves to another, and comes back only if the
//! hash says so.
//!
//! Hashing is weighted rendezvous (highest random weight): each eligible
//! endpoint gets a score from the key and its address, the highest wins.
//! Removing an endpoint moves only the keys it had (about 1/n of them);
//! adding one takes about its weight's share from the others. There is no
//! ring to build or keep in step with health: a pick costs one hash per
//! endpoint of the pool. The hash functions are fixed (FNV-1a and a
//! SplitMix64 finaliser), so every gateway process, replica and version
//! sends a key to the same endpoint, and a cookie written by one replica
//! means the same endpoint to another.

use std::net::SocketAddr;

use fleetgate_pool::EndpointPool;

use crate::picker::{Eligible, EndpointPicker};

/// A stable hash of `bytes`: FNV-1a (64 bits), finalised.
pub fn key_hash(bytes: &[u8]) -> u64 {
    finalise(fnv1a(bytes))
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable id of an endpoint, from its address (what an affinity cookie
/// holds: it names the endpoint without showing its address).
pub fn endpoint_id(address: &SocketAddr) -> u64 {
    let mut bytes = [0u8; 18];
    let len = match address.ip() {
        std::net::IpAddr::V4(ip) => {
            bytes[..4].copy_from_slice(&ip.octets());
            4
        }
        std::net::IpAddr::V6(ip) => {
            bytes[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    bytes[len..len + 2].copy_from_slice(&address.port().to_be_bytes());
    key_hash(&bytes[..len + 2])
}

/// Weighted rendezvous hashing of a request key (already hashed with
/// [`key_hash`]).
#[derive(Debug, Clone, Copy)]
pub struct Rendezvous {
    /// The request's key hash.
    pub key: u64,
}

impl Rendezvous {
    /// The score of an endpoint for this key: `-weight / ln(u)` with `u`
    /// uniform in (0, 1) from the key and the endpoint, so that an
    /// endpoint of weight 2 wins twice as many keys as one of weight 1.
    fn score(&self, address: &SocketAddr, weight: u32) -> f64 {
        let h = finalise(self.key ^ endpoint_id(address).rotate_left(17));
        // 53 random bits, never 0 or 1.
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -f64::from(weight.max(1)) / u.ln()
    }
}

impl EndpointPicker for Rendezvous {
    fn pick(
        &self,
        pool: &EndpointPool,
        eligible: &Eligible<'_>,
        _request: &http::request::Parts,
    ) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, endpoint) in pool.endpoints().enumerate() {
            if !eligible.allows(pool, i) {
                continue;
            }
            let score = self.score(&endpoint.address, endpoint.weight);
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// The endpoint an affinity cookie names, if the try may use it; else
/// whatever `fallback` picks (and the gateway writes a new cookie).
#[derive(Debug, Clone, Copy)]
pub struct Sticky<P> {
    /// The endpoint id from the request's cookie, if it had one.
    pub wanted: Option<u64>,
    /// The picker for clients without a (usable) cookie.
    pub fallback: P,
}

impl<P: EndpointPicker> EndpointPicker for Sticky<P> {
    fn pick(
        &self,
        pool: &EndpointPool,
        eligible: &Eligible<'_>,
        request: &http::request::Parts,
    ) -> Option<usize> {
        if let Some(wanted) = self.wanted {
            let found = pool
                .endpoints()
                .enumerate()
                .find(|(i, e)| endpoint_id(&e.address) == wanted && eligible.allows(pool, *i));
            if let Some((i, _)) = found {
                return Some(i);
            }
        }
        self.fallback.pick(pool, eligible, request)
    }
}

/// The request key `upstream-hash-by` names: nginx variables and text,
/// e.g. `$request_uri`, `$remote_addr`, `$http_x_user`, `$cookie_session`,
/// `$arg_user`, `$host$uri`. Parsed once; hashed per request without
/// allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKey {
    pieces: Vec<KeyPiece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyPiece {
    Literal(Box<[u8]>),
    /// `$request_uri`: path and query as sent.
    RequestUri,
    /// `$uri`: the path.
    Uri,
    /// `$args`, `$query_string`.
    Args,
    /// `$remote_addr`, `$binary_remote_addr`: the client address.
    RemoteAddr,
    /// `$host`: the request's host, lower-case, without port.
    Host,
    /// `$http_<name>`: a request header (`_` for `-`).
    Header(http::HeaderName),
    /// `$cookie_<name>`.
    Cookie(Box<str>),
    /// `$arg_<name>`: a query parameter.
    Arg(Box<str>),
}

impl HashKey {
    /// Parses a key; names the variable it cannot fill in.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("an empty key".into());
        }
        while !rest.is_empty() {
            let Some(dollar) = rest.find('$') else {
                pieces.push(KeyPiece::Literal(rest.as_bytes().into()));
                break;
            };
            if dollar > 0 {
                pieces.push(KeyPiece::Literal(rest.as_bytes()[..dollar].into()));
            }
            let after = &rest[dollar + 1..];
            let (name, used) = match after.strip_prefix('{') {
                Some(inner) => {
                    let end = inner.find('}').ok_or("an unclosed ${")?;
                    (&inner[..end], end + 2)
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], end)
                }
            };
            pieces.push(Self::variable(name)?);
            rest = &after[used..];
        }
        Ok(HashKey { pieces })
    }

    fn variable(name: &str) -> Result<KeyPiece, String> {
        let piece = match name {
            "request_uri" => KeyPiece::RequestUri,
            "uri" | "document_uri" => KeyPiece::Uri,
            "args" | "query_string" => KeyPiece::Args,
            "remote_addr" | "binary_remote_addr" => KeyPiece::RemoteAddr,
            "host" => KeyPiece::Host,
            _ => {
                let (kind, rest) = name.split_once('_').unwrap_or((name, ""));
                if rest.is_empty() {
                    return Err(format!("${name} is not a variable fleetgate can hash on"));
                }
                match kind {
                    "http" => {
                        let header = rest.replace('_', "-").to_ascii_lowercase();
                        KeyPiece::Header(
                            http::HeaderName::from_bytes(header.as_bytes())
                                .map_err(|_| format!("${name}: not a header name"))?,
                        )
                    }
                    "cookie" => KeyPiece::Cookie(rest.into()),
                    "arg" => KeyPiece::Arg(rest.into()),
                    _ => {
                        return Err(format!(
                            "${name} is not a variable fleetgate can hash on (it knows $request_uri, \
                             $uri, $args, $remote_addr, $host, $http_NAME, $cookie_NAME, $arg_NAME)"
                        ))
                    }
                }
            }
        };
        Ok(piece)
    }

    /// The key's hash for a request (`client`: the client's address).
    pub fn hash(&self, request: &http::request::Parts, client: Option<std::net::IpAddr>) -> u64 {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        let query = request.uri.query().unwrap_or("");
        for piece in &self.pieces {
            match piece {
                KeyPiece::Literal(b) => h.write(b),
                KeyPiece::RequestUri => {
                    h.write(request.uri.path().as_bytes());
                    if let Some(q) = request.uri.query() {
                        h.write(b"?");
                        h.write(q.as_bytes());
                    }
                }
                KeyPiece::Uri => h.write(request.uri.path().as_bytes()),
                KeyPiece::Args => h.write(query.as_bytes()),
                KeyPiece::RemoteAddr => match client {
                    Some(std::net::IpAddr::V4(ip)) => h.write(&ip.octets()),
                    Some(std::net::IpAddr::V6(ip)) => h.write(&ip.octets()),
                    None => {}
                },
                KeyPiece::Host => {
                    let host = request
                        .headers
                        .get(http::header::HOST)
                        .and_then(|v| v.to_str().ok())
                        .or_else(|| request.uri.host())
                        .unwrap_or("");
                    let host = host
                        .rsplit_once(':')
                        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                        .map_or(host, |(name, _)| name);
                    for b in host.bytes() {
                        h.write(&[b.to_ascii_lowercase()]);
                    }
                }
                KeyPiece::Header(name) => {
                    if let Some(v) = request.headers.get(name) {
                        h.write(v.as_bytes());
                    }
                }
                KeyPiece::Cookie(name) => {
                    if let Some(v) = cookie(request, name) {
                        h.write(v);
                    }
                }
                KeyPiece::Arg(name) => {
                    let value = query.split('&').find_map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (k == &**name).then_some(v)
                    });
                    if let Some(v) = value {
                        h.write(v.as_bytes());
                    }
                }
            }
        }
        finalise(h.0)
    }
}

/// FNV-1a, fed in pieces.
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(request: &'a http::request::Parts, name: &str) -> Option<&'a [u8]> {
    request
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fleetgate_pool::{Endpoint, EndpointPool, PoolOptions};

    use super::*;
    use crate::picker::WeightedRoundRobin;

    fn pool(n: usize) -> EndpointPool {
        let endpoints = (0..n)
            .map(|i| {
                let addr: SocketAddr = format!("10.0.{}.{}:8080", i / 250, i % 250 + 1)
                    .parse()
                    .unwrap();
                Arc::new(Endpoint::new(addr, if i % 2 == 0 { "c1" } else { "c2" }))
            })
            .collect();
        EndpointPool::new("test", endpoints, PoolOptions::default())
    }

    fn parts() -> http::request::Parts {
        http::Request::new(()).into_parts().0
    }

    fn pick(p: &EndpointPool, key: &str, excluded: &[SocketAddr]) -> SocketAddr {
        let eligible = Eligible {
            excluded,
            ..Eligible::ANY
        };
        let i = Rendezvous {
            key: key_hash(key.as_bytes()),
        }
        .pick(p, &eligible, &parts())
        .unwrap();
        p.endpoint(i).address
    }

    #[test]
    fn hashes_are_fixed_forever() {
        // Replicas and later versions must agree: these values are part of
        // the contract (an affinity cookie names an endpoint by its id).
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            endpoint_id(&"10.0.0.1:8080".parse().unwrap()),
            endpoint_id(&"10.0.0.1:8080".parse().unwrap())
        );
        assert_ne!(
            endpoint_id(&"10.0.0.1:8080".parse().unwrap()),
            endpoint_id(&"10.0.0.1:8081".parse().unwrap())
        );
        assert_eq!(format!("{:016x}", key_hash(b"user-1")), "c499b5f8a721df58");
    }

    #[test]
    fn the_same_key_lands_on_the_same_endpoint_and_keys_spread() {
        let p = pool(10);
        let mut per_endpoint = std::collections::HashMap::new();
        for k in 0..10_000 {
            let key = format!("user-{k}");
            let a = pick(&p, &key, &[]);
            assert_eq!(a, pick(&p, &key, &[]));
            *per_endpoint.entry(a).or_insert(0u32) += 1;
        }
        assert_eq!(per_endpoint.len(), 10);
        // 1,000 expected each; a fixed hash, so this cannot flake.
        assert!(
            per_endpoint.values().all(|&n| (800..1200).contains(&n)),
            "{per_endpoint:?}"
        );
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_keys() {
        let p = pool(10);
        let gone = p.endpoint(3).address;
        let mut moved = 0;
        let mut had = 0;
        for k in 0..10_000 {
            let key = format!("user-{k}");
            let before = pick(&p, &key, &[]);
            let after = pick(&p, &key, &[gone]);
            if before == gone {
                had += 1;
                assert_ne!(after, gone);
            } else {
                assert_eq!(before, after, "{key} moved without cause");
            }
            moved += u32::from(before != after);
        }
        assert_eq!(moved, had);
        assert!((800..1200).contains(&had), "{had}");
    }

    #[test]
    fn weights_take_their_share() {
        let mut endpoints: Vec<Arc<Endpoint>> = Vec::new();
        for (i, w) in [1u32, 3].iter().enumerate() {
            let mut e = Endpoint::new(format!("10.1.0.{}:80", i + 1).parse().unwrap(), "c1");
            e.weight = *w;
            endpoints.push(Arc::new(e));
        }
        let p = EndpointPool::new("test", endpoints, PoolOptions::default());
        let heavy = p.endpoint(1).address;
        let n = (0..8_000)
            .filter(|k| pick(&p, &format!("k{k}"), &[]) == heavy)
            .count();
        // 6,000 expected.
        assert!((5_600..6_400).contains(&n), "{n}");
    }

    #[test]
    fn a_cookie_keeps_its_endpoint_until_it_cannot_be_used() {
        let p = pool(4);
        let target = p.endpoint(2).address;
        let sticky = Sticky {
            wanted: Some(endpoint_id(&target)),
            fallback: WeightedRoundRobin,
        };
        for _ in 0..8 {
            let i = sticky.pick(&p, &Eligible::ANY, &parts()).unwrap();
            assert_eq!(p.endpoint(i).address, target);
        }
        let failed = [target];
        let eligible = Eligible {
            excluded: &failed,
            ..Eligible::ANY
        };
        let i = sticky.pick(&p, &eligible, &parts()).unwrap();
        assert_ne!(p.endpoint(i).address, target);
        let unknown = Sticky {
            wanted: Some(12345),
            fallback: WeightedRoundRobin,
        };
        assert!(unknown.pick(&p, &Eligible::ANY, &parts()).is_some());
    }

    fn request(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn hash_keys_read_the_variables_they_name() {
        let key = |t: &str, r: &http::request::Parts| HashKey::parse(t).unwrap().hash(r, None);
        let a = request(
            "/a?user=1&x=2",
            &[("x-user", "alice"), ("cookie", "s=abc; t=1")],
        );
        let b = request("/b?user=1", &[("x-user", "bob"), ("cookie", "t=1;s=abc")]);
        assert_ne!(key("$request_uri", &a), key("$request_uri", &b));
        assert_ne!(key("$http_x_user", &a), key("$http_x_user", &b));
        assert_eq!(key("$cookie_s", &a), key("$cookie_s", &b));
        assert_eq!(key("$arg_user", &a), key("$arg_user", &b));
        assert_eq!(key("${arg_user}", &a), key("$arg_user", &b));
        assert_ne!(key("$uri", &a), key("$uri", &b));
        let client = |ip: &str| {
            HashKey::parse("$remote_addr")
                .unwrap()
                .hash(&a, Some(ip.parse().unwrap()))
        };
        assert_ne!(client("10.0.0.1"), client("10.0.0.2"));
        assert_eq!(client("10.0.0.1"), client("10.0.0.1"));
        for bad in ["", "$nginx_version", "$foo", "${arg_x"] {
            assert!(HashKey::parse(bad).is_err(), "{bad}");
        }
    }
}
