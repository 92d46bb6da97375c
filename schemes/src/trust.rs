//! Whom every ptex client trusts and how it identifies itself over TLS: the platform's
//! verifier (the system store; on Windows and macOS the operating system's own) plus the
//! user's CA bundle (`SSL_CERT_FILE`, else `CURL_CA_BUNDLE`, else `REQUESTS_CA_BUNDLE`), a
//! self-signed `CA:TRUE` server certificate accepted only when that bundle holds exactly
//! it, and a client certificate when one is configured.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ptex_config::Settings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::FetchError;
use crate::error::{CA_AS_LEAF, CLIENT_CERT_REQUIRED};

/// Which clients a TLS configuration is for: the storage clients also trust the AWS tools'
/// own bundle (`AWS_CA_BUNDLE`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(any(feature = "s3", feature = "gcs", feature = "ftp")),
    allow(dead_code, reason = "a build without stores has only web clients")
)]
pub(crate) enum For {
    /// http(s) URLs.
    Web,
    /// The s3, gs and ftp clients.
    Stores,
}

/// A TLS configuration that trusts no server, for the client that only ever speaks plain
/// http: a run that needs no TLS loads no roots (the platform verifier reads the whole
/// system certificate directory, which costs more than a small fetch).
pub(crate) fn trusting_nothing() -> Result<rustls::ClientConfig, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Setup {
            reason: e.to_string(),
        })?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads the files the TLS settings name (the CA bundle, `SSL_CLIENT_CERT`), so a bad one
/// fails every run as it did when every client was built up front, without loading roots.
pub(crate) fn check_files(settings: &Settings) -> Result<(), FetchError> {
    if let Some((name, path)) = &settings.tls.ca_bundle {
        read_certs(name, path)?;
    }
    if let Some(path) = settings.tls.client_cert.as_deref() {
        read_identity(path)?;
    }
    Ok(())
}

/// The TLS configuration of a client for `purpose` that presents `client_cert` (a PEM file
/// with the certificate chain and its private key), if any.
pub(crate) fn client_config(
    settings: &Settings,
    client_cert: Option<&Path>,
    purpose: For,
) -> Result<rustls::ClientConfig, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let setup = |reason: String| FetchError::Setup { reason };
    let mut trusted = match &settings.tls.ca_bundle {
        Some((name, path)) => read_certs(name, path)?,
        None => Vec::new(),
    };
    if let (For::Stores, Some(path)) = (purpose, &settings.tls.aws_ca_bundle) {
        trusted.extend(read_certs("AWS_CA_BUNDLE", path)?);
    }
    let verifier = verifier(trusted, &provider)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let (certs, key) = read_identity(path)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| setup(format!("client certificate {}: {e}", path.display())))?
        }
    };
    // reqwest is built for HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The verifiers made in this run, by the extra roots they trust: the platform verifier
/// loads the system's roots (on Linux the whole certificate directory), which is done once
/// per run, not once per client (web, storage, probe).
static VERIFIERS: Mutex<Vec<(Vec<CertificateDer<'static>>, Arc<ExactTrust>)>> =
    Mutex::new(Vec::new());

/// The platform's verifier with `trusted` as extra roots, made once per run.
fn verifier(
    trusted: Vec<CertificateDer<'static>>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<ExactTrust>, FetchError> {
    // A poisoned lock only means another thread panicked while holding it: the list is
    // still whole.
    let mut made = VERIFIERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, verifier)) = made.iter().find(|(roots, _)| *roots == trusted) {
        return Ok(verifier.clone());
    }
    // On Linux the platform verifier reads SSL_CERT_FILE itself; on Windows and macOS it asks
    // the operating system, which does not: the bundle is added as extra roots everywhere.
    // Without a bundle there is nothing to add: on Windows an empty set of extra roots still
    // makes a chain engine of its own, which Wine cannot create.
    let platform = match trusted.is_empty() {
        true => rustls_platform_verifier::Verifier::new(provider.clone()),
        false => rustls_platform_verifier::Verifier::new_with_extra_roots(
            trusted.iter().cloned(),
            provider.clone(),
        ),
    }
    .map_err(|e| FetchError::Setup {
        reason: format!("cannot load the trusted certificates: {e}"),
    })?;
    let verifier = Arc::new(ExactTrust {
        inner: platform,
        trusted: trusted.clone(),
    });
    made.push((trusted, verifier.clone()));
    Ok(verifier)
}

/// The certificates in the PEM bundle `path` that variable `name` names, read once per run.
fn read_certs(name: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, FetchError> {
    // A poisoned lock only means another thread panicked while holding it: the list is
    // still whole.
    let mut read = BUNDLES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, certs)) = read.iter().find(|(p, _)| p == path) {
        return Ok(certs.clone());
    }
    let certs = load_certs(name, path)?;
    read.push((path.to_path_buf(), certs.clone()));
    Ok(certs)
}

/// The CA bundles read in this run, by path: the file check at start-up, the web client and
/// the storage clients each want the bundle, which is read once (a bad one fails the run,
/// so only good ones are kept).
static BUNDLES: Mutex<Vec<(PathBuf, Vec<CertificateDer<'static>>)>> = Mutex::new(Vec::new());

/// Reads and parses the CA bundle `path`, named by the variable `name` in errors.
fn load_certs(name: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, FetchError> {
    let bad = |reason: String| FetchError::Setup {
        reason: format!("{name}={}: {reason}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM bundle: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".to_string()));
    }
    Ok(certs)
}

/// The certificate chain and private key in the PEM file `path`.
fn read_identity(
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), FetchError> {
    let bad = |reason: &str| FetchError::Setup {
        reason: format!("client certificate {}: {reason}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|e| bad(&e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("not a PEM file"))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no certificate (expected the certificate and its key, PEM)",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|_| bad("holds no private key (expected the certificate and its key, PEM)"))?;
    Ok((certs, key))
}

/// Whether a TLS error is rustls refusing a CA certificate as the server's own.
pub(crate) fn is_ca_as_leaf(error: &rustls::Error) -> bool {
    format!("{error:?}").contains("CaUsedAsEndEntity")
}

/// A TLS error in plain words, where there are some for it.
pub(crate) fn plain_words(error: &rustls::Error) -> Option<&'static str> {
    match error {
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            Some(CLIENT_CERT_REQUIRED)
        }
        error if is_ca_as_leaf(error) => Some(CA_AS_LEAF),
        _ => None,
    }
}

/// The platform's verdict, except that a server certificate refused only for being a CA
/// certificate is accepted when the user's bundle holds exactly it (same DER) and it names
/// the host: trusting one self-signed certificate is what `SSL_CERT_FILE` says.
#[derive(Debug)]
struct ExactTrust {
    inner: rustls_platform_verifier::Verifier,
    trusted: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for ExactTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e) if is_ca_as_leaf(&e) && self.trusted.iter().any(|t| t == end_entity) => {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}
