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

/// A self-signed certificate that says `CA:TRUE`, as `openssl req -x509` makes by default,
/// valid for `names`.
pub fn self_signed_ca_for(names: &[&str]) -> TlsIdentity {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params
        .self_signed(&key)
        .expect("self-sign a CA:TRUE certificate");
    TlsIdentity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A CA and a client certificate it signed, for servers that require mutual TLS.
pub struct ClientAuth {
    /// The CA certificate (PEM) the server trusts for client certificates.
    pub ca_pem: String,
    /// The client's certificate followed by its private key, in one PEM file, as
    /// `SSL_CLIENT_CERT` takes it.
    pub client_pem: String,
}

impl ClientAuth {
    /// A fresh CA and client certificate.
    pub fn new() -> ClientAuth {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut client = rcgen::CertificateParams::new(vec!["client".to_string()]).expect("params");
        client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = rcgen::KeyPair::generate().expect("client key");
        let client_cert = client
            .signed_by(&client_key, &issuer)
            .expect("sign the client certificate");
        ClientAuth {
            ca_pem: ca_cert.pem(),
            client_pem: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
        }
    }
}

impl TlsIdentity {
    /// A rustls server configuration presenting this identity that requires a client
    /// certificate signed by `client_ca` (PEM).
    pub fn server_config_requiring(&self, client_ca: &str) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(client_ca.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("add the client CA");
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("parse test certificate PEM");
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("parse test key PEM");
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .expect("build rustls server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

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
