//! HTTPS for clients that insist on it: a certificate authority generated at start, a leaf
//! certificate it signs for `localhost`, `127.0.0.1` and the listen host, and the rustls server
//! configuration that serves it. The CA is what a client trusts (`--ca-out` writes it as PEM).

use std::net::IpAddr;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A freshly generated CA and the server certificate it issued.
pub struct TlsMaterial {
    /// The CA certificate, PEM: what clients must trust.
    pub ca_pem: String,
    /// The server's certificate chain, PEM (leaf then CA).
    pub chain_pem: String,
    /// The server's private key, PEM (PKCS#8).
    pub key_pem: String,
}

/// Names every generated certificate covers besides the listen address: loopback, and the
/// Salesforce login and My Domain hosts, so clients whose login host is redirected to the
/// emulator (hosts file, DNS override) accept it once they trust the CA.
pub const DEFAULT_HOSTS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "login.salesforce.com",
    "test.salesforce.com",
    "*.salesforce.com",
    "*.my.salesforce.com",
];

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the TLS certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the TLS server configuration was rejected: {0}")]
    Config(#[from] std::io::Error),
}

impl TlsMaterial {
    /// Generates a CA and a leaf certificate valid for [`DEFAULT_HOSTS`] and every name in
    /// `extra_hosts` (e.g. the address the emulator listens on).
    pub fn generate(extra_hosts: &[String]) -> Result<Self, TlsError> {
        let mut ca_params = CertificateParams::default();
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::OrganizationName, "forcesync sf-emulator");
        ca_name.push(DnType::CommonName, "sf-emulator local CA");
        ca_params.distinguished_name = ca_name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut names: Vec<String> = DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect();
        for host in extra_hosts {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if !host.is_empty() && !names.iter().any(|n| n == host) {
                names.push(host.to_string());
            }
        }
        let mut leaf_params = CertificateParams::default();
        leaf_params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(name.clone().try_into()?)),
            })
            .collect::<Result<Vec<_>, rcgen::Error>>()?;
        let mut leaf_name = DistinguishedName::new();
        leaf_name.push(DnType::CommonName, "localhost");
        leaf_params.distinguished_name = leaf_name;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate()?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

        let ca_pem = ca.pem();
        Ok(TlsMaterial {
            chain_pem: format!("{}{}", leaf.pem(), ca_pem),
            ca_pem,
            key_pem: leaf_key.serialize_pem(),
        })
    }

    /// The rustls configuration serving this certificate chain.
    pub async fn rustls_config(&self) -> Result<RustlsConfig, TlsError> {
        Ok(RustlsConfig::from_pem(
            self.chain_pem.clone().into_bytes(),
            self.key_pem.clone().into_bytes(),
        )
        .await?)
    }
}

/// Serves `app` over HTTPS on `listener` until `shutdown` fires (in-flight requests then get
/// a second to finish).
pub async fn spawn_https(
    listener: TcpListener,
    app: Router,
    material: &TlsMaterial,
    shutdown: oneshot::Receiver<()>,
) -> Result<JoinHandle<()>, TlsError> {
    let config = material.rustls_config().await?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(1)));
    });
    let server = axum_server::from_tcp_rustls(listener.into_std()?, config)?.handle(handle);
    Ok(tokio::spawn(async move {
        if let Err(error) = server.serve(app.into_make_service()).await {
            tracing::error!("HTTPS server stopped: {error}");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generated_material_is_accepted_by_rustls() {
        let material = TlsMaterial::generate(&["emulator.test".to_string()]).unwrap();
        assert!(material.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(material.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        material.rustls_config().await.unwrap();
    }
}
