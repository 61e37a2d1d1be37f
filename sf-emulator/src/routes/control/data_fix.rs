//! Changes made outside the API, which publish no change event: a system process that only
//! moves `SystemModstamp` (Salesforce updates it for system changes such as sharing or
//! roll-up recalculation without touching `LastModifiedDate`: Object Reference, "System
//! Fields"), a data fix that updates or deletes records without Change Data Capture seeing it,
//! and purging the recycle bin now (Salesforce Help, "Manage the Recycle Bin": emptying it).
//! Also the seed of the order of rows SOQL leaves unordered (`soql::exec::shuffle_by`, `soql::exec::order_key`).
//!
//! Routes: `POST /__emulator/data/touch`, `POST /__emulator/data/update`,
//! `POST /__emulator/data/delete`, `POST /__emulator/recycle-bin/purge`,
//! `GET|PUT /__emulator/order`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use crate::data::error::{json_response, ApiError};
use crate::data::ids::SfId;
use crate::data::value::{format_datetime_z, Value};
use crate::org::Org;

pub fn routes() -> Router<Org> {
    Router::new()
        .route("/__emulator/data/touch", post(touch))
        .route("/__emulator/data/update", post(update))
        .route("/__emulator/data/delete", post(delete))
        .route("/__emulator/recycle-bin/purge", post(purge))
        .route("/__emulator/order", get(get_order).put(set_order))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_REQUEST", message)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes, example: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::json_parser(format!("{e} (expected a body like {example})")))
}

fn ok(v: Json) -> Response {
    json_response(StatusCode::OK, &v)
}

fn ids_of(raw: &[String]) -> Result<Vec<SfId>, ApiError> {
    raw.iter()
        .map(|s| SfId::parse(s).map_err(|_| invalid(format!("not a record id: {s:?}"))))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsReq {
    ids: Vec<String>,
}

/// Applies `f` to each record (live or in the recycle bin) with the store locked; unknown Ids
/// are an error and nothing changes.
fn each_record(
    org: &Org,
    ids: &[SfId],
    mut f: impl FnMut(
        &crate::data::schema::ObjectSchema,
        &mut crate::data::store::Record,
    ) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let mut st = org.store_mut();
    for id in ids {
        if st.find(id).is_none() {
            return Err(invalid(format!("no record with id {id}")));
        }
    }
    for id in ids {
        let Some((oi, rec)) = st.find(id).map(|(i, r)| (i, r.clone())) else {
            continue;
        };
        let mut rec = rec;
        let object = st.table(oi).object.clone();
        f(&object, &mut rec)?;
        st.table_mut(oi).put(*id, rec);
    }
    Ok(())
}

/// `POST /__emulator/data/touch {"ids":[…]}`: `SystemModstamp` moves to now; nothing else
/// changes and no change event is published.
async fn touch(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: IdsReq = parse(&bytes, r#"{"ids":["001…"]}"#)?;
    let ids = ids_of(&req.ids)?;
    let stamp = org.stamp_ms();
    each_record(&org, &ids, |o, r| {
        if let Some(i) = o.sys.system_modstamp {
            r.set(i, Value::DateTime(stamp));
        }
        Ok(())
    })?;
    Ok(ok(
        json!({"touched": ids.len(), "systemModstamp": format_datetime_z(stamp)}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateReq {
    id: String,
    fields: Map<String, Json>,
}

/// `POST /__emulator/data/update {"id","fields":{…}}`: sets the fields (types checked, no
/// validation rules, no automation), stamps `LastModifiedDate`/`SystemModstamp`, publishes no
/// change event.
async fn update(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: UpdateReq = parse(&bytes, r#"{"id":"001…","fields":{"Name":"Fixed"}}"#)?;
    let ids = ids_of(std::slice::from_ref(&req.id))?;
    let stamp = org.stamp_ms();
    each_record(&org, &ids, |o, r| {
        for (name, v) in &req.fields {
            let fi = o
                .field_index(name)
                .ok_or_else(|| invalid(format!("no field {name} on {}", o.name)))?;
            let value = Value::from_json(&o.fields[fi], v)
                .map_err(|e| invalid(format!("{name}: {}", e.message)))?;
            r.set(fi, value);
        }
        crate::org::write::derive(o, r);
        for i in [o.sys.last_modified_date, o.sys.system_modstamp]
            .into_iter()
            .flatten()
        {
            r.set(i, Value::DateTime(stamp));
        }
        Ok(())
    })?;
    Ok(ok(
        json!({"updated": 1, "systemModstamp": format_datetime_z(stamp)}),
    ))
}

/// `POST /__emulator/data/delete {"ids":[…]}`: moves live records to the recycle bin
/// (`IsDeleted`, `SystemModstamp` now) without a change event and without cascading.
async fn delete(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: IdsReq = parse(&bytes, r#"{"ids":["001…"]}"#)?;
    let ids = ids_of(&req.ids)?;
    let stamp = org.stamp_ms();
    each_record(&org, &ids, |o, r| {
        let Some(d) = o.sys.is_deleted else {
            return Err(invalid(format!("{} has no recycle bin", o.name)));
        };
        r.set(d, Value::Bool(true));
        if let Some(i) = o.sys.system_modstamp {
            r.set(i, Value::DateTime(stamp));
        }
        Ok(())
    })?;
    Ok(ok(json!({"deleted": ids.len()})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PurgeReq {
    ids: Option<Vec<String>>,
}

/// `POST /__emulator/recycle-bin/purge [{"ids":[…]}]`: empties the recycle bin now (or
/// purges only the given records).
async fn purge(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: PurgeReq = if bytes.iter().all(u8::is_ascii_whitespace) {
        PurgeReq::default()
    } else {
        parse(&bytes, r#"{"ids":["001…"]}"#)?
    };
    let ids = req.ids.as_deref().map(ids_of).transpose()?;
    let n = crate::org::recycle_bin::purge(&org, None, ids.as_deref());
    Ok(ok(json!({"purged": n})))
}

async fn get_order(State(org): State<Org>) -> Response {
    ok(json!({"seed": org.read().order_seed}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderReq {
    seed: u64,
}

/// `PUT /__emulator/order {"seed":n}`: another seed, another order of unordered rows.
async fn set_order(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: OrderReq = parse(&bytes, r#"{"seed":7}"#)?;
    org.store_mut().order_seed = req.seed;
    Ok(ok(json!({"seed": req.seed})))
}
