//! Code generated from a mapping over every field of each real describe fixture
//! (`sync-schema/tests/fixtures/real`: Account, Case, Contact, Lead, Opportunity), compiled to
//! prove the generator's output builds for tables of up to 128 columns.

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

#[cfg(test)]
mod tests {
    use super::salesforce;

    #[test]
    fn every_fixture_object_is_mapped_with_all_its_syncable_fields() {
        let objects: Vec<&str> = salesforce::MAPPINGS.iter().map(|m| m.object).collect();
        assert_eq!(
            objects,
            ["Account", "Case", "Contact", "Lead", "Opportunity"]
        );
        let widest = salesforce::MAPPINGS
            .iter()
            .map(|m| m.fields.len())
            .max()
            .unwrap_or(0);
        assert!(
            widest > 32,
            "the fixtures exercise wide tables ({widest} fields)"
        );
    }
}
