//! HTTPS with Spin 4.0.2's `--tls-cert` / `--tls-key` (and SPIN_TLS_CERT /
//! SPIN_TLS_KEY), over real sockets with the probe app and a rustls client:
//! the printed URLs, what the guest sees, handshakes that fail, and the
//! files Spin refuses (`crates/trigger-http/src/tls.rs`, `server.rs`).
//!
//! Certificates are made at test time with the `openssl` command-line tool
//! (a CA, and a server certificate for `localhost` and 127.0.0.1 that it
//! signs), in a temp dir.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::helpers::{Response, Runner, Spawn, parse_response, raw_exchange, run_exact};
use crate::runner::PROBE_APP;

/// Key and certificate files made by openssl in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
    /// The CA's certificate: what the client trusts.
    ca: PathBuf,
    /// The server's certificate followed by the CA's (a chain of two).
    chain: PathBuf,
    /// The server's private key, PKCS#8 PEM.
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the TLS tests make their certificates with the `openssl` command-line tool, \
                 which could not be run ({e}): install openssl (e.g. `apt-get install openssl`)"
            )
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new P-256 key (PKCS#8 PEM, as `openssl genpkey` writes it) at `name`.
fn new_key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            name,
        ],
    );
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    new_key(d, "ca.key");
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=edge-tests CA",
        ],
    );
    new_key(d, "server.key");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        d.join("server.ext"),
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    let key = d.join("server.key");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"),
        "openssl wrote a key that is not PKCS#8"
    );
    let chain = d.join("chain.pem");
    let mut text = std::fs::read_to_string(d.join("server.pem")).unwrap();
    text.push_str(&std::fs::read_to_string(d.join("ca.pem")).unwrap());
    std::fs::write(&chain, text).unwrap();
    Pki {
        ca: d.join("ca.pem"),
        chain,
        key,
        dir,
    }
}

/// The probe app over HTTPS with the flags (or, with `env`, the variables).
fn serve(pki: &Pki, via_env: bool, extra: &[&str]) -> Runner {
    let (cert, key) = (
        pki.chain.display().to_string(),
        pki.key.display().to_string(),
    );
    let (mut args, env) = if via_env {
        (
            vec![],
            vec![
                ("SPIN_TLS_CERT".to_string(), cert),
                ("SPIN_TLS_KEY".to_string(), key),
            ],
        )
    } else {
        (
            vec!["--tls-cert".into(), cert, "--tls-key".into(), key],
            vec![],
        )
    };
    args.extend(extra.iter().map(|s| s.to_string()));
    let r = Runner::spawn(Spawn {
        manifest: Some(PROBE_APP),
        args,
        env,
    });
    assert!(r.https, "it must announce https:\n{}", r.output());
    r
}

/// A client trusting `ca` (none: an empty trust store), offering h2 and
/// HTTP/1.1 by ALPN as a browser does.
fn client(ca: Option<&Path>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What one HTTPS exchange gave: the response, and the protocol the
/// handshake agreed by ALPN.
struct Exchange {
    response: Response,
    alpn: Option<Vec<u8>>,
}

/// One HTTP/1.1 GET over TLS (server name `localhost`) on a fresh
/// connection; `Err` when the handshake or the exchange fails.
fn https_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<Exchange, String> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("handshake or write: {e}"))?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            // A close without close_notify after a whole response is fine.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !bytes.is_empty() => break,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let response = parse_response(&bytes).ok_or_else(|| {
        format!(
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok(Exchange { response, alpn })
}

#[test]
fn tls_serves_https_with_the_certificate_chain_and_the_guest_sees_https_urls() {
    let pki = pki();
    let r = serve(&pki, false, &[]);
    let listed = format!("probe: https://{}/probe (wildcard)", r.addr);
    let out = r.wait_for_output(Duration::from_secs(30), |out| out.contains(&listed));
    assert!(
        out.contains(&format!("Serving https://{}\n", r.addr)),
        "{out}"
    );

    let got = https_get(r.addr, client(Some(&pki.ca)), "/probe/headers?x=1").unwrap();
    assert_eq!(got.response.status, 200, "{}", got.response.text());
    let text = got.response.text();
    assert!(
        text.contains(&format!(
            "spin-full-url: https://{}/probe/headers?x=1",
            r.addr
        )),
        "{text}"
    );
    assert!(text.contains("spin-path-info: /headers"), "{text}");
    assert!(text.contains("spin-base-path: /"), "{text}");
    // Spin offers no ALPN: a client that offers h2 speaks HTTP/1.1.
    assert_eq!(got.alpn, None);

    // Spin's own routes over TLS too.
    let health = https_get(r.addr, client(Some(&pki.ca)), "/.well-known/spin/health").unwrap();
    assert_eq!(health.response.status, 200);
    assert_eq!(health.response.text(), "OK");
}

#[test]
fn tls_from_the_environment_and_the_json_listing_says_https() {
    let pki = pki();
    let r = serve(&pki, true, &["--format", "json"]);
    let base_url = format!("\"base_url\": \"https://{}\"", r.addr);
    r.wait_for_output(Duration::from_secs(30), |out| out.contains(&base_url));
    let got = https_get(r.addr, client(Some(&pki.ca)), "/probe/hello").unwrap();
    assert_eq!(got.response.status, 200);
    assert_eq!(got.response.text(), "hello");
}

#[test]
fn tls_a_failed_handshake_drops_that_connection_only() {
    let pki = pki();
    let r = serve(&pki, false, &[]);

    // A plain-HTTP client on the HTTPS port gets no HTTP answer: the
    // handshake fails (rustls answers with an alert) and the connection ends.
    let raw = format!(
        "GET /probe/hello HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        r.addr
    );
    let bytes = raw_exchange(r.addr, raw.as_bytes(), Duration::from_secs(30));
    assert!(
        !bytes.starts_with(b"HTTP/"),
        "answered over plain HTTP: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    r.wait_for_output(Duration::from_secs(30), |out| {
        out.contains("error: Failed to start TLS session: ")
    });

    // A client that does not trust the certificate fails its handshake.
    let untrusting = https_get(r.addr, client(None), "/probe/hello");
    assert!(untrusting.is_err(), "an untrusted certificate was accepted");

    // A client that connects and says nothing holds only its own
    // connection: while it waits in its handshake, others are served.
    let silent = TcpStream::connect(r.addr).unwrap();
    let got = https_get(r.addr, client(Some(&pki.ca)), "/probe/hello").unwrap();
    assert_eq!(got.response.status, 200);
    assert_eq!(got.response.text(), "hello");
    drop(silent);
}

/// `up` with these TLS files, to its exit: it must fail; what it printed.
fn refused(cert: &Path, key: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::helpers::write_manifest(dir.path(), PROBE_APP);
    let args: Vec<String> = [
        "up",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        &dir.path().join(".spin").display().to_string(),
        "--cache-dir",
        &crate::helpers::cache_dir().display().to_string(),
        "-f",
        &manifest.display().to_string(),
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (status, out) = run_exact(dir.path(), &args, &[]);
    assert!(!status.success(), "{out}");
    out
}

#[test]
fn tls_bad_certificate_or_key_files_are_refused_at_startup_in_spins_words() {
    let pki = pki();
    let d = pki.dir.path();

    // A key file that is not PEM-terminated.
    let truncated = d.join("truncated.key");
    let text = std::fs::read_to_string(&pki.key).unwrap();
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let out = refused(&pki.chain, &truncated);
    assert!(
        out.contains(&format!(
            "Error: failed to load private key from '{}': missing section end marker: ",
            truncated.display()
        )),
        "{out}"
    );

    // A key file with no key in it (the certificate given twice).
    let out = refused(&pki.chain, &pki.chain);
    assert!(
        out.contains(&format!(
            "Error: failed to load private key from '{}': no items found",
            pki.chain.display()
        )),
        "{out}"
    );

    // A certificate file that is not there.
    let missing = d.join("missing.pem");
    let out = refused(&missing, &pki.key);
    assert!(
        out.contains(&format!(
            "Error: failed to load certificate(s) from '{}': I/O error: ",
            missing.display()
        )),
        "{out}"
    );

    // A key that is not the certificate's: rustls's words, as Spin gives them.
    new_key(d, "other.key");
    let out = refused(&pki.chain, &d.join("other.key"));
    assert!(
        out.contains("Error: keys may not be consistent: KeyMismatch"),
        "{out}"
    );
}
