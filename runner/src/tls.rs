//! HTTPS, as Spin 4.0.2 serves it with `--tls-cert` and `--tls-key`
//! (`crates/trigger-http/src/tls.rs`, and `serve_https` in
//! `crates/trigger-http/src/server.rs`):
//!
//! - the certificate file is PEM, every `CERTIFICATE` section in it read
//!   in order (the chain, the server's own first); the key file is PEM, its
//!   first private key taken (PKCS#8, or PKCS#1 / SEC1, which the same PEM
//!   reader accepts). A file that cannot be read or parsed is refused with
//!   Spin's words: `failed to load certificate(s) from '<path>'` or
//!   `failed to load private key from '<path>'`, with the PEM reader's own
//!   error as the cause; a key that rustls cannot use, or one not matching
//!   the certificate, with rustls's message alone, as Spin reports it;
//! - rustls with its default protocol versions (TLS 1.3 and 1.2), no
//!   client authentication and no ALPN, as Spin builds its `ServerConfig`:
//!   a client negotiates no protocol and speaks HTTP/1.1;
//! - a connection whose handshake fails (a plain-HTTP client, an untrusted
//!   certificate) is logged as Spin logs it ("Failed to start TLS session")
//!   and dropped; the others are served. Unlike Spin, whose accept loop
//!   awaits each handshake before accepting the next connection, the
//!   handshake runs on the connection's own task, so a slow client does not
//!   hold up the others.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The two files Spin's `--tls-cert` and `--tls-key` name.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The PEM certificate chain.
    pub cert_path: PathBuf,
    /// The PEM private key.
    pub key_path: PathBuf,
}

impl TlsConfig {
    /// Loads the files and builds the acceptor (Spin's `server_config`).
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let certs = load_certs(&self.cert_path)?;
        let key = load_key(&self.key_path)?;
        // The ring provider (the one compiled in), with rustls's default
        // protocol versions: what Spin's `ServerConfig::builder()` gives.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            // Spin reports rustls's message alone, without context.
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Every certificate in the PEM file at `path`, in order.
fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("failed to load certificate(s) from '{}'", path.display()))
}

/// The first private key in the PEM file at `path`.
fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("failed to load private key from '{}'", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem;

    /// A `CERTIFICATE` section: the PEM reader decodes base64 only, so
    /// any bytes do (rustls reads the DER later, when a client connects).
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcI\n-----END CERTIFICATE-----\n";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_missing_file_is_refused_in_spins_words_with_the_io_error_as_cause() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        for (err, what) in [
            (load_certs(&missing).unwrap_err(), "certificate(s)"),
            (load_key(&missing).unwrap_err(), "private key"),
        ] {
            assert_eq!(
                err.to_string(),
                format!("failed to load {what} from '{}'", missing.display())
            );
            match err.downcast_ref::<pem::Error>() {
                Some(pem::Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
                other => panic!("expected an I/O error, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_unterminated_pem_section_is_refused_as_spin_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = write(dir.path(), "c.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
        let key = write(dir.path(), "k.pem", "-----BEGIN PRIVATE KEY-----\nMIIB\n");
        for err in [load_certs(&cert).unwrap_err(), load_key(&key).unwrap_err()] {
            assert!(
                matches!(
                    err.downcast_ref::<pem::Error>(),
                    Some(pem::Error::MissingSectionEnd { .. })
                ),
                "{err:#}"
            );
        }
    }

    #[test]
    fn a_key_file_without_a_key_is_refused_and_certificates_are_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let chain = write(dir.path(), "chain.pem", &format!("{CERT}{CERT}"));
        assert_eq!(load_certs(&chain).unwrap().len(), 2);
        let err = load_key(&chain).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "failed to load private key from '{}': no items found",
                chain.display()
            )
        );
    }

    #[test]
    fn an_unusable_key_is_refused_with_rustls_message_alone() {
        let dir = tempfile::tempdir().unwrap();
        let config = TlsConfig {
            cert_path: write(dir.path(), "c.pem", CERT),
            // A PKCS#8 section whose content is no key at all.
            key_path: write(
                dir.path(),
                "k.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
        };
        let err = config.acceptor().err().expect("refused");
        assert_eq!(err.chain().count(), 1, "{err:#}");
        let text = err.to_string();
        assert!(!text.starts_with("failed to load"), "{text}");
        assert!(!text.is_empty());
    }
}
