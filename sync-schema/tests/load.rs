//! Loading real mappings: this repo's `mappings/` and a mapping over every field of each real
//! describe fixture (Account, Contact, Opportunity, Lead, Case), pinned as catalog summaries.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sync_schema::catalog::{Access, Catalog, ConflictPolicy, DeleteMode, PgType, RustType, SfType};
use sync_schema::load::load_dir_as;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(dir: &Path, shown: &str) -> Catalog {
    match load_dir_as(dir, Path::new(shown)) {
        Ok(catalog) => catalog,
        Err(diags) => panic!("{} did not load:\n{diags}", dir.display()),
    }
}

/// One line per field: what a reviewer needs to check the type table and naming.
fn summary(catalog: &Catalog) -> String {
    let mut out = String::new();
    let s = &catalog.settings;
    writeln!(
        out,
        "api {} schema {} poll {}",
        s.api_version, s.schema, s.poll_seconds
    )
    .unwrap();
    for m in &catalog.mappings {
        writeln!(
            out,
            "\n{} ({}) table={} module={} type={} access={:?} upsert_key={:?} filter={:?}",
            m.object, m.label, m.table, m.module, m.type_name, m.access, m.upsert_key, m.filter
        )
        .unwrap();
        writeln!(out, "  sync {:?}", m.sync).unwrap();
        for f in &m.fields {
            let mut flags = Vec::new();
            for (on, name) in [
                (f.system, "system"),
                (f.required_on_create, "required"),
                (f.writable, "writable"),
                (f.calculated, "formula"),
                (f.external_id, "external_id"),
                (f.unique, "unique"),
                (f.nillable, "nillable"),
            ] {
                if on {
                    flags.push(name.to_owned());
                }
            }
            if let Some(c) = &f.compound {
                flags.push(format!("in {c}"));
            }
            if !f.reference_to.is_empty() {
                flags.push(format!("-> {}", f.reference_to.join("|")));
            }
            if let Some(r) = &f.relationship {
                flags.push(format!("via {} ({})", r.lookup, r.name));
            }
            let rust = match &f.rust_type {
                RustType::Picklist(n) | RustType::MultiPicklist(n) => {
                    let p = f.picklist.as_ref().unwrap();
                    let variants: Vec<_> = p.values.iter().map(|v| v.variant.as_str()).collect();
                    format!(
                        "{n}{}[{}]",
                        if p.restricted { " restricted" } else { "" },
                        variants.join(",")
                    )
                }
                other => format!("{other:?}"),
            };
            writeln!(
                out,
                "  {:<28} {:<28} {:<26} {:<15} {:<16} {} {}",
                f.sf_name,
                f.column,
                f.rust_name,
                f.sf_type.as_str(),
                f.pg_type.sql(),
                rust,
                flags.join(" ")
            )
            .unwrap();
        }
        let indexes: Vec<_> = m.indexes.iter().map(|i| i.name.as_str()).collect();
        writeln!(out, "  indexes {}", indexes.join(", ")).unwrap();
    }
    out
}

#[test]
fn this_repos_mappings_load() {
    let catalog = load(&manifest_dir().join("../mappings"), "mappings");
    let objects: Vec<_> = catalog.mappings.iter().map(|m| m.object.as_str()).collect();
    assert_eq!(
        objects,
        [
            "Account",
            "Contact",
            "Invoice_Line__c",
            "Invoice__c",
            "Opportunity"
        ]
    );
    // A line names its invoice by the invoice's external ID (Heroku Connect's column naming);
    // either that or the lookup's Id names the parent, so neither is required on create.
    let line = &catalog.mappings[2];
    let by_external_id = line.field("Invoice__r.External_Id__c").unwrap();
    assert_eq!(
        (
            by_external_id.column.as_str(),
            by_external_id.rust_name.as_str(),
            by_external_id.pg_type
        ),
        (
            "invoice__r__external_id__c",
            "invoice_external_id",
            PgType::Varchar(40)
        )
    );
    assert!(by_external_id.writable && !by_external_id.required_on_create);
    let path = by_external_id.relationship.as_ref().unwrap();
    assert_eq!(
        (
            path.lookup.as_str(),
            path.name.as_str(),
            path.object.as_str()
        ),
        ("Invoice__c", "Invoice__r", "Invoice__c")
    );
    assert!(!line.field("Invoice__c").unwrap().required_on_create);
    let invoice = &catalog.mappings[3];
    assert_eq!(
        (invoice.module.as_str(), invoice.type_name.as_str()),
        ("invoice", "Invoice")
    );
    assert_eq!(invoice.upsert_key.as_deref(), Some("External_Id__c"));
    assert_eq!(invoice.sync.conflict, ConflictPolicy::SalesforceWins);
    let total = invoice.field("Total__c").unwrap();
    assert!(total.calculated && !total.writable);
    let amount = invoice.field("Amount__c").unwrap();
    assert!(amount.required_on_create && amount.writable);
    let lat = invoice.field("Location__Latitude__s").unwrap();
    assert_eq!(
        (lat.column.as_str(), lat.rust_name.as_str(), lat.pg_type),
        (
            "location__latitude__s",
            "location_latitude",
            PgType::DoublePrecision
        )
    );
    assert_eq!(lat.compound.as_deref(), Some("Location__c"));
    let methods = invoice.field("Payment_Methods__c").unwrap();
    assert_eq!(
        methods.rust_type,
        RustType::MultiPicklist("PaymentMethodsSet".into())
    );
    assert_eq!(methods.pg_type, PgType::Varchar(4099));
    assert_eq!(invoice.field("Due_Time__c").unwrap().sf_type, SfType::Time);
    assert_eq!(invoice.field("Notes__c").unwrap().pg_type, PgType::Text);
    let status = invoice
        .field("Status__c")
        .unwrap()
        .picklist
        .as_ref()
        .unwrap();
    assert!(status.restricted);

    let account = &catalog.mappings[0];
    assert_eq!(account.access, Access::ReadWrite);
    assert_eq!(account.upsert_key, None);
    assert_eq!(
        account.field("Type").unwrap().rust_type,
        RustType::Picklist("AccountType".into())
    );
    assert!(account.field("BillingGeocodeAccuracy").is_some());
    let opportunity = &catalog.mappings[4];
    assert_eq!(opportunity.access, Access::ReadOnly);
    assert_eq!(opportunity.sync.deletes, DeleteMode::Soft);
    assert_eq!(opportunity.sync.poll_seconds, 300);
    // Contact.Name is a plain (read-only) string, not a compound.
    let contact_name = catalog.mappings[1].field("Name").unwrap();
    assert!(contact_name.compound.is_none() && !contact_name.writable);

    // Every file read is tracked, so editing one rebuilds.
    let tracked: Vec<_> = catalog
        .sources
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for file in [
        "forcesync.toml",
        "Account.toml",
        "Invoice__c.toml",
        "Invoice__c.json",
    ] {
        assert!(
            tracked.iter().any(|t| t == file),
            "{file} not in {tracked:?}"
        );
    }
    insta::assert_snapshot!("repo_mappings", summary(&catalog));
}

#[test]
fn every_field_of_each_real_describe_loads() {
    let catalog = load(&manifest_dir().join("tests/fixtures/real"), "real");
    let objects: Vec<_> = catalog.mappings.iter().map(|m| m.object.as_str()).collect();
    assert_eq!(
        objects,
        ["Account", "Case", "Contact", "Lead", "Opportunity"]
    );
    for m in &catalog.mappings {
        let mut columns: Vec<_> = m.fields.iter().map(|f| &f.column).collect();
        let mut names: Vec<_> = m.fields.iter().map(|f| &f.rust_name).collect();
        columns.sort();
        names.sort();
        let (nc, nn) = (columns.len(), names.len());
        columns.dedup();
        names.dedup();
        assert_eq!((columns.len(), names.len()), (nc, nn), "{}", m.object);
    }
    insta::assert_snapshot!("real_fixtures", summary(&catalog));
}

#[test]
fn write_fields_narrow_what_is_written_back() {
    let catalog = load(
        &manifest_dir().join("tests/fixtures/write_fields"),
        "write_fields",
    );
    let invoice = &catalog.mappings[0];
    assert_eq!(invoice.object, "Invoice__c", "the describe's spelling wins");
    let writable: Vec<_> = invoice
        .fields
        .iter()
        .filter(|f| f.writable)
        .map(|f| f.sf_name.as_str())
        .collect();
    assert_eq!(
        writable,
        [
            "Amount__c",
            "Location__Latitude__s",
            "Location__Longitude__s"
        ]
    );
    // Listing system fields changes nothing; they stay first and unique.
    let names: Vec<_> = invoice.fields.iter().map(|f| f.sf_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Id",
            "IsDeleted",
            "SystemModstamp",
            "CreatedDate",
            "Amount__c",
            "Status__c",
            "Total__c",
            "Location__Latitude__s",
            "Location__Longitude__s"
        ]
    );
    assert_eq!(invoice.drop_columns, ["legacy_code__c"]);
    assert_eq!(invoice.sync.deletes, DeleteMode::Soft);
    assert_eq!(invoice.sync.conflict, ConflictPolicy::PostgresWins);
    assert!(!invoice.sync.streaming);
    assert!(invoice
        .filter
        .as_deref()
        .unwrap()
        .starts_with("Status__c IN"));
}
