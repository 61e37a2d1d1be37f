use insta::assert_snapshot;

use crate::testing::sample_catalog;

#[test]
fn the_sample_catalog_renders_formatted_generated_code() {
    assert_snapshot!("sample", super::render_file(&sample_catalog()));
}

#[test]
fn rendered_tokens_parse_as_a_rust_file() {
    let tokens = super::render(&sample_catalog());
    let file: syn::File = syn::parse2(tokens).expect("generated tokens parse");
    assert_eq!(file.items.len(), 1);
}

#[test]
fn wide_tables_name_the_diesel_feature_they_need() {
    use super::diesel_column_feature;
    assert_eq!(diesel_column_feature(32), Ok(None));
    assert_eq!(diesel_column_feature(33), Ok(Some("64-column-tables")));
    assert_eq!(diesel_column_feature(64), Ok(Some("64-column-tables")));
    assert_eq!(diesel_column_feature(65), Ok(Some("128-column-tables")));
    assert_eq!(diesel_column_feature(129), Err(128));
    let catalog = sample_catalog();
    let widget = catalog
        .mappings
        .iter()
        .find(|m| m.object == "Widget__c")
        .unwrap();
    assert_eq!(super::table_columns(widget), widget.fields.len() + 3);
}
