//! Throwaway TLS identities for the loopback test server: a fresh self-signed certificate
//! valid for `127.0.0.1` (IP SAN) and `localhost`, trusted by clients that use it as their CA.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and its private key, both PEM encoded.
///
/// `cert_pem` is self-signed, so it is both the certificate the server presents and the
/// trust anchor a client needs (e.g. `curl --cacert`).
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    /// The self-signed certificate (PEM); hand this to clients as their CA bundle.
    pub cert_pem: String,
    /// The certificate's private key (PKCS#8 PEM).
    pub key_pem: String,
}

/// Generates a fresh self-signed identity with SANs `127.0.0.1` (IP address) and `localhost`.
pub fn self_signed() -> TlsIdentity {
    self_signed_for(&["127.0.0.1", "localhost"])
}

/// Generates a fresh self-signed identity valid for each of `names` (host names a private
/// `/etc/hosts` points at loopback, or IP addresses).
pub fn self_signed_for(names: &[&str]) -> TlsIdentity {
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let certified =
        rcgen::generate_simple_self_signed(names).expect("generate self-signed test certificate");
    TlsIdentity {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    }
}

impl TlsIdentity {
    /// Writes the certificate to `dir/cert.pem` and returns that path.
    pub fn write_cert(&self, dir: &Path) -> PathBuf {
        let path = dir.join("cert.pem");
        std::fs::write(&path, &self.cert_pem)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A rustls server configuration presenting this identity (ring provider, HTTP/1.1 ALPN).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("parse test certificate PEM");
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("parse test key PEM");
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("build rustls server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
