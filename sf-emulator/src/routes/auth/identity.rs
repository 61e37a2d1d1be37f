//! The identity service: `GET /id/<orgId>/<userId>` (the `id` URL of a token response, read by
//! jsforce's `identity()`) and the OpenID Connect `/services/oauth2/userinfo`. A missing or
//! invalid token gets Salesforce's plain-text `403 Bad_OAuth_Token`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::ClientBase;
use crate::org::{Org, Session};
use crate::routes::session::bearer_token;

fn bad_token() -> Response {
    (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response()
}

fn session(org: &Org, headers: &HeaderMap) -> Option<Session> {
    org.session(&bearer_token(headers)?)
}

/// The `urls` map both endpoints carry.
fn urls(base: &str, org_id: &str, user_id: &str) -> Value {
    json!({
        "enterprise": format!("{base}/services/Soap/c/{{version}}/{org_id}"),
        "metadata": format!("{base}/services/Soap/m/{{version}}/{org_id}"),
        "partner": format!("{base}/services/Soap/u/{{version}}/{org_id}"),
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "search": format!("{base}/services/data/v{{version}}/search/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "recent": format!("{base}/services/data/v{{version}}/recent/"),
        "tooling_soap": format!("{base}/services/Soap/T/{{version}}/{org_id}"),
        "tooling_rest": format!("{base}/services/data/v{{version}}/tooling/"),
        "profile": format!("{base}/{user_id}"),
        "feeds": format!("{base}/services/data/v{{version}}/chatter/feeds"),
        "groups": format!("{base}/services/data/v{{version}}/chatter/groups"),
        "users": format!("{base}/services/data/v{{version}}/chatter/users"),
        "feed_items": format!("{base}/services/data/v{{version}}/chatter/feed-items"),
        "feed_elements": format!("{base}/services/data/v{{version}}/chatter/feed-elements"),
        "custom_domain": base,
    })
}

/// `GET /id/<orgId>/<userId>`.
pub async fn identity(
    State(org): State<Org>,
    Path((org_id, user_id)): Path<(String, String)>,
    ClientBase(base): ClientBase,
    headers: HeaderMap,
) -> Response {
    let Some(session) = session(&org, &headers) else {
        return bad_token();
    };
    let own_org = session.org_id.to_string();
    let own_user = session.user_id.to_string();
    // Ids may be given in 15- or 18-character form.
    let same = |given: &str, own: &str| given.len() >= 15 && own.starts_with(&given[..15]);
    if !same(&org_id, &own_org) || !same(&user_id, &own_user) {
        return (StatusCode::FORBIDDEN, "Bad_Id").into_response();
    }
    let config = org.config();
    Json(json!({
        "id": format!("{base}/id/{own_org}/{own_user}"),
        "asserted_user": true,
        "user_id": own_user,
        "organization_id": own_org,
        "username": config.username,
        "nick_name": nick_name(&config.username),
        "display_name": "Admin User",
        "email": config.username,
        "email_verified": true,
        "first_name": "Admin",
        "last_name": "User",
        "timezone": "America/Los_Angeles",
        "photos": {
            "picture": format!("{base}/profilephoto/005/F"),
            "thumbnail": format!("{base}/profilephoto/005/T"),
        },
        "addr_street": null,
        "addr_city": null,
        "addr_state": null,
        "addr_country": null,
        "addr_zip": null,
        "mobile_phone": null,
        "mobile_phone_verified": false,
        "is_lightning_login_user": false,
        "status": {"created_date": null, "body": null},
        "urls": urls(&base, &own_org, &own_user),
        "active": true,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": -28_800_000,
        "last_modified_date": "2024-01-01T00:00:00.000+0000",
        "is_app_installed": true,
    }))
    .into_response()
}

/// `GET|POST /services/oauth2/userinfo`.
pub async fn userinfo(
    State(org): State<Org>,
    ClientBase(base): ClientBase,
    headers: HeaderMap,
) -> Response {
    let Some(session) = session(&org, &headers) else {
        return bad_token();
    };
    let org_id = session.org_id.to_string();
    let user_id = session.user_id.to_string();
    let config = org.config();
    Json(json!({
        "sub": format!("{base}/id/{org_id}/{user_id}"),
        "user_id": user_id,
        "organization_id": org_id,
        "preferred_username": config.username,
        "nickname": nick_name(&config.username),
        "name": "Admin User",
        "email": config.username,
        "email_verified": true,
        "given_name": "Admin",
        "family_name": "User",
        "zoneinfo": "America/Los_Angeles",
        "photos": {
            "picture": format!("{base}/profilephoto/005/F"),
            "thumbnail": format!("{base}/profilephoto/005/T"),
        },
        "profile": format!("{base}/{user_id}"),
        "picture": format!("{base}/profilephoto/005/F"),
        "address": {},
        "is_salesforce_integration_user": false,
        "urls": urls(&base, &org_id, &user_id),
        "active": true,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": -28_800_000,
        "updated_at": "2024-01-01T00:00:00Z",
    }))
    .into_response()
}

fn nick_name(username: &str) -> &str {
    username.split('@').next().unwrap_or(username)
}
