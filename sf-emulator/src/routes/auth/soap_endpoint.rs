//! HTTP handlers of the SOAP endpoints `/services/Soap/u/<ver>` (partner) and
//! `/services/Soap/c/<ver>` (enterprise), with or without the trailing org id of a `serverUrl`
//! (or a trailing slash, as Salesforce's Python Pub/Sub API quick start sends).
//! `login` mints a session; `logout` ends the session named in the `SessionHeader`; `undelete`
//! restores records from the recycle bin (SOAP API Developer Guide, "undelete()": at most 200
//! ids per call, one result per id; the REST API has no undelete); other operations are
//! answered with Salesforce's `No operation available` client fault.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::soap::{self, LoginResult, SoapCall, SoapParseError, UndeleteResult, Wsdl};
use super::{credentials_match, ClientBase};
use crate::org::write::{WriteContext, WriteOp};
use crate::org::Org;

/// `POST /services/Soap/u/<ver>`.
pub async fn partner(
    State(org): State<Org>,
    Path(version): Path<String>,
    ClientBase(base): ClientBase,
    body: Bytes,
) -> Response {
    handle(&org, Wsdl::Partner, &version, &base, &body)
}

/// `POST /services/Soap/u/<ver>/<orgId>`.
pub async fn partner_with_org(
    State(org): State<Org>,
    Path((version, _org_id)): Path<(String, String)>,
    ClientBase(base): ClientBase,
    body: Bytes,
) -> Response {
    handle(&org, Wsdl::Partner, &version, &base, &body)
}

/// `POST /services/Soap/c/<ver>`.
pub async fn enterprise(
    State(org): State<Org>,
    Path(version): Path<String>,
    ClientBase(base): ClientBase,
    body: Bytes,
) -> Response {
    handle(&org, Wsdl::Enterprise, &version, &base, &body)
}

/// `POST /services/Soap/c/<ver>/<orgId>`.
pub async fn enterprise_with_org(
    State(org): State<Org>,
    Path((version, _org_id)): Path<(String, String)>,
    ClientBase(base): ClientBase,
    body: Bytes,
) -> Response {
    handle(&org, Wsdl::Enterprise, &version, &base, &body)
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        body,
    )
        .into_response()
}

fn handle(org: &Org, wsdl: Wsdl, version: &str, base: &str, body: &[u8]) -> Response {
    if !is_api_version(version) {
        return xml(
            StatusCode::NOT_FOUND,
            soap::client_fault(&SoapParseError::Malformed(format!(
                "unknown API version {version:?}: use a number such as 59.0"
            ))),
        );
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(_) => {
            return xml(
                StatusCode::INTERNAL_SERVER_ERROR,
                soap::client_fault(&SoapParseError::Malformed(
                    "the request body is not UTF-8".into(),
                )),
            )
        }
    };
    match soap::parse(text) {
        Ok(SoapCall::Login { username, password }) => {
            if !credentials_match(org, &username, &password) {
                return xml(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    soap::login_fault(wsdl, "INVALID_LOGIN", soap::INVALID_LOGIN_MESSAGE),
                );
            }
            let session = org.create_session();
            let org_id = session.org_id.to_string();
            let user_id = session.user_id.to_string();
            let config = org.config();
            let profile_id = crate::data::ids::SfId::generate("00e", 1).to_string();
            let result = LoginResult {
                base_url: base,
                api_version: version,
                org_id: &org_id,
                org_name: "forcesync sf-emulator",
                user_id: &user_id,
                username: &config.username,
                user_full_name: "Admin User",
                user_email: &config.username,
                profile_id: &profile_id,
                session_id: &session.token,
                session_seconds_valid: org.session_seconds(),
            };
            xml(StatusCode::OK, soap::login_response(wsdl, &result))
        }
        Ok(SoapCall::Logout { session_id }) => match session_id {
            Some(token) if org.revoke_session(&token) => {
                xml(StatusCode::OK, soap::logout_response(wsdl))
            }
            _ => xml(StatusCode::INTERNAL_SERVER_ERROR, soap::session_fault(wsdl)),
        },
        Ok(SoapCall::Undelete {
            session_id,
            client,
            ids,
        }) => undelete(org, wsdl, version, session_id, client, ids),
        Err(error) => xml(
            StatusCode::INTERNAL_SERVER_ERROR,
            soap::client_fault(&error),
        ),
    }
}

/// Most ids one `undelete()` call takes.
const MAX_UNDELETE_IDS: usize = 200;

fn undelete(
    org: &Org,
    wsdl: Wsdl,
    version: &str,
    session_id: Option<String>,
    client: Option<String>,
    ids: Vec<String>,
) -> Response {
    let endpoint = format!("POST /services/Soap/{}/{{version}} undelete", wsdl.letter());
    if crate::routes::session::authenticate(org, session_id, &endpoint).is_err() {
        return xml(StatusCode::INTERNAL_SERVER_ERROR, soap::session_fault(wsdl));
    }
    if ids.len() > MAX_UNDELETE_IDS {
        return xml(
            StatusCode::INTERNAL_SERVER_ERROR,
            soap::api_fault(
                wsdl,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            ),
        );
    }
    // What has been in the recycle bin for 15 days can no longer come back.
    crate::org::recycle_bin::purge_expired(org);
    // `changeOrigin` names the `CallOptions` client, as `Sforce-Call-Options` does for REST (CDC
    // Developer Guide, "ChangeEventHeader Fields").
    let client = client.unwrap_or_else(|| "SfdcInternalAPI/".to_owned());
    let ctx = WriteContext::new(
        org.user_id(),
        format!("com/salesforce/api/soap/{version};client={client}"),
    );
    let ops = ids
        .iter()
        .map(|id| WriteOp::Undelete { id: id.clone() })
        .collect();
    let results: Vec<UndeleteResult> = org
        .write(&ctx, ops, false)
        .into_iter()
        .zip(&ids)
        .map(|(r, id)| UndeleteResult {
            id: r.id().map_or_else(|| id.clone(), |i| i.to_string()),
            errors: r
                .errors()
                .iter()
                .map(|e| (e.status_code.clone(), e.message.clone(), e.fields.clone()))
                .collect(),
        })
        .collect();
    xml(StatusCode::OK, soap::undelete_response(wsdl, &results))
}

fn is_api_version(version: &str) -> bool {
    match version.split_once('.') {
        Some((major, minor)) => {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}
