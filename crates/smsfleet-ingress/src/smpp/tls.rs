//! SMPP over TLS (not in SMPP 3.4, but what Kannel's `use-ssl` and
//! `smpps://` clients speak): the server certificate chain and key from PEM
//! files, with the workspace's one crypto provider.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, what)
}

pub fn acceptor(cert_file: &Path, key_file: &Path) -> std::io::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| invalid(format!("{}: {e}", cert_file.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("{}: {e}", cert_file.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("{} holds no certificate", cert_file.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| invalid(format!("{}: {e}", key_file.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("certificate and key: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
