//! The `diesel::table!` of a mapping: `id`, every catalog column, `_hc_lastop`, `_hc_err`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{columns, doc, field_doc, ident, sql_type, table_ident};
use crate::catalog::{Catalog, Mapping};

/// The `table!` invocation.
pub(super) fn render_table(catalog: &Catalog, mapping: &Mapping) -> TokenStream {
    let table = table_ident(mapping);
    let table_doc = doc(&format!(
        "`{}.{}`: {} (`{}`).",
        catalog.settings.schema, mapping.table, mapping.label, mapping.object
    ));
    let sql_name = (table != mapping.table).then(|| {
        let name = &mapping.table;
        quote!(#[sql_name = #name])
    });
    let schema = ident(&catalog.settings.schema);
    let id_doc = doc("Row id (`serial`); not stable across table reloads.");
    let cols = columns(mapping).map(|(field, column)| {
        let column_doc = doc(&field_doc(field));
        let sql_name = (column != field.column).then(|| {
            let name = &field.column;
            quote!(#[sql_name = #name])
        });
        let ty = sql_type(field.pg_type);
        quote! {
            #column_doc
            #sql_name
            #column -> Nullable<#ty>,
        }
    });
    let lastop_doc = doc(
        "The last sync operation: `PENDING` after an application write, `SYNCED` after the\n\
         sync engine wrote the row.",
    );
    let err_doc = doc("JSON details of the last failed write to Salesforce.");
    quote! {
        ::diesel::table! {
            #table_doc
            #sql_name
            #schema.#table (id) {
                #id_doc
                id -> Int4,
                #(#cols)*
                #lastop_doc
                #[sql_name = "_hc_lastop"]
                hc_lastop -> Nullable<Varchar>,
                #err_doc
                #[sql_name = "_hc_err"]
                hc_err -> Nullable<Text>,
            }
        }
    }
}
