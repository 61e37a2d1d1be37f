//! `--page-open` of `bench stream` and `bench write`: the status page served as `forcesync run
//! --listen` serves it, with an operator's browser open on it while the engine is measured. The
//! browser is two tabs, the overview and the measured mapping's page: each loaded once, then its
//! live part fetched every [`REFRESH`] as the page's own script does.

use std::time::Duration;

use sync_runtime::adapter::Registry;
use sync_runtime::cli::page::{auth::Guard, Page};
use sync_runtime::cli::{server, CliError};
use tokio::sync::watch;

/// How often the page's script fetches the live part (`assets/page.js`).
pub const REFRESH: Duration = Duration::from_secs(2);

/// Serves the status page as `forcesync run --listen` does, on an ephemeral loopback port, until
/// `shutdown`: its base URL and an HTTP client to read it with.
pub async fn serve(
    url: &str,
    registry: &'static Registry,
    shutdown: watch::Receiver<bool>,
) -> Result<(String, reqwest::Client), CliError> {
    let page = Page::new(url.to_owned(), registry, Guard::new(None), None);
    let addr = server::serve(
        "127.0.0.1:0".parse().expect("an address"),
        url.to_owned(),
        registry,
        Some(page),
        shutdown,
    )
    .await
    .map_err(|e| CliError::failure(format!("cannot listen: {e}")))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok((format!("http://{addr}"), http))
}

/// The page being served and refreshed.
pub struct PageOpen {
    /// Closes the tabs (first, so that no request is cut off), then stops serving.
    close: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    browser: tokio::task::JoinHandle<Result<u64, String>>,
}

impl PageOpen {
    /// Serves the page on an ephemeral loopback port and opens the two tabs.
    pub async fn start(
        url: &str,
        registry: &'static Registry,
        mapping: &str,
    ) -> Result<Self, CliError> {
        let (stop, shutdown) = watch::channel(false);
        let (close, mut closed) = watch::channel(false);
        let (base, http) = serve(url, registry, shutdown).await?;
        let tabs = [
            ("/".to_owned(), "/?part=live".to_owned()),
            (
                format!("/mappings/{mapping}"),
                format!("/mappings/{mapping}?part=live"),
            ),
        ];
        let browser = tokio::spawn(async move {
            let get = |path: String| {
                let http = http.clone();
                let url = format!("{base}{path}");
                async move {
                    let response = http.get(&url).send().await.map_err(|e| e.to_string())?;
                    if !response.status().is_success() {
                        return Err(format!("{url}: HTTP {}", response.status()));
                    }
                    response.bytes().await.map_err(|e| e.to_string())?;
                    Ok::<(), String>(())
                }
            };
            for (open, _) in &tabs {
                get(open.clone()).await?;
            }
            let mut served = tabs.len() as u64;
            let mut every = tokio::time::interval(REFRESH);
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        for (_, live) in &tabs {
                            get(live.clone()).await?;
                            served += 1;
                        }
                    }
                    _ = closed.changed() => return Ok(served),
                }
            }
        });
        Ok(Self {
            close,
            stop,
            browser,
        })
    }

    /// Closes the tabs and stops serving; the number of pages served, or why one failed.
    pub async fn stop(self) -> Result<u64, CliError> {
        let _ = self.close.send(true);
        let served = self
            .browser
            .await
            .map_err(|e| CliError::failure(format!("the page's browser: {e}")));
        let _ = self.stop.send(true);
        served?.map_err(|e| CliError::failure(format!("the status page failed: {e}")))
    }
}
