//! Describe snapshots: the parts of Salesforce's `GET /sobjects/<Object>/describe` JSON that
//! code generation needs. Unknown keys are ignored, so a snapshot straight from the API loads.

use serde::Deserialize;

/// An sObject describe (top level of the REST response).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SObjectDescribe {
    pub name: String,
    pub label: String,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub custom: bool,
    #[serde(default = "yes")]
    pub queryable: bool,
    pub fields: Vec<FieldDescribe>,
}

/// One entry of a describe's `fields` array.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    pub name: String,
    pub label: String,
    /// Describe type, e.g. `"string"`, `"reference"`, `"address"`, `"base64"`.
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default)]
    pub length: u32,
    #[serde(default)]
    pub nillable: bool,
    #[serde(default)]
    pub createable: bool,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub defaulted_on_create: bool,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub calculated_formula: Option<String>,
    #[serde(default)]
    pub external_id: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub id_lookup: bool,
    #[serde(default = "yes")]
    pub filterable: bool,
    #[serde(default)]
    pub compound_field_name: Option<String>,
    #[serde(default)]
    pub extra_type_info: Option<String>,
    #[serde(default)]
    pub picklist_values: Vec<PicklistEntry>,
    #[serde(default)]
    pub restricted_picklist: bool,
    #[serde(default)]
    pub reference_to: Vec<String>,
    #[serde(default)]
    pub relationship_name: Option<String>,
    #[serde(default)]
    pub cascade_delete: bool,
    #[serde(default)]
    pub relationship_order: Option<u32>,
}

/// One entry of a field's `picklistValues`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistEntry {
    pub value: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub default_value: bool,
}

fn yes() -> bool {
    true
}

impl SObjectDescribe {
    /// Parses a describe response body.
    pub fn from_json(json: &str) -> Result<SObjectDescribe, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The field of that API name (Salesforce names are case-insensitive).
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The components of a compound field (`BillingAddress` → `BillingStreet`, ...), in describe
    /// order; empty for a field that is not compound.
    pub fn components(&self, compound: &str) -> Vec<&FieldDescribe> {
        self.fields
            .iter()
            .filter(|f| f.compound_field_name.as_deref() == Some(compound))
            .collect()
    }
}

impl FieldDescribe {
    /// An address or geolocation: a read-only umbrella over component fields.
    pub fn is_compound(&self) -> bool {
        matches!(self.field_type.as_str(), "address" | "location")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> SObjectDescribe {
        // The fixed test corpus: real payloads, and the synthetic custom object.
        let root = env!("CARGO_MANIFEST_DIR");
        let path = if name.ends_with("__c") {
            format!("{root}/tests/fixtures/write_fields/describe/{name}.json")
        } else {
            format!(
                "{root}/../fixtures/salesforce/{}.describe.json",
                name.to_lowercase()
            )
        };
        SObjectDescribe::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_real_account_describe() {
        let account = load("Account");
        assert_eq!(account.name, "Account");
        assert_eq!(account.key_prefix.as_deref(), Some("001"));
        assert_eq!(account.fields.len(), 67);
        let billing = account.components("BillingAddress");
        let names: Vec<_> = billing.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "BillingStreet",
                "BillingCity",
                "BillingState",
                "BillingPostalCode",
                "BillingCountry",
                "BillingLatitude",
                "BillingLongitude",
                "BillingGeocodeAccuracy"
            ]
        );
        assert!(account.field("billingaddress").unwrap().is_compound());
        // Account.Name has compoundFieldName "Name" in person-account orgs but is a plain string.
        assert!(!account.field("Name").unwrap().is_compound());
    }

    #[test]
    fn reads_the_invoice_custom_object() {
        let invoice = load("Invoice__c");
        assert!(invoice.custom);
        let md = invoice.field("Account__c").unwrap();
        assert!(md.cascade_delete && !md.nillable && !md.updateable);
        assert_eq!(md.relationship_order, Some(0));
        let total = invoice.field("Total__c").unwrap();
        assert!(total.calculated && total.calculated_formula.is_some());
        assert_eq!(invoice.components("Location__c").len(), 2);
    }
}
