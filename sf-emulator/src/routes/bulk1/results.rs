//! Bulk API 1.0 result bodies: ingest results (JSON, CSV `Id,Success,Created,Error`, XML) and
//! query results (CSV, JSON with epoch-millisecond dates, XML `queryResult`).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use serde_json::Value as Json;

use super::jobs::ContentType;
use super::wire::{self, NS};
use crate::data::ids::SfId;
use crate::data::soql::bind::Output;
use crate::data::soql::exec::parent;
use crate::data::soql::render::{self, Node};
use crate::data::store::{Record, Store};
use crate::data::value::Value;
use crate::org::write::WriteResult;
use crate::routes::query_api::Prepared;

pub(super) fn ingest_results(ct: ContentType, results: &[WriteResult]) -> Response {
    match ct {
        ContentType::Json => {
            let arr: Vec<Json> = results
                .iter()
                .map(|r| match r {
                    WriteResult::Ok { id, created } => serde_json::json!({"success": true, "created": created, "id": id.as_str(), "errors": []}),
                    WriteResult::Err(errs) => serde_json::json!({
                        "success": false, "created": false, "id": null,
                        "errors": errs.iter().map(|e| e.to_status_json()).collect::<Vec<_>>(),
                    }),
                })
                .collect();
            wire::json_response(StatusCode::OK, Json::Array(arr).to_string())
        }
        ContentType::Csv => {
            let mut out = b"\"Id\",\"Success\",\"Created\",\"Error\"\n".to_vec();
            for r in results {
                let (id, ok, created) = match r {
                    WriteResult::Ok { id, created } => (id.as_str().to_string(), "true", *created),
                    WriteResult::Err(_) => (String::new(), "false", false),
                };
                render::csv_text(&mut out, &id);
                out.push(b',');
                render::csv_text(&mut out, ok);
                out.push(b',');
                render::csv_text(&mut out, if created { "true" } else { "false" });
                out.push(b',');
                render::csv_text(&mut out, &error_text(r));
                out.push(b'\n');
            }
            let mut resp = (StatusCode::OK, out).into_response();
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/csv"),
            );
            resp
        }
        ContentType::Xml => {
            let mut s =
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><results xmlns=\"{NS}\">");
            for r in results {
                s.push_str("<result>");
                match r {
                    WriteResult::Ok { id, created } => {
                        s.push_str(&format!(
                            "<id>{id}</id><success>true</success><created>{created}</created>"
                        ));
                    }
                    WriteResult::Err(errs) => {
                        for e in errs {
                            s.push_str("<errors>");
                            for f in &e.fields {
                                s.push_str(&format!("<fields>{}</fields>", escape(f.as_str())));
                            }
                            s.push_str(&format!(
                                "<message>{}</message><statusCode>{}</statusCode></errors>",
                                escape(e.message.as_str()),
                                escape(e.status_code.as_str())
                            ));
                        }
                        s.push_str("<success>false</success><created>false</created>");
                    }
                }
                s.push_str("</result>");
            }
            s.push_str("</results>");
            wire::xml_response(StatusCode::OK, s)
        }
    }
}

/// `CODE:message` (`:field,field --` when fields are named).
pub(super) fn error_text(r: &WriteResult) -> String {
    r.errors()
        .iter()
        .map(|e| {
            if e.fields.is_empty() {
                format!("{}:{}", e.status_code, e.message)
            } else {
                format!("{}:{}:{} --", e.status_code, e.message, e.fields.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A query batch's result body (CSV, JSON or XML), rendered once when the batch runs from the
/// records as they are then: Salesforce keeps the result of a completed query batch, and
/// later changes to the records do not show in it (Bulk API Developer Guide, "Get Batch
/// Results" and "Bulk Query": results are retrieved after the batch completes).
pub(super) fn render_query(
    store: &Store,
    ct: ContentType,
    prepared: &Prepared,
    ids: &[SfId],
    version: &str,
) -> Bytes {
    let Output::Fields(cols) = &prepared.bound.output else {
        return Bytes::from_static(b"[]");
    };
    let table = store.table(prepared.bound.object_index);
    let object = &prepared.bound.object;
    let recs = ids.iter().filter_map(|id| table.get(id));
    match ct {
        ContentType::Csv => {
            let mut out = Vec::with_capacity(ids.len() * cols.len() * 24 + 64);
            render::write_csv_header(&mut out, cols, b',', b"\n");
            for rec in recs {
                render::write_csv_row(&mut out, store, rec, cols, b',', b"\n");
            }
            out.into()
        }
        ContentType::Json => {
            let mut out = b"[".to_vec();
            for (i, rec) in recs.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_record(&mut out, store, object, rec, &prepared.nodes, version);
            }
            out.push(b']');
            out.into()
        }
        ContentType::Xml => {
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><queryResult xmlns=\"{NS}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
            );
            for rec in recs {
                s.push_str("<records xsi:type=\"sObject\">");
                xml_record(&mut s, store, object, rec, &prepared.nodes);
                s.push_str("</records>");
            }
            s.push_str("</queryResult>");
            s.into()
        }
    }
}

/// A query result body rendered by `render_query`, with its content type.
pub(super) fn query_response(ct: ContentType, body: Bytes) -> Response {
    let content_type = match ct {
        ContentType::Csv => "text/csv",
        ContentType::Json => "application/json",
        ContentType::Xml => "application/xml",
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    resp
}

/// A Bulk 1.0 JSON query record: like REST, but dates and datetimes as epoch milliseconds.
pub(super) fn json_record(
    out: &mut Vec<u8>,
    store: &Store,
    object: &crate::data::schema::ObjectSchema,
    rec: &Record,
    nodes: &[Node],
    version: &str,
) {
    out.extend_from_slice(b"{\"attributes\":{\"type\":");
    render::json_str(out, &object.name);
    out.extend_from_slice(b",\"url\":");
    let id = rec.get(object.sys.id).as_str().unwrap_or("");
    render::json_str(
        out,
        &format!("/services/data/v{version}/sobjects/{}/{id}", object.name),
    );
    out.push(b'}');
    for n in nodes {
        out.push(b',');
        match n {
            Node::Field { field, name, .. } => {
                render::json_str(out, name);
                out.push(b':');
                match rec.get(*field) {
                    Value::DateTime(ms) => out.extend_from_slice(ms.to_string().as_bytes()),
                    Value::Date(d) => out
                        .extend_from_slice(crate::data::value::date_ms(*d).to_string().as_bytes()),
                    v => render::json_value(out, v),
                }
            }
            Node::Parent {
                rel_name,
                ref_field,
                target_index,
                target,
                user,
                children,
            } => {
                render::json_str(out, rel_name);
                out.push(b':');
                match parent(store, rec, *ref_field, *target_index, user.as_deref()) {
                    Some(p) => json_record(out, store, target, p, children, version),
                    None => out.extend_from_slice(b"null"),
                }
            }
        }
    }
    out.push(b'}');
}

/// A Bulk 1.0 XML query record body: `<type>`, then fields (`xsi:nil` for nulls).
pub(super) fn xml_record(
    s: &mut String,
    store: &Store,
    object: &crate::data::schema::ObjectSchema,
    rec: &Record,
    nodes: &[Node],
) {
    s.push_str(&format!("<type>{}</type>", object.name));
    for n in nodes {
        match n {
            Node::Field { field, name, .. } => {
                let v = rec.get(*field);
                if v.is_null() {
                    s.push_str(&format!("<{name} xsi:nil=\"true\"/>"));
                } else {
                    let mut buf = Vec::new();
                    render::plain_value(&mut buf, v);
                    let t = String::from_utf8(buf).unwrap_or_default();
                    s.push_str(&format!("<{name}>{}</{name}>", escape(t.as_str())));
                }
            }
            Node::Parent {
                rel_name,
                ref_field,
                target_index,
                target,
                user,
                children,
            } => match parent(store, rec, *ref_field, *target_index, user.as_deref()) {
                Some(p) => {
                    s.push_str(&format!("<{rel_name} xsi:type=\"sObject\">"));
                    xml_record(s, store, target, p, children);
                    s.push_str(&format!("</{rel_name}>"));
                }
                None => s.push_str(&format!("<{rel_name} xsi:nil=\"true\"/>")),
            },
        }
    }
}
