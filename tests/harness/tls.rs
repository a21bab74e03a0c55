//! Certificates and real TLS clients for the edge-protocol tests.
//!
//! Certificates are made fresh by rcgen for each test (self-signed, so a
//! client that trusts exactly one of them proves which one the gateway
//! presented); clients are the real `curl` and `openssl s_client`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use crate::process::TempDir;

/// A certificate and its key, as PEM, with the files written for them.
pub struct TestCert {
    /// Certificate PEM.
    pub cert: String,
    /// Private key PEM.
    pub key: String,
    /// The certificate file (a client's `--cacert`).
    pub cert_file: PathBuf,
    /// The key file.
    pub key_file: PathBuf,
}

impl TestCert {
    /// A self-signed certificate for `names`, written as `<tag>.crt` and
    /// `<tag>.key` in `dir`.
    pub fn new(dir: &TempDir, tag: &str, names: &[&str]) -> TestCert {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("certificate params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        TestCert::from_params(dir, tag, params)
    }

    /// A certificate for `names` that expired in 2020.
    pub fn expired(dir: &TempDir, tag: &str, names: &[&str]) -> TestCert {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("certificate params");
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        TestCert::from_params(dir, tag, params)
    }

    fn from_params(dir: &TempDir, tag: &str, params: rcgen::CertificateParams) -> TestCert {
        let key = rcgen::KeyPair::generate().expect("key pair");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        let (cert, key) = (cert.pem(), key.serialize_pem());
        TestCert {
            cert_file: dir.write(&format!("{tag}.crt"), &cert),
            key_file: dir.write(&format!("{tag}.key"), &key),
            cert,
            key,
        }
    }

    /// A `kubernetes.io/tls` Secret manifest holding it, base64 in `data`
    /// as `kubectl get secret -o yaml` writes it.
    pub fn secret_yaml(&self, namespace: &str, name: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
            b64(&self.cert),
            b64(&self.key)
        )
    }
}

/// The outcome of a curl run: what `-w` wrote after the body, and the body.
#[derive(Debug)]
pub struct CurlResult {
    /// Exit code (0: a response was received).
    pub code: i32,
    /// The body.
    pub body: String,
    /// `%{http_code}`.
    pub status: u16,
    /// `%{http_version}`: `1.1` or `2`.
    pub http_version: String,
    /// stderr (with `-v`, the TLS details).
    pub stderr: String,
}

/// Runs `curl` to `url` with extra `args`; `-w` appends status and version.
pub fn curl(url: &str, args: &[&str]) -> CurlResult {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let mut tail = tail.split_whitespace();
    CurlResult {
        code: out.status.code().unwrap_or(-1),
        body: body.to_string(),
        status: tail.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        http_version: tail.next().unwrap_or("").to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// `https://{host}:{port}{path}` through `curl --resolve` to 127.0.0.1,
/// trusting only `ca`.
pub fn curl_https(host: &str, port: u16, path: &str, ca: &Path, args: &[&str]) -> CurlResult {
    let resolve = format!("{host}:{port}:127.0.0.1");
    let ca = ca.display().to_string();
    let mut all = vec!["--resolve", &resolve, "--cacert", &ca];
    all.extend_from_slice(args);
    curl(&format!("https://{host}:{port}{path}"), &all)
}

/// What `openssl s_client` saw: the handshake's outcome and the subject of
/// the certificate presented, if any.
#[derive(Debug)]
pub struct Handshake {
    /// A certificate was presented and the handshake completed.
    pub completed: bool,
    /// `subject=...` of the presented certificate.
    pub subject: Option<String>,
    /// The whole output, for messages.
    pub output: String,
}

/// Handshakes with `addr`, sending `sni` (or none).
pub fn handshake(addr: std::net::SocketAddr, sni: Option<&str>, extra: &[&str]) -> Handshake {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()]);
    match sni {
        Some(name) => cmd.args(["-servername", name]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let subject = output
        .lines()
        .find(|l| l.starts_with("subject="))
        .map(|l| l.trim_start_matches("subject=").trim().to_string());
    Handshake {
        completed: subject.is_some() && !output.contains("alert"),
        subject,
        output,
    }
}
