//! Bulk API 1.0 wire formats: the `dataload` XML namespace, JSON vs XML answers, the
//! `<error>` / `{"exceptionCode"}` error bodies, and a small reader for the flat XML documents
//! clients send (`<jobInfo>`, `<sObjects>`).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::{escape, unescape};

/// The Bulk API XML namespace.
pub const NS: &str = "http://www.force.com/2009/06/asyncapi/dataload";

/// The format of a request or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// JSON when the request says `Content-Type: application/json`, else XML.
    pub fn of_request(headers: &HeaderMap) -> Format {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if ct.to_ascii_lowercase().contains("json") {
            Format::Json
        } else {
            Format::Xml
        }
    }
}

/// A Bulk 1.0 error: `exceptionCode` + `exceptionMessage`, status 400 (404 for unknown URLs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub format: Format,
}

impl BulkError {
    pub fn new(code: &'static str, message: impl Into<String>, format: Format) -> BulkError {
        BulkError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            format,
        }
    }
}

impl IntoResponse for BulkError {
    fn into_response(self) -> Response {
        match self.format {
            Format::Json => json_response(
                self.status,
                serde_json::json!({"exceptionCode": self.code, "exceptionMessage": self.message})
                    .to_string(),
            ),
            Format::Xml => xml_response(
                self.status,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><error xmlns=\"{NS}\"><exceptionCode>{}</exceptionCode><exceptionMessage>{}</exceptionMessage></error>",
                    self.code,
                    escape(self.message.as_str())
                ),
            ),
        }
    }
}

/// `application/json` exactly (tap-salesforce compares the header verbatim).
pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// An ordered list of (element, text) rendered as JSON or as a namespaced XML document.
pub struct Doc {
    pub root: &'static str,
    pub fields: Vec<(&'static str, Field)>,
}

/// A field value: text (a JSON string) or a number / bool (bare in JSON).
pub enum Field {
    Text(String),
    Num(String),
}

impl Doc {
    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.fields {
            let v = match v {
                Field::Text(s) => serde_json::Value::String(s.clone()),
                Field::Num(n) => {
                    serde_json::from_str(n).unwrap_or(serde_json::Value::String(n.clone()))
                }
            };
            m.insert((*k).to_string(), v);
        }
        serde_json::Value::Object(m)
    }

    /// The inner XML (`<id>…</id>…`) without the root element.
    pub fn xml_inner(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.fields {
            let text = match v {
                Field::Text(t) | Field::Num(t) => t,
            };
            s.push_str(&format!("<{k}>{}</{k}>", escape(text.as_str())));
        }
        s
    }

    pub fn xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><{r} xmlns=\"{NS}\">{}</{r}>",
            self.xml_inner(),
            r = self.root
        )
    }

    pub fn respond(&self, status: StatusCode, format: Format) -> Response {
        match format {
            Format::Json => json_response(status, self.json().to_string()),
            Format::Xml => xml_response(status, self.xml()),
        }
    }
}

/// The text of the first `<tag>…</tag>` (namespace prefixes allowed) in `xml`, unescaped.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let mut from = 0;
    while let Some(rel) = xml[from..].find('<') {
        let start = from + rel + 1;
        let rest = &xml[start..];
        let end_name = rest
            .find(['>', ' ', '/', '\t', '\n', '\r'])
            .unwrap_or(rest.len());
        let name = &rest[..end_name];
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == tag && !name.starts_with('/') {
            let open_end = start + rest.find('>')? + 1;
            if xml[..open_end].ends_with("/>") {
                return Some(String::new());
            }
            let close_rel = xml[open_end..].find("</")?;
            let text = &xml[open_end..open_end + close_rel];
            return Some(
                unescape(text)
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| text.to_string()),
            );
        }
        from = start;
    }
    None
}

/// One `<sObject>`: (element name, text) pairs; `None` for `xsi:nil` elements.
pub type XmlRecord = Vec<(String, Option<String>)>;

/// The child elements of each `<sObject>` of an `<sObjects>` document.
pub fn xml_records(xml: &str) -> Result<Vec<XmlRecord>, String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = find_open(rest, "sObject") {
        let body_start = i + rest[i..].find('>').ok_or("unterminated <sObject>")? + 1;
        let close = rest[body_start..]
            .find("</sObject>")
            .or_else(|| {
                rest[body_start..]
                    .find(":sObject>")
                    .map(|j| j.saturating_sub(2))
            })
            .ok_or("missing </sObject>")?;
        let body = &rest[body_start..body_start + close];
        out.push(children(body)?);
        rest = &rest[body_start + close + 1..];
    }
    Ok(out)
}

fn find_open(s: &str, tag: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = s[from..].find('<') {
        let at = from + rel;
        let name_end = s[at + 1..]
            .find(['>', ' ', '/'])
            .map_or(s.len(), |j| at + 1 + j);
        let name = &s[at + 1..name_end];
        if !name.starts_with('/') && name.rsplit(':').next() == Some(tag) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Flat `<Name>v</Name><Other xsi:nil="true"/>` children; nil elements are `None`.
fn children(body: &str) -> Result<XmlRecord, String> {
    let mut out = Vec::new();
    let mut rest = body.trim();
    while let Some(i) = rest.find('<') {
        let tag_end = i + rest[i..].find('>').ok_or("unterminated element")?;
        let open = &rest[i + 1..tag_end];
        let name = open
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        let local = name.rsplit(':').next().unwrap_or(name).to_string();
        if open.ends_with('/') {
            out.push((local, None));
            rest = &rest[tag_end + 1..];
            continue;
        }
        let close = format!("</{name}>");
        let end = rest[tag_end + 1..]
            .find(&close)
            .ok_or_else(|| format!("missing {close}"))?;
        let text = &rest[tag_end + 1..tag_end + 1 + end];
        let value = unescape(text).map_err(|e| e.to_string())?.into_owned();
        out.push((local, Some(value)));
        rest = &rest[tag_end + 1 + end + close.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_job_info_and_sobjects() {
        let x = r#"<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert</operation><object>Account</object><contentType>CSV</contentType></jobInfo>"#;
        assert_eq!(xml_text(x, "operation").as_deref(), Some("insert"));
        assert_eq!(xml_text(x, "object").as_deref(), Some("Account"));
        assert_eq!(xml_text(x, "externalIdFieldName"), None);
        let s = r#"<sObjects xmlns="x"><sObject><Name>A &amp; B</Name><Phone xsi:nil="true"/></sObject><sObject><Name>C</Name></sObject></sObjects>"#;
        let recs = xml_records(s).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0],
            vec![
                ("Name".into(), Some("A & B".into())),
                ("Phone".into(), None)
            ]
        );
        assert_eq!(recs[1], vec![("Name".into(), Some("C".into()))]);
    }
}
