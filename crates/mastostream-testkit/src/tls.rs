//! TLS for the test server: a certificate made at start-up (a CA of its
//! own and a server certificate it signs, so a client trusts the CA as it
//! would a private one) or one read from PEM files; ALPN offers h2 and
//! HTTP/1.1, as nginx in front of Mastodon does.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// A certificate chain and its key, in PEM, and the CA a client must trust
/// when the server made them itself.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The server's certificate (then any intermediates), PEM.
    pub certificate_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// The CA that signed it, PEM, when made here; `None` for files.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("ca_pem", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// The names a made certificate is valid for: what a loopback test dials.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl TlsIdentity {
    /// A new CA, and a server certificate it signs for `names` (host names
    /// or IP addresses), valid from 2000 to 4000: a test never meets its end.
    pub fn self_signed(names: &[&str]) -> io::Result<TlsIdentity> {
        Self::made(names, (2000, 1, 1), (4000, 1, 1))
    }

    /// Like [`self_signed`](Self::self_signed), but the server certificate
    /// expired long ago: to see how a client reports it.
    pub fn expired(names: &[&str]) -> io::Result<TlsIdentity> {
        Self::made(names, (2000, 1, 1), (2001, 1, 1))
    }

    /// A CA and a certificate it signs, valid between two dates (year, month, day).
    fn made(
        names: &[&str],
        (from_year, from_month, from_day): (i32, u8, u8),
        (to_year, to_month, to_day): (i32, u8, u8),
    ) -> io::Result<TlsIdentity> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "mastostream test CA");
        let ca_key = KeyPair::generate().map_err(other)?;
        let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(other)?;

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names).map_err(other)?;
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, "mastostream test server");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = rcgen::date_time_ymd(from_year, from_month, from_day);
        leaf.not_after = rcgen::date_time_ymd(to_year, to_month, to_day);
        let leaf_key = KeyPair::generate().map_err(other)?;
        let leaf = leaf.signed_by(&leaf_key, &ca).map_err(other)?;
        Ok(TlsIdentity {
            certificate_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
            ca_pem: Some(ca.pem()),
        })
    }

    /// A certificate chain and key read from PEM files.
    pub fn from_pem_files(
        certificate: &std::path::Path,
        key: &std::path::Path,
    ) -> io::Result<TlsIdentity> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })
        };
        Ok(TlsIdentity {
            certificate_pem: read(certificate)?,
            key_pem: read(key)?,
            ca_pem: None,
        })
    }

    /// The rustls server configuration: this identity, ALPN h2 and HTTP/1.1.
    pub(crate) fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let chain = CertificateDer::pem_slice_iter(self.certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("the certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(invalid("no certificate in the certificate PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid(format!("the key PEM: {e}")))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| invalid(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn other(error: rcgen::Error) -> io::Error {
    io::Error::other(format!("making the test certificate: {error}"))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Accepts TCP connections and completes their TLS handshakes, each in a
/// task of its own (a slow or broken client holds up nobody), handing the
/// finished ones to axum.
pub(crate) struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, accepted) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(_) => {
                            // Out of descriptors, say: try again shortly.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    // The server stopped: stop listening too.
                    _ = tx.closed() => return,
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { accepted, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(pair) => pair,
            // The acceptor only stops once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
