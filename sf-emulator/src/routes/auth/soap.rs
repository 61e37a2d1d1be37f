//! The SOAP partner/enterprise API as far as authentication goes: parsing `login` (and `logout`)
//! envelopes as simple-salesforce and jsforce write them, and rendering `loginResponse` and login
//! faults in Salesforce's exact shape (result elements unprefixed, in the default namespace).

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::Reader;

/// Which WSDL the endpoint speaks: `/services/Soap/u/<ver>` (partner) or `/Soap/c/<ver>`
/// (enterprise). Only the namespaces and the server URL differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wsdl {
    Partner,
    Enterprise,
}

impl Wsdl {
    /// The path letter after `/services/Soap/`.
    pub fn letter(self) -> &'static str {
        match self {
            Wsdl::Partner => "u",
            Wsdl::Enterprise => "c",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Wsdl::Partner => "urn:partner.soap.sforce.com",
            Wsdl::Enterprise => "urn:enterprise.soap.sforce.com",
        }
    }

    fn fault_namespace(self) -> &'static str {
        match self {
            Wsdl::Partner => "urn:fault.partner.soap.sforce.com",
            Wsdl::Enterprise => "urn:fault.enterprise.soap.sforce.com",
        }
    }
}

/// A SOAP call the emulator understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapCall {
    Login {
        username: String,
        password: String,
    },
    /// `logout`, with the session id from the `SessionHeader` if one was sent.
    Logout {
        session_id: Option<String>,
    },
    /// `undelete` of the `<ids>` given, with the `SessionHeader`'s session id and the
    /// `CallOptions` header's `client` (SOAP's equivalent of `Sforce-Call-Options`, which
    /// Salesforce puts in the change events' `changeOrigin`).
    Undelete {
        session_id: Option<String>,
        client: Option<String>,
        ids: Vec<String>,
    },
}

/// Why an envelope could not be understood; rendered as a `soapenv:Client` fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapParseError {
    #[error("The request is not well-formed XML: {0}")]
    Malformed(String),
    #[error("The request has no soapenv:Body element")]
    NoBody,
    #[error("No operation available for request {{{namespace}}}{operation}")]
    UnknownOperation {
        namespace: String,
        operation: String,
    },
    #[error("Element {{{0}}}username or password missing from the login request")]
    MissingCredentials(String),
}

/// Parses a SOAP envelope into the call it makes. Element prefixes are ignored (simple-salesforce
/// writes `n1:login`/`urn:login`, jsforce an unprefixed `login` with a default namespace).
pub fn parse(body: &str) -> Result<SoapCall, SoapParseError> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut operation: Option<String> = None;
    let mut username: Option<String> = None;
    let mut password: Option<String> = None;
    let mut session_id: Option<String> = None;
    let mut client: Option<String> = None;
    let mut ids: Vec<String> = Vec::new();
    let mut saw_body = false;
    // Text accumulated for the element currently open (text and entity references arrive as
    // separate events).
    let mut text = String::new();

    loop {
        let event = reader
            .read_event()
            .map_err(|e| SoapParseError::Malformed(e.to_string()))?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_string();
                if path.len() == 2 && path[1] == "Body" && operation.is_none() {
                    operation = Some(name.clone());
                }
                if name == "Body" && path.len() == 1 {
                    saw_body = true;
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(start) => {
                let name = start.local_name().as_ref().to_string();
                if path.len() == 2 && path[1] == "Body" && operation.is_none() {
                    operation = Some(name.clone());
                }
                if name == "Body" && path.len() == 1 {
                    saw_body = true;
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c.into_inner()),
            Event::GeneralRef(r) => {
                if let Some(ch) = r
                    .resolve_char_ref()
                    .map_err(|e| SoapParseError::Malformed(e.to_string()))?
                {
                    text.push(ch);
                } else if let Some(s) = resolve_predefined_entity(&r) {
                    text.push_str(s);
                } else {
                    return Err(SoapParseError::Malformed(format!(
                        "unknown entity reference &{};",
                        &*r
                    )));
                }
            }
            Event::End(_) => {
                let in_body_op = path.len() == 4 && path[1] == "Body";
                let in_header = path.len() == 4 && path[1] == "Header";
                if let Some(name) = path.last() {
                    if in_body_op && name == "username" {
                        username = Some(text.trim().to_string());
                    } else if in_body_op && name == "password" {
                        password = Some(text.clone());
                    } else if in_body_op && name == "ids" {
                        ids.push(text.trim().to_string());
                    } else if in_header && path[2] == "SessionHeader" && name == "sessionId" {
                        session_id = Some(text.trim().to_string());
                    } else if in_header && path[2] == "CallOptions" && name == "client" {
                        client = Some(text.trim().to_string()).filter(|c| !c.is_empty());
                    }
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }

    if !saw_body {
        return Err(SoapParseError::NoBody);
    }
    match operation.as_deref() {
        Some("login") => match (username, password) {
            (Some(username), Some(password)) => Ok(SoapCall::Login { username, password }),
            _ => Err(SoapParseError::MissingCredentials(
                Wsdl::Partner.namespace().to_string(),
            )),
        },
        Some("logout") => Ok(SoapCall::Logout { session_id }),
        Some("undelete") => Ok(SoapCall::Undelete {
            session_id,
            client,
            ids,
        }),
        Some(other) => Err(SoapParseError::UnknownOperation {
            namespace: Wsdl::Partner.namespace().to_string(),
            operation: other.to_string(),
        }),
        None => Err(SoapParseError::NoBody),
    }
}

/// What a successful login reports.
pub struct LoginResult<'a> {
    /// Scheme, host and port as the client reached the emulator, e.g. `https://127.0.0.1:8484`.
    pub base_url: &'a str,
    /// The API version from the request path, e.g. `59.0`.
    pub api_version: &'a str,
    pub org_id: &'a str,
    pub org_name: &'a str,
    pub user_id: &'a str,
    pub username: &'a str,
    pub user_full_name: &'a str,
    pub user_email: &'a str,
    pub profile_id: &'a str,
    pub session_id: &'a str,
    pub session_seconds_valid: u64,
}

const ENVELOPE_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#;

/// Renders the `loginResponse` envelope.
pub fn login_response(wsdl: Wsdl, r: &LoginResult<'_>) -> String {
    let base = escape(r.base_url);
    let ver = escape(r.api_version);
    let org = escape(r.org_id);
    let user = escape(r.user_id);
    format!(
        concat!(
            "{open} xmlns=\"{ns}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">",
            "<soapenv:Body><loginResponse><result>",
            "<metadataServerUrl>{base}/services/Soap/m/{ver}/{org}</metadataServerUrl>",
            "<passwordExpired>false</passwordExpired>",
            "<sandbox>false</sandbox>",
            "<serverUrl>{base}/services/Soap/{letter}/{ver}/{org}</serverUrl>",
            "<sessionId>{session}</sessionId>",
            "<userId>{user}</userId>",
            "<userInfo>",
            "<accessibilityMode>false</accessibilityMode>",
            "<chatterExternal>false</chatterExternal>",
            "<currencySymbol>$</currencySymbol>",
            "<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>",
            "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>",
            "<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale>",
            "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>",
            "<orgHasPersonAccounts>false</orgHasPersonAccounts>",
            "<organizationId>{org}</organizationId>",
            "<organizationMultiCurrency>false</organizationMultiCurrency>",
            "<organizationName>{org_name}</organizationName>",
            "<profileId>{profile}</profileId>",
            "<roleId xsi:nil=\"true\"/>",
            "<sessionSecondsValid>{valid}</sessionSecondsValid>",
            "<userDefaultCurrencyIsoCode xsi:nil=\"true\"/>",
            "<userEmail>{email}</userEmail>",
            "<userFullName>{full_name}</userFullName>",
            "<userId>{user}</userId>",
            "<userLanguage>en_US</userLanguage>",
            "<userLocale>en_US</userLocale>",
            "<userName>{username}</userName>",
            "<userTimeZone>America/Los_Angeles</userTimeZone>",
            "<userType>Standard</userType>",
            "<userUiSkin>Theme3</userUiSkin>",
            "</userInfo>",
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        ),
        open = ENVELOPE_OPEN,
        base = base,
        ver = ver,
        org = org,
        user = user,
        ns = wsdl.namespace(),
        letter = wsdl.letter(),
        session = escape(r.session_id),
        org_name = escape(r.org_name),
        profile = escape(r.profile_id),
        valid = r.session_seconds_valid,
        email = escape(r.user_email),
        full_name = escape(r.user_full_name),
        username = escape(r.username),
    )
}

/// Renders the empty `logoutResponse` envelope.
pub fn logout_response(wsdl: Wsdl) -> String {
    format!(
        "{ENVELOPE_OPEN} xmlns=\"{}\"><soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>",
        wsdl.namespace()
    )
}

/// One record's outcome in an `undeleteResponse`.
pub struct UndeleteResult {
    pub id: String,
    /// `(statusCode, message, fields)` of each error; none on success.
    pub errors: Vec<(String, String, Vec<String>)>,
}

/// Renders `undeleteResponse`: one `<result>` per id in request order, each with `errors`
/// (when it failed), `id` and `success` (SOAP API Developer Guide, "undelete()" and
/// "UndeleteResult").
pub fn undelete_response(wsdl: Wsdl, results: &[UndeleteResult]) -> String {
    let mut out = format!(
        "{ENVELOPE_OPEN} xmlns=\"{}\"><soapenv:Body><undeleteResponse>",
        wsdl.namespace()
    );
    for r in results {
        out.push_str("<result>");
        for (code, message, fields) in &r.errors {
            out.push_str("<errors>");
            for f in fields {
                out.push_str(&format!("<fields>{}</fields>", escape(f.as_str())));
            }
            out.push_str(&format!(
                "<message>{}</message><statusCode>{}</statusCode></errors>",
                escape(message.as_str()),
                escape(code.as_str())
            ));
        }
        out.push_str(&format!(
            "<id>{}</id><success>{}</success></result>",
            escape(r.id.as_str()),
            r.errors.is_empty()
        ));
    }
    out.push_str("</undeleteResponse></soapenv:Body></soapenv:Envelope>");
    out
}

/// The message Salesforce gives for a failed login.
pub const INVALID_LOGIN_MESSAGE: &str =
    "Invalid username, password, security token; or user locked out.";

/// Renders a login fault (HTTP 500): `faultcode` and `sf:exceptionCode` carry `code`.
pub fn login_fault(wsdl: Wsdl, code: &str, message: &str) -> String {
    let code = escape(code);
    let message = escape(message);
    format!(
        concat!(
            "{open} xmlns:sf=\"{fault_ns}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">",
            "<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode>",
            "<faultstring>{code}: {message}</faultstring>",
            "<detail><sf:LoginFault xsi:type=\"sf:LoginFault\">",
            "<sf:exceptionCode>{code}</sf:exceptionCode>",
            "<sf:exceptionMessage>{message}</sf:exceptionMessage>",
            "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        ),
        open = ENVELOPE_OPEN,
        fault_ns = wsdl.fault_namespace(),
        code = code,
        message = message,
    )
}

/// Renders a fault for an envelope the emulator could not understand (HTTP 500,
/// `soapenv:Client`, as Salesforce answers malformed requests).
pub fn client_fault(error: &SoapParseError) -> String {
    format!(
        concat!(
            "{open}><soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode>",
            "<faultstring>{message}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        ),
        open = ENVELOPE_OPEN,
        message = escape(error.to_string()),
    )
}

/// Renders an API fault (HTTP 500, `sf:<code>`, `UnexpectedErrorFault` detail) for a call the
/// API refuses, e.g. `EXCEEDED_ID_LIMIT`.
pub fn api_fault(wsdl: Wsdl, code: &str, message: &str) -> String {
    let (code, message) = (escape(code), escape(message));
    format!(
        concat!(
            "{open} xmlns:sf=\"{fault_ns}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">",
            "<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode>",
            "<faultstring>{code}: {message}</faultstring>",
            "<detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\">",
            "<sf:exceptionCode>{code}</sf:exceptionCode>",
            "<sf:exceptionMessage>{message}</sf:exceptionMessage>",
            "</sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        ),
        open = ENVELOPE_OPEN,
        fault_ns = wsdl.fault_namespace(),
        code = code,
        message = message,
    )
}

/// Renders an `INVALID_SESSION_ID` fault for calls made with a bad session header.
pub fn session_fault(wsdl: Wsdl) -> String {
    format!(
        concat!(
            "{open} xmlns:sf=\"{fault_ns}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">",
            "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode>",
            "<faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session</faultstring>",
            "<detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\">",
            "<sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode>",
            "<sf:exceptionMessage>Invalid Session ID found in SessionHeader: Illegal Session</sf:exceptionMessage>",
            "</sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        ),
        open = ENVELOPE_OPEN,
        fault_ns = wsdl.fault_namespace(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE_SALESFORCE: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope
        xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header>
        <urn:CallOptions>
            <urn:client>simple-salesforce</urn:client>
            <urn:defaultNamespace>sf</urn:defaultNamespace>
        </urn:CallOptions>
    </env:Header>
    <env:Body>
        <n1:login xmlns:n1="urn:partner.soap.sforce.com">
            <n1:username>admin@example.com</n1:username>
            <n1:password>p&amp;ss&lt;word&#33;TOKEN</n1:password>
        </n1:login>
    </env:Body>
</env:Envelope>"#;

    const JSFORCE: &str = r#"<?xml version="1.0" encoding="utf-8"?><se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header/><se:Body><login xmlns="urn:partner.soap.sforce.com"><username>admin@example.com</username><password>forcesync</password></login></se:Body></se:Envelope>"#;

    #[test]
    fn parses_simple_salesforce_login_with_entities() {
        assert_eq!(
            parse(SIMPLE_SALESFORCE).unwrap(),
            SoapCall::Login {
                username: "admin@example.com".into(),
                password: "p&ss<word!TOKEN".into(),
            }
        );
    }

    #[test]
    fn parses_jsforce_login() {
        assert_eq!(
            parse(JSFORCE).unwrap(),
            SoapCall::Login {
                username: "admin@example.com".into(),
                password: "forcesync".into(),
            }
        );
    }

    #[test]
    fn parses_logout_with_session_header() {
        let body = r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header><SessionHeader xmlns="urn:partner.soap.sforce.com"><sessionId>00D!abc</sessionId></SessionHeader></se:Header><se:Body><logout xmlns="urn:partner.soap.sforce.com"/></se:Body></se:Envelope>"#;
        assert_eq!(
            parse(body).unwrap(),
            SoapCall::Logout {
                session_id: Some("00D!abc".into())
            }
        );
    }

    #[test]
    fn parses_undelete_with_its_ids() {
        let body = r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><se:Header><urn:SessionHeader><urn:sessionId>00D!abc</urn:sessionId></urn:SessionHeader></se:Header><se:Body><urn:undelete><urn:ids>001A</urn:ids><urn:ids>001B</urn:ids></urn:undelete></se:Body></se:Envelope>"#;
        assert_eq!(
            parse(body).unwrap(),
            SoapCall::Undelete {
                session_id: Some("00D!abc".into()),
                client: None,
                ids: vec!["001A".into(), "001B".into()],
            }
        );
    }

    #[test]
    fn reads_the_call_options_client_of_an_undelete() {
        let body = r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><se:Header><urn:CallOptions><urn:client>forcesync</urn:client></urn:CallOptions><urn:SessionHeader><urn:sessionId>00D!abc</urn:sessionId></urn:SessionHeader></se:Header><se:Body><urn:undelete><urn:ids>001A</urn:ids></urn:undelete></se:Body></se:Envelope>"#;
        assert_eq!(
            parse(body).unwrap(),
            SoapCall::Undelete {
                session_id: Some("00D!abc".into()),
                client: Some("forcesync".into()),
                ids: vec!["001A".into()],
            }
        );
    }

    #[test]
    fn rejects_other_operations_and_garbage() {
        let body = r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Body><query/></se:Body></se:Envelope>"#;
        assert!(matches!(
            parse(body),
            Err(SoapParseError::UnknownOperation { .. })
        ));
        assert!(parse("<a><b></a>").is_err());
        assert_eq!(parse("<x/>"), Err(SoapParseError::NoBody));
    }
}
