//! Postgres connections for the engine, encrypted as the URL's `sslmode` asks, with libpq's
//! meaning: `disable` (plain), `prefer` (the default: TLS when the server offers it), `require`
//! (TLS, certificate not checked, as Heroku Postgres and most hosted databases need),
//! `verify-ca` / `verify-full` (TLS with the certificate checked against the system's roots, or
//! against `sslrootcert=FILE`). TLS is rustls.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::sync::Notify;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

/// `sslmode` as libpq understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL split into what tokio-postgres parses and the TLS settings it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTarget {
    /// The URL without `sslmode` and `sslrootcert`.
    pub url: String,
    pub mode: TlsMode,
    pub root_cert: Option<String>,
}

/// Reads `sslmode` and `sslrootcert` out of a `postgres://` URL (pure).
pub fn parse_target(database_url: &str) -> Result<DbTarget, String> {
    let (base, query) = match database_url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (database_url, ""),
    };
    let mut mode = TlsMode::Prefer;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" | "allow" => TlsMode::Disable,
                    "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "DATABASE_URL: unknown sslmode `{other}` (use disable, prefer, require, verify-ca or verify-full)"
                        ))
                    }
                }
            }
            "sslrootcert" => root_cert = Some(value.to_owned()),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(DbTarget {
        url,
        mode,
        root_cert,
    })
}

/// A connection as [`open`] makes it (plain or TLS; with `sslmode=disable` no TLS is negotiated).
type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// Connects as the URL's `sslmode` says; the caller drives the returned connection.
async fn open(
    database_url: &str,
) -> Result<(tokio_postgres::Client, Connection), super::EngineError> {
    let target = parse_target(database_url).map_err(super::EngineError::Config)?;
    let mut config: tokio_postgres::Config = target.url.parse()?;
    config.ssl_mode(match target.mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    let tls = MakeRustlsConnect::new(client_config(&target)?);
    Ok(config.connect(tls).await?)
}

/// Opens a connection and drives it in the background.
pub async fn connect(database_url: &str) -> Result<tokio_postgres::Client, super::EngineError> {
    let (client, connection) = open(database_url).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection ended: {e}");
        }
    });
    Ok(client)
}

/// A dedicated connection `LISTEN`ing on `channel` (quoted here), waking `notify` on every
/// notification, and once more when the connection ends (the listener then reports
/// [`Listener::ended`]). Dropping the returned handle stops it. The writer listens on
/// `<schema>.hc_trigger_log`, where the capture triggers notify.
pub(crate) async fn listen(
    database_url: &str,
    channel: &str,
    notify: Arc<Notify>,
) -> Result<Listener, super::EngineError> {
    let (client, mut connection) = open(database_url).await?;
    let name = channel.to_owned();
    let task = tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => notify.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("listener on {name}: {e}");
                    // Wake the listener's owner; its fallback poll covers the rest.
                    notify.notify_one();
                    return;
                }
                None => return,
            }
        }
    });
    // The task holds the connection that `client` sends through; it runs from here on.
    client
        .batch_execute(&format!("LISTEN {}", super::system::quote_ident(channel)))
        .await?;
    Ok(Listener {
        _client: client,
        task: AbortOnDrop(task),
    })
}

/// A running listener (see [`listen`]); dropping it ends its task.
pub(crate) struct Listener {
    _client: tokio_postgres::Client,
    task: AbortOnDrop,
}

impl Listener {
    /// Whether its connection has ended (no more notifications come).
    pub fn ended(&self) -> bool {
        self.task.0.is_finished()
    }
}

/// A task that ends with its owner: dropped, it aborts the task (the listener's connection task,
/// the writer's housekeeping).
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn client_config(target: &DbTarget) -> Result<rustls::ClientConfig, super::EngineError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| super::EngineError::Config(format!("TLS: {e}")))?;
    match target.mode {
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            match &target.root_cert {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        super::EngineError::Config(format!("DATABASE_URL: sslrootcert {path}: {e}"))
                    })?;
                    for cert in rustls_pemfile_certs(&pem) {
                        roots.add(cert).map_err(|e| {
                            super::EngineError::Config(format!(
                                "DATABASE_URL: sslrootcert {path}: {e}"
                            ))
                        })?;
                    }
                }
                None => {
                    for cert in rustls_native_certs::load_native_certs().certs {
                        let _ = roots.add(cert);
                    }
                }
            }
            Ok(builder.with_root_certificates(roots).with_no_client_auth())
        }
        _ => Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth()),
    }
}

/// Certificates in a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// `sslmode=require`/`prefer`: encrypt, accept the server's certificate unchecked (libpq's
/// behaviour for these modes), but still check the handshake signatures.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A Postgres error as a user needs it: tokio-postgres' own text ("db error", "error
/// communicating with the server") followed by what Postgres or the socket said, with the
/// server's detail and hint (`db error: ERROR: duplicate key value violates unique constraint
/// "hcu_idx_account_sfid" (Key (sfid)=(001…) already exists.)`).
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{e}: {}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" hint: {hint}"));
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_with_libpqs_meaning_and_removed_from_the_url() {
        let t = parse_target("postgres://u:p@db.example:5432/app?sslmode=require").unwrap();
        assert_eq!(t.mode, TlsMode::Require);
        assert_eq!(t.url, "postgres://u:p@db.example:5432/app");
        let t = parse_target(
            "postgres://db/app?application_name=x&sslmode=verify-full&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(t.mode, TlsMode::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(t.url, "postgres://db/app?application_name=x");
        assert_eq!(
            parse_target("postgres://db/app").unwrap().mode,
            TlsMode::Prefer
        );
        assert!(parse_target("postgres://db/app?sslmode=sometimes").is_err());
    }
}
