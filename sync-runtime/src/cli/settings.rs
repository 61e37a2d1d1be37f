//! The command's settings: the Salesforce connection and the database, from the environment or a
//! TOML file given with `--config` (the environment wins), checked at start.
//!
//! A missing or malformed setting is a [`SettingsError`] naming the variable and what to set;
//! the command exits with code 2. Credentials are held in [`Secret`]s and never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::salesforce::{Credentials, Secret};

/// Where Salesforce logins go when `SF_LOGIN_URL` is not set.
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

/// Every setting name the command reads.
pub const NAMES: [&str; 11] = [
    "SF_LOGIN_URL",
    "SF_CLIENT_ID",
    "SF_CLIENT_SECRET",
    "SF_USERNAME",
    "SF_PASSWORD",
    "SF_JWT_KEY_FILE",
    "SF_REFRESH_TOKEN",
    "DATABASE_URL",
    "FORCESYNC_DEGRADED_POLL_SECONDS",
    "FORCESYNC_PUBSUB_URL",
    "FORCESYNC_STREAMING_TRANSPORT",
];

/// A setting that is missing or wrong: which one, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub name: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}. {}", self.name, self.problem, self.fix)
    }
}

impl std::error::Error for SettingsError {}

fn missing(name: &str, fix: &str) -> SettingsError {
    SettingsError {
        name: name.to_owned(),
        problem: "is not set".to_owned(),
        fix: fix.to_owned(),
    }
}

/// The raw values, by name (empty values count as unset).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sources {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Sources {
    /// The values of a `--config` file (TOML, keys named like the variables, upper or lower
    /// case), overridden by the environment `env`.
    pub fn gather(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Sources, SettingsError> {
        let mut values = BTreeMap::new();
        if let Some(path) = file {
            values = read_file(path)?;
        }
        for name in NAMES {
            if let Some(value) = env(name).filter(|v| !v.is_empty()) {
                values.insert(name.to_owned(), value);
            }
        }
        Ok(Sources { values })
    }

    /// Sources from explicit pairs (tests, embedding).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Sources {
        Sources {
            values: pairs
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `DATABASE_URL`, checked.
    pub fn database_url(&self) -> Result<String, SettingsError> {
        let url = self.get("DATABASE_URL").ok_or_else(|| {
            missing(
                "DATABASE_URL",
                "Set it to the app's Postgres database, e.g. DATABASE_URL=postgres://user@localhost:5432/app",
            )
        })?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(SettingsError {
                name: "DATABASE_URL".to_owned(),
                problem: "is not a postgres:// URL".to_owned(),
                fix: "Set it like DATABASE_URL=postgres://user@localhost:5432/app".to_owned(),
            });
        }
        Ok(url.to_owned())
    }

    /// `FORCESYNC_DEGRADED_POLL_SECONDS`: how often a streaming mapping polls while the org
    /// refuses streaming (`None`: the engine's default, 10 s).
    pub fn degraded_poll(&self) -> Result<Option<std::time::Duration>, SettingsError> {
        let name = "FORCESYNC_DEGRADED_POLL_SECONDS";
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.trim().parse::<u64>() {
            Ok(seconds) if (1..=86_400).contains(&seconds) => {
                Ok(Some(std::time::Duration::from_secs(seconds)))
            }
            _ => Err(SettingsError {
                name: name.to_owned(),
                problem: format!("is {text:?}, not a number of seconds from 1 to 86400"),
                fix: format!("Set it like {name}=10 (the default) or unset it"),
            }),
        }
    }

    /// `FORCESYNC_PUBSUB_URL`: the Pub/Sub API endpoint change events stream from (`None`:
    /// Salesforce's, `https://api.pubsub.salesforce.com:7443`).
    pub fn pubsub_url(&self) -> Result<Option<String>, SettingsError> {
        let name = "FORCESYNC_PUBSUB_URL";
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let url = text.trim();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                Ok(Some(url.trim_end_matches('/').to_owned()))
            }
            _ => Err(SettingsError {
                name: name.to_owned(),
                problem: format!("is {text:?}, not an https:// (or http://) URL"),
                fix: format!(
                    "Set it like {name}=https://api.pubsub.salesforce.com:7443 (the default) or unset it"
                ),
            }),
        }
    }

    /// `FORCESYNC_STREAMING_TRANSPORT`: `pubsub` or `cometd`, overriding `forcesync.toml`'s
    /// `streaming_transport` for this deployment (`None`: the mappings' setting).
    pub fn streaming_transport(
        &self,
    ) -> Result<Option<crate::adapter::StreamingTransport>, SettingsError> {
        let name = "FORCESYNC_STREAMING_TRANSPORT";
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match crate::adapter::StreamingTransport::from_name(text.trim()) {
            Some(transport) => Ok(Some(transport)),
            None => Err(SettingsError {
                name: name.to_owned(),
                problem: format!("is {text:?}, not pubsub or cometd"),
                fix: format!(
                    "Set it like {name}=pubsub or {name}=cometd, or unset it to use forcesync.toml's streaming_transport"
                ),
            }),
        }
    }

    /// The Salesforce login URL and credentials, checked. The flow follows from what is set:
    /// `SF_JWT_KEY_FILE` (JWT bearer), else `SF_REFRESH_TOKEN`, else `SF_USERNAME` (password),
    /// else client credentials.
    pub fn salesforce(&self) -> Result<(String, Credentials), SettingsError> {
        let login_url = self.get("SF_LOGIN_URL").unwrap_or(DEFAULT_LOGIN_URL);
        check_login_url(login_url)?;
        let client_id = self.get("SF_CLIENT_ID").ok_or_else(|| {
            missing(
                "SF_CLIENT_ID",
                "Set it to the consumer key of your Salesforce connected app (Setup → App Manager)",
            )
        })?;
        let secret = |name: &str| self.get(name).map(Secret::new);
        let credentials = if let Some(key_file) = self.get("SF_JWT_KEY_FILE") {
            let username = self.get("SF_USERNAME").ok_or_else(|| {
                missing(
                    "SF_USERNAME",
                    "The JWT bearer flow (SF_JWT_KEY_FILE) logs in as a user: set SF_USERNAME to that user's login",
                )
            })?;
            let path = PathBuf::from(key_file);
            if !path.is_file() {
                return Err(SettingsError {
                    name: "SF_JWT_KEY_FILE".to_owned(),
                    problem: format!("names {}, which is not a readable file", path.display()),
                    fix: "Set it to the PEM private key whose certificate is uploaded to the connected app".to_owned(),
                });
            }
            Credentials::JwtBearer {
                client_id: client_id.to_owned(),
                username: username.to_owned(),
                key_file: path,
                audience: None,
            }
        } else if let Some(token) = secret("SF_REFRESH_TOKEN") {
            Credentials::RefreshToken {
                client_id: client_id.to_owned(),
                client_secret: secret("SF_CLIENT_SECRET"),
                refresh_token: token,
            }
        } else {
            let client_secret = secret("SF_CLIENT_SECRET").ok_or_else(|| {
                missing(
                    "SF_CLIENT_SECRET",
                    "Set it to the consumer secret of your connected app, or log in with SF_JWT_KEY_FILE or SF_REFRESH_TOKEN instead",
                )
            })?;
            match self.get("SF_USERNAME") {
                Some(username) => {
                    let password = secret("SF_PASSWORD").ok_or_else(|| {
                        missing(
                            "SF_PASSWORD",
                            "The password flow (SF_USERNAME) needs the user's password, with the security token appended when the org requires one",
                        )
                    })?;
                    Credentials::Password {
                        client_id: client_id.to_owned(),
                        client_secret,
                        username: username.to_owned(),
                        password,
                        security_token: Secret::new(""),
                    }
                }
                None => Credentials::ClientCredentials {
                    client_id: client_id.to_owned(),
                    client_secret,
                },
            }
        };
        Ok((login_url.trim_end_matches('/').to_owned(), credentials))
    }
}

fn check_login_url(url: &str) -> Result<(), SettingsError> {
    let parsed = url::Url::parse(url).ok();
    let ok = parsed
        .as_ref()
        .is_some_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(SettingsError {
            name: "SF_LOGIN_URL".to_owned(),
            problem: format!("is not an http(s) URL: `{url}`"),
            fix: format!(
                "Set it to {DEFAULT_LOGIN_URL}, https://test.salesforce.com, your My Domain URL, or http://host:port for a local org"
            ),
        })
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, SettingsError> {
    let bad = |problem: String| {
        SettingsError {
        name: "--config".to_owned(),
        problem,
        fix: "Give a TOML file of settings, e.g. DATABASE_URL = \"postgres://…\" and SF_LOGIN_URL = \"https://…\"".to_owned(),
    }
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("file {} cannot be read ({e})", path.display())))?;
    parse_file(&text).map_err(|problem| bad(format!("file {} {problem}", path.display())))
}

/// The settings of a TOML file: string values keyed by setting name (any case).
pub fn parse_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("is not valid TOML: {}", e.message()))?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        if !NAMES.contains(&name.as_str()) {
            return Err(format!(
                "has an unknown setting `{key}` (known: {})",
                NAMES.join(", ")
            ));
        }
        let toml::Value::String(value) = value else {
            return Err(format!("sets `{key}` to something other than a string"));
        };
        values.insert(name, value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password_sources() -> Vec<(&'static str, &'static str)> {
        vec![
            ("SF_CLIENT_ID", "id"),
            ("SF_CLIENT_SECRET", "s3cret"),
            ("SF_USERNAME", "admin@example.com"),
            ("SF_PASSWORD", "hunter2"),
        ]
    }

    #[test]
    fn the_degraded_poll_interval_is_a_number_of_seconds() {
        let none = Sources::from_pairs(Vec::<(&str, &str)>::new());
        assert_eq!(none.degraded_poll(), Ok(None));
        let five = Sources::from_pairs([("FORCESYNC_DEGRADED_POLL_SECONDS", "5")]);
        assert_eq!(
            five.degraded_poll(),
            Ok(Some(std::time::Duration::from_secs(5)))
        );
        for bad in ["0", "ten", "-3"] {
            let e = Sources::from_pairs([("FORCESYNC_DEGRADED_POLL_SECONDS", bad)])
                .degraded_poll()
                .unwrap_err();
            assert_eq!(e.name, "FORCESYNC_DEGRADED_POLL_SECONDS");
        }
    }

    #[test]
    fn a_missing_database_url_names_the_variable_and_an_example() {
        let err = Sources::default().database_url().unwrap_err();
        assert_eq!(err.name, "DATABASE_URL");
        assert!(err.to_string().contains("DATABASE_URL is not set"));
        assert!(err.to_string().contains("postgres://"));
    }

    #[test]
    fn a_database_url_of_another_scheme_is_refused() {
        let err = Sources::from_pairs([("DATABASE_URL", "mysql://x/y")])
            .database_url()
            .unwrap_err();
        assert_eq!(err.name, "DATABASE_URL");
    }

    #[test]
    fn the_login_url_defaults_to_production_and_accepts_http() {
        let (url, creds) = Sources::from_pairs(password_sources())
            .salesforce()
            .unwrap();
        assert_eq!(url, DEFAULT_LOGIN_URL);
        assert!(matches!(creds, Credentials::Password { .. }));
        let mut pairs = password_sources();
        pairs.push(("SF_LOGIN_URL", "http://127.0.0.1:8080/"));
        let (url, _) = Sources::from_pairs(pairs).salesforce().unwrap();
        assert_eq!(url, "http://127.0.0.1:8080");
    }

    #[test]
    fn a_malformed_login_url_is_named() {
        let mut pairs = password_sources();
        pairs.push(("SF_LOGIN_URL", "login.salesforce.com"));
        let err = Sources::from_pairs(pairs).salesforce().unwrap_err();
        assert_eq!(err.name, "SF_LOGIN_URL");
    }

    #[test]
    fn the_flow_follows_from_what_is_set() {
        let refresh = Sources::from_pairs([("SF_CLIENT_ID", "id"), ("SF_REFRESH_TOKEN", "tok")]);
        assert!(matches!(
            refresh.salesforce().unwrap().1,
            Credentials::RefreshToken { .. }
        ));
        let cc = Sources::from_pairs([("SF_CLIENT_ID", "id"), ("SF_CLIENT_SECRET", "s")]);
        assert!(matches!(
            cc.salesforce().unwrap().1,
            Credentials::ClientCredentials { .. }
        ));
    }

    #[test]
    fn each_missing_piece_of_a_flow_is_named() {
        let id = ("SF_CLIENT_ID", "id");
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[], "SF_CLIENT_ID"),
            (&[id], "SF_CLIENT_SECRET"),
            (
                &[id, ("SF_CLIENT_SECRET", "s"), ("SF_USERNAME", "u")],
                "SF_PASSWORD",
            ),
            (&[id, ("SF_JWT_KEY_FILE", "/nonexistent")], "SF_USERNAME"),
            (
                &[
                    id,
                    ("SF_USERNAME", "u"),
                    ("SF_JWT_KEY_FILE", "/nonexistent/key.pem"),
                ],
                "SF_JWT_KEY_FILE",
            ),
        ];
        for (set, missing) in cases {
            let err = Sources::from_pairs(set.iter().copied())
                .salesforce()
                .unwrap_err();
            assert_eq!(err.name, missing, "{set:?}");
        }
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("forcesync-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("forcesync.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://file/db\"\nSF_CLIENT_ID = \"from-file\"\n",
        )
        .unwrap();
        let sources = Sources::gather(Some(&file), |name| {
            (name == "SF_CLIENT_ID").then(|| "from-env".to_owned())
        })
        .unwrap();
        assert_eq!(sources.database_url().unwrap(), "postgres://file/db");
        assert_eq!(sources.get("SF_CLIENT_ID"), Some("from-env"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_with_an_unknown_key_or_bad_toml_is_refused() {
        assert!(parse_file("SF_PASWORD = \"x\"")
            .unwrap_err()
            .contains("SF_PASWORD"));
        assert!(parse_file("DATABASE_URL = ").is_err());
        assert!(parse_file("DATABASE_URL = 5").is_err());
    }

    #[test]
    fn the_pubsub_endpoint_is_optional_and_must_be_a_url() {
        assert_eq!(Sources::default().pubsub_url().unwrap(), None);
        let set = |v: &str| Sources::from_pairs([("FORCESYNC_PUBSUB_URL", v)]).pubsub_url();
        assert_eq!(
            set("http://127.0.0.1:7443/").unwrap().as_deref(),
            Some("http://127.0.0.1:7443")
        );
        assert_eq!(
            set("https://api.pubsub.salesforce.com:7443")
                .unwrap()
                .as_deref(),
            Some("https://api.pubsub.salesforce.com:7443")
        );
        let err = set("api.pubsub.salesforce.com:7443").unwrap_err();
        assert_eq!(err.name, "FORCESYNC_PUBSUB_URL");
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[test]
    fn the_streaming_transport_override_names_a_transport() {
        use crate::adapter::StreamingTransport;
        assert_eq!(Sources::default().streaming_transport().unwrap(), None);
        let set = |v: &str| {
            Sources::from_pairs([("FORCESYNC_STREAMING_TRANSPORT", v)]).streaming_transport()
        };
        assert_eq!(set("cometd").unwrap(), Some(StreamingTransport::Cometd));
        assert_eq!(set("pubsub").unwrap(), Some(StreamingTransport::PubSub));
        let err = set("grpc").unwrap_err();
        assert_eq!(err.name, "FORCESYNC_STREAMING_TRANSPORT");
        assert!(err.to_string().contains("not pubsub or cometd"), "{err}");
    }

    #[test]
    fn no_secret_shows_in_debug_output() {
        let sources = Sources::from_pairs(password_sources());
        let (_, creds) = sources.salesforce().unwrap();
        let shown = format!("{sources:?} {creds:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
