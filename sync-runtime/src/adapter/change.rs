//! Change Data Capture events as the adapter understands them: the typed `ChangeEventHeader`
//! of a CometD payload, and which mapped fields a change touched.
//!
//! Over CometD (see `shared/docs/salesforce-api.md` §5) an event's `data.payload` carries the
//! changed fields and a `ChangeEventHeader` naming the records (`recordIds`: one event can stand
//! for the same change made to several records in one transaction), the change type and the
//! changed fields (`changedFields`, with compound components as `BillingAddress.City`). A field
//! set to null is present as `null` and listed in `changedFields`; long text may arrive as
//! `{"diff": …}` (the engine then fetches the field). `nulledFields` and `diffFields` exist only
//! in Pub/Sub headers and are optional here.

use serde::Deserialize;
use serde_json::Value;

use super::descriptor::{FieldDescriptor, MappingDescriptor};
use super::error::{ConversionError, ConversionErrorKind};

/// What happened to the records of a change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeType {
    Create,
    Update,
    Delete,
    Undelete,
    /// Salesforce could not produce the event's body: re-read the named records.
    GapCreate,
    GapUpdate,
    GapDelete,
    GapUndelete,
    /// More than 100,000 changes in one transaction: header only, re-poll the window.
    GapOverflow,
}

impl ChangeType {
    /// A gap event: the payload carries no usable field values.
    pub fn is_gap(self) -> bool {
        matches!(
            self,
            ChangeType::GapCreate
                | ChangeType::GapUpdate
                | ChangeType::GapDelete
                | ChangeType::GapUndelete
                | ChangeType::GapOverflow
        )
    }
}

/// The `ChangeEventHeader` of a CDC payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEventHeader {
    /// The object, e.g. `"Account"`.
    pub entity_name: String,
    pub change_type: ChangeType,
    /// Every record the change applies to (several when Salesforce merged identical changes).
    #[serde(default)]
    pub record_ids: Vec<String>,
    /// Changed field names; compound components as `BillingAddress.City`, `Name.FirstName`.
    /// Empty for CREATE and DELETE.
    #[serde(default)]
    pub changed_fields: Vec<String>,
    /// Fields set to null (Pub/Sub only; over CometD the payload carries them as `null`).
    #[serde(default)]
    pub nulled_fields: Vec<String>,
    /// Long text fields sent as a diff (Pub/Sub only; over CometD see [`super::SfRecord::is_diff`]).
    #[serde(default)]
    pub diff_fields: Vec<String>,
    /// Who made the change: `com/salesforce/api/rest/59.0;client=forcesync`; may be empty.
    #[serde(default)]
    pub change_origin: String,
    /// Identifies the Salesforce transaction; events of one transaction share it.
    #[serde(default)]
    pub transaction_key: String,
    /// Order of this event within its transaction.
    #[serde(default)]
    pub sequence_number: u64,
    /// When the transaction committed, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub commit_timestamp: i64,
    /// The transaction's system change number.
    #[serde(default)]
    pub commit_number: i64,
    /// The user who made the change.
    #[serde(default)]
    pub commit_user: Option<String>,
}

impl ChangeEventHeader {
    /// The header of a CDC payload (`data.payload` of the CometD message).
    pub fn from_payload(payload: &Value) -> Result<Self, ConversionError> {
        Self::from_header(payload.get("ChangeEventHeader"))
    }

    /// The header from the payload's `ChangeEventHeader` value (`None`: the payload has none).
    pub(crate) fn from_header(header: Option<&Value>) -> Result<Self, ConversionError> {
        let header = header.ok_or_else(|| {
            ConversionError::new("ChangeEventHeader", ConversionErrorKind::Missing)
        })?;
        ChangeEventHeader::deserialize(header).map_err(|e| {
            ConversionError::new(
                "ChangeEventHeader",
                ConversionErrorKind::WrongType {
                    expected: "a change event header",
                    got: e.to_string(),
                },
            )
        })
    }

    /// Whether the change was made by a client identifying itself as `client` (the
    /// `Sforce-Call-Options: client=…` header), e.g. forcesync's own writes.
    pub fn made_by_client(&self, client: &str) -> bool {
        self.change_origin
            .split(';')
            .filter_map(|part| part.trim().strip_prefix("client="))
            .any(|c| c == client)
    }
}

impl MappingDescriptor {
    /// The mapped fields a change touched, in descriptor order: each `changedFields` name matched
    /// case-insensitively against a field (`Industry`), a compound component (`BillingAddress.City`,
    /// `Name.FirstName`, `Location__c.Latitude`) or a whole compound (`BillingAddress`: every
    /// mapped component). Names of unmapped fields are ignored.
    pub fn fields_changed_by(&self, header: &ChangeEventHeader) -> Vec<&'static FieldDescriptor> {
        self.fields
            .iter()
            .filter(|field| {
                header
                    .changed_fields
                    .iter()
                    .any(|name| names_field(name, field))
            })
            .collect()
    }
}

/// Whether a `changedFields` entry names this field.
fn names_field(name: &str, field: &FieldDescriptor) -> bool {
    if name.eq_ignore_ascii_case(field.sf_name) {
        return true;
    }
    let Some(compound) = field.compound else {
        return false;
    };
    match name.split_once('.') {
        Some((container, key)) => {
            container.eq_ignore_ascii_case(compound)
                && field
                    .compound_key
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
        }
        None => name.eq_ignore_ascii_case(compound),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapter::{Access, PgType, SfRecord, SfType};

    const ID: FieldDescriptor =
        FieldDescriptor::new("Id", "sfid", "Account ID", SfType::Id, PgType::Varchar(18));
    const NAME: FieldDescriptor = FieldDescriptor::new(
        "Name",
        "name",
        "Account Name",
        SfType::String,
        PgType::Varchar(255),
    );
    const INDUSTRY: FieldDescriptor = FieldDescriptor::new(
        "Industry",
        "industry",
        "Industry",
        SfType::Picklist,
        PgType::Varchar(255),
    );
    const BILLING_CITY: FieldDescriptor = FieldDescriptor {
        compound: Some("BillingAddress"),
        compound_key: Some("City"),
        ..FieldDescriptor::new(
            "BillingCity",
            "billingcity",
            "Billing City",
            SfType::String,
            PgType::Varchar(40),
        )
    };
    const BILLING_STREET: FieldDescriptor = FieldDescriptor {
        compound: Some("BillingAddress"),
        compound_key: Some("Street"),
        ..FieldDescriptor::new(
            "BillingStreet",
            "billingstreet",
            "Billing Street",
            SfType::TextArea,
            PgType::Varchar(255),
        )
    };
    const DESCRIPTION: FieldDescriptor = FieldDescriptor::new(
        "Description",
        "description",
        "Description",
        SfType::TextArea,
        PgType::Text,
    );

    static ACCOUNT: MappingDescriptor = MappingDescriptor {
        key_prefix: Some("001"),
        access: Access::ReadOnly,
        ..MappingDescriptor::fixture(
            "Account",
            "account",
            &[
                ID,
                NAME,
                INDUSTRY,
                BILLING_STREET,
                BILLING_CITY,
                DESCRIPTION,
            ],
        )
    };

    const FIRST_NAME: FieldDescriptor = FieldDescriptor {
        compound: Some("Name"),
        compound_key: Some("FirstName"),
        ..FieldDescriptor::new(
            "FirstName",
            "firstname",
            "First Name",
            SfType::String,
            PgType::Varchar(40),
        )
    };
    const LAST_NAME: FieldDescriptor = FieldDescriptor {
        compound: Some("Name"),
        compound_key: Some("LastName"),
        ..FieldDescriptor::new(
            "LastName",
            "lastname",
            "Last Name",
            SfType::String,
            PgType::Varchar(80),
        )
    };

    static CONTACT: MappingDescriptor = MappingDescriptor {
        object: "Contact",
        label: "Contact",
        table: "contact",
        key_prefix: Some("003"),
        fields: &[ID, FIRST_NAME, LAST_NAME],
        ..ACCOUNT
    };

    /// An UPDATE over CometD: two merged records, a cleared city, a long-text diff.
    fn update_payload() -> Value {
        json!({
            "LastModifiedDate": "2024-04-09T20:30:00.000Z",
            "Industry": "Energy",
            "BillingAddress": {"City": null},
            "Description": {"diff": "--- \n+++ 3f2a\n@@ -1 +1 @@\n-old\n+new\n"},
            "ChangeEventHeader": {
                "commitNumber": 1082990428293_i64,
                "commitUser": "0055f000005mc66AAA",
                "sequenceNumber": 1,
                "entityName": "Account",
                "changeType": "UPDATE",
                "changedFields": ["LastModifiedDate", "Industry", "BillingAddress.City", "Description"],
                "changeOrigin": "com/salesforce/api/rest/59.0;client=forcesync",
                "transactionKey": "0001ae4b-7024-a64a-87f0-f2c8cebdca76",
                "commitTimestamp": 1712694600000_i64,
                "recordIds": ["0015f00002J9YaUAAV", "0015f00002J9YaVAAV"]
            }
        })
    }

    #[test]
    fn a_cometd_header_parses_into_its_typed_form() {
        let header = ChangeEventHeader::from_payload(&update_payload()).unwrap();
        assert_eq!(header.entity_name, "Account");
        assert_eq!(header.change_type, ChangeType::Update);
        assert!(!header.change_type.is_gap());
        assert_eq!(
            header.record_ids,
            ["0015f00002J9YaUAAV", "0015f00002J9YaVAAV"]
        );
        assert_eq!(header.changed_fields.len(), 4);
        assert!(header.nulled_fields.is_empty() && header.diff_fields.is_empty());
        assert_eq!(header.sequence_number, 1);
        assert_eq!(header.commit_timestamp, 1_712_694_600_000);
        assert_eq!(header.commit_number, 1_082_990_428_293);
        assert_eq!(header.commit_user.as_deref(), Some("0055f000005mc66AAA"));
        assert!(header.made_by_client("forcesync"));
        assert!(!header.made_by_client("other"));
    }

    #[test]
    fn a_gap_overflow_header_without_optional_fields_still_parses() {
        let payload = json!({"ChangeEventHeader": {
            "entityName": "Account", "changeType": "GAP_OVERFLOW", "changeOrigin": ""
        }});
        let header = ChangeEventHeader::from_payload(&payload).unwrap();
        assert_eq!(header.change_type, ChangeType::GapOverflow);
        assert!(header.change_type.is_gap());
        assert!(header.record_ids.is_empty() && header.changed_fields.is_empty());
        assert!(!header.made_by_client("forcesync"));
        for (name, gap) in [
            ("CREATE", false),
            ("DELETE", false),
            ("UNDELETE", false),
            ("GAP_CREATE", true),
            ("GAP_UPDATE", true),
            ("GAP_DELETE", true),
            ("GAP_UNDELETE", true),
        ] {
            let payload =
                json!({"ChangeEventHeader": {"entityName": "Account", "changeType": name}});
            let header = ChangeEventHeader::from_payload(&payload).unwrap();
            assert_eq!(header.change_type.is_gap(), gap, "{name}");
        }
    }

    #[test]
    fn a_payload_without_a_usable_header_is_an_error_naming_it() {
        let missing = ChangeEventHeader::from_payload(&json!({"Name": "x"})).unwrap_err();
        assert_eq!(missing.field, "ChangeEventHeader");
        let bad = json!({"ChangeEventHeader": {"entityName": "Account", "changeType": "MERGE"}});
        let err = ChangeEventHeader::from_payload(&bad).unwrap_err();
        assert!(err.to_string().contains("MERGE"), "{err}");
    }

    /// The names of the fields of `mapping` the change `header` affects.
    fn changed(mapping: &MappingDescriptor, header: &ChangeEventHeader) -> Vec<&'static str> {
        let fields = mapping.fields_changed_by(header);
        fields.iter().map(|f| f.sf_name).collect()
    }

    #[test]
    fn changed_fields_map_to_the_mapped_fields_they_affect() {
        let header = ChangeEventHeader::from_payload(&update_payload()).unwrap();
        let names = changed(&ACCOUNT, &header);
        assert_eq!(names, ["Industry", "BillingCity", "Description"]);

        let mut whole = header.clone();
        whole.changed_fields = vec!["billingaddress".into(), "NAME".into()];
        let names = changed(&ACCOUNT, &whole);
        assert_eq!(names, ["Name", "BillingStreet", "BillingCity"]);

        let mut contact = header;
        contact.changed_fields = vec!["Name.FirstName".into(), "LastModifiedDate".into()];
        let names = changed(&CONTACT, &contact);
        assert_eq!(names, ["FirstName"]);
    }

    #[test]
    fn a_cdc_record_exposes_every_record_id_nulls_and_diffs() {
        let payload = update_payload();
        let record = SfRecord::cdc(&payload).unwrap();
        assert_eq!(
            record.record_ids(),
            ["0015f00002J9YaUAAV", "0015f00002J9YaVAAV"]
        );
        assert_eq!(
            record.change_header().unwrap().change_type,
            ChangeType::Update
        );
        // A cleared field is present as null, an untouched one is absent.
        assert_eq!(record.get(&BILLING_CITY), Some(&Value::Null));
        assert_eq!(record.get(&BILLING_STREET), None);
        assert_eq!(record.get(&NAME), None);
        assert!(record.is_diff(&DESCRIPTION));
        assert!(!record.is_diff(&INDUSTRY));
        // Each merged record reads the same changes under its own Id.
        let second = record.clone().with_id("0015f00002J9YaVAAV");
        assert_eq!(second.get(&ID), Some(&json!("0015f00002J9YaVAAV")));
        assert_eq!(record.get(&ID), Some(&json!("0015f00002J9YaUAAV")));
    }

    #[test]
    fn a_compound_cleared_as_a_whole_clears_its_components() {
        let payload = json!({
            "BillingAddress": null,
            "ChangeEventHeader": {"entityName": "Account", "changeType": "UPDATE",
                                  "changedFields": ["BillingAddress"], "recordIds": ["001"]}
        });
        let record = SfRecord::cdc(&payload).unwrap();
        assert_eq!(record.get(&BILLING_CITY), Some(&Value::Null));
        assert_eq!(record.get(&BILLING_STREET), Some(&Value::Null));
    }

    #[test]
    fn a_rest_record_names_its_own_id() {
        let row = json!({"attributes": {"type": "Account"}, "Id": "001A", "Name": "Acme"});
        let record = SfRecord::rest(&row).unwrap();
        assert_eq!(record.record_ids(), ["001A"]);
        assert!(record.change_header().is_err());
    }
}
