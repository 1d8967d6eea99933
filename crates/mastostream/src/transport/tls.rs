//! One TLS configuration for every connection a client makes: SSE, REST
//! (discovery, catch-up) and the WebSocket. Trust is the platform's store
//! (which honours `SSL_CERT_FILE` / `SSL_CERT_DIR`), with the bundled
//! webpki roots where the platform has none, plus the roots the user adds;
//! or a complete rustls configuration the user passes.
//!
//! Also: telling a certificate that was refused from a network blip, so the
//! error names the host and the reason and is not retried.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::Error;

/// What the user asked for, kept on the builder until `build`.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    /// PEM bundles of extra roots, each as given.
    pub extra_pem: Vec<Vec<u8>>,
    /// A complete configuration that replaces ours.
    pub custom: Option<Arc<ClientConfig>>,
    /// Trust only the bundled webpki roots (and the extra ones), not the platform's.
    pub bundled_roots_only: bool,
    /// Offer only HTTP/1.1 to `https://` servers, not h2.
    pub http1_only: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_pem", &self.extra_pem.len())
            .field("custom", &self.custom.is_some())
            .field("bundled_roots_only", &self.bundled_roots_only)
            .field("http1_only", &self.http1_only)
            .finish()
    }
}

/// The configurations a client's connections use: HTTP offers h2 and
/// HTTP/1.1 through ALPN; the WebSocket only HTTP/1.1 (it upgrades an
/// HTTP/1.1 request).
#[derive(Debug, Clone)]
pub(crate) struct TlsConfigs {
    pub http: Arc<ClientConfig>,
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub websocket: Arc<ClientConfig>,
}

impl TlsConfigs {
    pub(crate) fn build(options: &TlsOptions) -> Result<TlsConfigs, Error> {
        let base = match &options.custom {
            Some(custom) => (**custom).clone(),
            None => {
                let mut roots = RootCertStore::empty();
                if options.bundled_roots_only {
                    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                } else {
                    let platform = platform_roots();
                    if platform.is_empty() {
                        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                    } else {
                        roots.add_parsable_certificates(platform.iter().cloned());
                    }
                }
                for pem in &options.extra_pem {
                    for certificate in parse_pem_certificates(pem)? {
                        roots.add(certificate).map_err(|e| {
                            Error::Config(format!("a root certificate is not usable: {e}"))
                        })?;
                    }
                }
                ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Config(format!("TLS: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth()
            }
        };
        let mut http = base.clone();
        http.alpn_protocols = if options.http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        let mut websocket = base;
        websocket.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfigs {
            http: Arc::new(http),
            websocket: Arc::new(websocket),
        })
    }
}

/// The certificates of a PEM bundle; an error when it holds none, or one
/// that does not parse.
pub(crate) fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("cannot read the PEM certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(Error::Config(
            "no certificate in the PEM data (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certificates)
}

/// The platform's roots, loaded once per process. Unreadable entries are
/// skipped (and logged); none at all means the bundled roots are used.
fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::debug!(%error, "a platform root certificate could not be loaded");
        }
        if loaded.certs.is_empty() {
            tracing::debug!("no platform root certificates; using the bundled webpki roots");
        }
        loaded.certs
    })
}

/// When `error` (or what caused it) is a certificate the TLS handshake
/// refused, the reason in words; `None` for anything else.
pub(crate) fn certificate_refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let chain = || std::iter::successors(Some(error), |current| current.source());
    if let Some(found) = chain().find_map(rustls_error_in) {
        return describe(found);
    }
    // reqwest's connector chain may hold the rustls error behind a type we
    // cannot downcast to; rustls' own wording is then what is left to read.
    chain().find_map(|current| refusal_from_wording(&current.to_string()))
}

/// The rustls error `error` is, or wraps in an `io::Error` (whose `source`
/// skips the error it wraps, so the chain alone does not reach it).
fn rustls_error_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(found) = error.downcast_ref::<rustls::Error>() {
        return Some(found);
    }
    error
        .downcast_ref::<std::io::Error>()?
        .get_ref()?
        .downcast_ref::<rustls::Error>()
}

/// The reason for a refusal told in rustls' words: "invalid peer
/// certificate: UnknownIssuer".
fn refusal_from_wording(text: &str) -> Option<String> {
    let rest = text.split("invalid peer certificate: ").nth(1)?;
    let name = rest
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    let problem = match name {
        "UnknownIssuer" => CertificateError::UnknownIssuer,
        "Expired" | "ExpiredContext" => CertificateError::Expired,
        "NotValidYet" | "NotValidYetContext" => CertificateError::NotValidYet,
        "NotValidForName" | "NotValidForNameContext" => CertificateError::NotValidForName,
        "Revoked" => CertificateError::Revoked,
        "BadSignature" => CertificateError::BadSignature,
        _ => {
            // rustls' wording of the variants with context: keep the detail
            // (the names the certificate is valid for, the dates).
            let lower = rest.to_ascii_lowercase();
            let summary = if lower.contains("not valid for name") {
                NOT_FOR_THIS_NAME
            } else if lower.contains("expired") {
                EXPIRED
            } else if lower.contains("not valid yet") || lower.contains("not valid before") {
                NOT_YET_VALID
            } else {
                return Some(rest.to_owned());
            };
            return Some(format!("{summary} ({rest})"));
        }
    };
    describe(&rustls::Error::InvalidCertificate(problem))
}

const NOT_FOR_THIS_NAME: &str = "it is not valid for this host name";
const EXPIRED: &str = "it has expired";
const NOT_YET_VALID: &str = "it is not valid yet (is the clock right?)";

fn describe(error: &rustls::Error) -> Option<String> {
    let rustls::Error::InvalidCertificate(problem) = error else {
        return None;
    };
    let reason = match problem {
        CertificateError::UnknownIssuer => {
            "it is signed by an unknown issuer (not a trusted CA; add the CA with --cacert FILE or ClientBuilder::add_root_certificates_pem)".to_owned()
        }
        CertificateError::Expired => EXPIRED.to_owned(),
        CertificateError::NotValidYet => NOT_YET_VALID.to_owned(),
        CertificateError::NotValidForName => NOT_FOR_THIS_NAME.to_owned(),
        CertificateError::ExpiredContext { .. } => format!("{EXPIRED} ({problem})"),
        CertificateError::NotValidYetContext { .. } => format!("{NOT_YET_VALID} ({problem})"),
        CertificateError::NotValidForNameContext { .. } => {
            format!("{NOT_FOR_THIS_NAME} ({problem})")
        }
        CertificateError::Revoked => "it has been revoked".to_owned(),
        CertificateError::BadSignature => "its signature is invalid".to_owned(),
        CertificateError::BadEncoding => "it could not be parsed".to_owned(),
        other => format!("{other:?}"),
    };
    Some(reason)
}

/// The error for a refused certificate of `host`.
pub(crate) fn certificate_error(host: &str, reason: String) -> Error {
    Error::Certificate {
        host: host.to_owned(),
        reason,
    }
}
