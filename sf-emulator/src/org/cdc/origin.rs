//! `ChangeEventHeader.changeOrigin`: `com/salesforce/api/<api>/<version>;client=<id>`, where
//! `<id>` is what the writing request sent in `Sforce-Call-Options: client=<id>` (Change Data
//! Capture Developer Guide, "ChangeEventHeader Fields"; REST API Developer Guide, "Call
//! Options Header"). The router's middleware (`routes::call_options`) runs each request inside
//! `with_client`, which puts the request's client id in a task-local for the duration of the
//! request, so the write path's `WriteContext` picks it up wherever the request is handled.

use std::future::Future;

tokio::task_local! {
    static CALL_CLIENT: Option<String>;
}

/// The `client` option of a `Sforce-Call-Options` header value (`client=SampleCaseSensitiveToken/100, defaultNamespace=x`).
pub fn client_option(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("client") && !v.trim().is_empty())
            .then(|| v.trim().to_string())
    })
}

/// The client id of the request being handled, if it sent one.
pub fn current_client() -> Option<String> {
    CALL_CLIENT.try_with(|c| c.clone()).ok().flatten()
}

/// `com/salesforce/api/<api>/<version>`, with `;client=<id>` when the request named one.
pub fn change_origin(api: &str, version: &str, client: Option<&str>) -> String {
    match client {
        Some(id) => format!("com/salesforce/api/{api}/{version};client={id}"),
        None => format!("com/salesforce/api/{api}/{version}"),
    }
}

/// Runs `fut` with `client` (a request's `Sforce-Call-Options` client id) in scope of
/// `current_client`.
pub async fn with_client<F: Future>(client: Option<String>, fut: F) -> F::Output {
    CALL_CLIENT.scope(client, fut).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_option_is_read_among_others() {
        assert_eq!(client_option("client=forcesync"), Some("forcesync".into()));
        assert_eq!(
            client_option("defaultNamespace=ns, client=SampleToken/100"),
            Some("SampleToken/100".into())
        );
        assert_eq!(client_option("defaultNamespace=ns"), None);
        assert_eq!(
            change_origin("rest", "59.0", Some("forcesync")),
            "com/salesforce/api/rest/59.0;client=forcesync"
        );
        assert_eq!(
            change_origin("bulkapi", "59.0", None),
            "com/salesforce/api/bulkapi/59.0"
        );
    }
}
