//! Apache's MD5 password hash (`$apr1$salt$hash`): MD5-crypt with the
//! `$apr1$` magic, 1000 rounds, and crypt's own base-64 alphabet.

use md5::{Digest, Md5};

const MAGIC: &[u8] = b"$apr1$";
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 22-character hash part of `$apr1$<salt>$<hash>` for `password`
/// (the salt is at most 8 bytes).
pub(crate) fn apr1_hash(password: &[u8], salt: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 != 0 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round & 1 != 0 {
            ctx.update(password);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round & 1 != 0 {
            ctx.update(digest);
        } else {
            ctx.update(password);
        }
        digest = ctx.finalize();
    }

    let d = digest;
    let mut out = String::with_capacity(22);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let v = (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]);
        push64(&mut out, v, 4);
    }
    push64(&mut out, u32::from(d[11]), 2);
    out
}

fn push64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(ITOA64[(v & 0x3f) as usize]));
        v >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from `openssl passwd -apr1 -salt SALT PASSWORD`.
    #[test]
    fn known_vectors() {
        assert_eq!(
            apr1_hash(b"password", b"abcdefgh"),
            "FBwExRW4dCc8aL.OvjpIE1"
        );
        assert_eq!(
            apr1_hash(
                b"correct horse battery staple longer than sixteen",
                b"12345678"
            ),
            "daY2vdW9t2We3KX1zC1ap0"
        );
    }
}
