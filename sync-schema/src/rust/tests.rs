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
