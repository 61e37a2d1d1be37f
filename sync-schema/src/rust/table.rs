//! The `diesel::table!` of a mapping: `id`, every catalog column, `_hc_lastop`, `_hc_err`.
//!
//! prettyplease leaves macro bodies as one long token line, so for formatted output the table is
//! also rendered as text ([`table_text`]) in the layout `diesel print-schema` uses, and spliced in
//! where [`render_table`] left a placeholder.

use proc_macro2::TokenStream;
use quote::quote;

use super::{columns, field_doc, sql_type, table_ident};
use crate::catalog::{Catalog, Mapping};

/// One line of the table: docs, optional `#[sql_name]`, `ident -> Type,`.
struct Column {
    docs: Vec<String>,
    sql_name: Option<String>,
    ident: String,
    ty: String,
}

struct Table {
    doc: String,
    sql_name: Option<String>,
    schema: String,
    ident: String,
    columns: Vec<Column>,
}

fn table(catalog: &Catalog, mapping: &Mapping) -> Table {
    let ident = table_ident(mapping).to_string();
    let mut cols = vec![Column {
        docs: vec!["Row id (`serial`); not stable across table reloads.".to_owned()],
        sql_name: None,
        ident: "id".to_owned(),
        ty: "Int4".to_owned(),
    }];
    cols.extend(columns(mapping).map(|(field, ident)| {
        let ident = ident.to_string();
        Column {
            docs: vec![field_doc(field)],
            sql_name: (ident != field.column).then(|| field.column.clone()),
            ident,
            ty: format!("Nullable<{}>", sql_type(field.pg_type)),
        }
    }));
    cols.push(Column {
        docs: vec![
            "The last sync operation: `PENDING` after an application write, `SYNCED` after the"
                .to_owned(),
            "sync engine wrote the row.".to_owned(),
        ],
        sql_name: Some("_hc_lastop".to_owned()),
        ident: "hc_lastop".to_owned(),
        ty: "Nullable<Varchar>".to_owned(),
    });
    cols.push(Column {
        docs: vec!["JSON details of the last failed write to Salesforce.".to_owned()],
        sql_name: Some("_hc_err".to_owned()),
        ident: "hc_err".to_owned(),
        ty: "Nullable<Text>".to_owned(),
    });
    Table {
        doc: format!(
            "`{}.{}`: {} (`{}`).",
            catalog.settings.schema, mapping.table, mapping.label, mapping.object
        ),
        sql_name: (ident != mapping.table).then(|| mapping.table.clone()),
        schema: catalog.settings.schema.clone(),
        ident,
        columns: cols,
    }
}

/// The `table!` invocation as tokens (for the proc-macro).
pub(super) fn render_table(catalog: &Catalog, mapping: &Mapping) -> TokenStream {
    let t = table(catalog, mapping);
    let doc = format!(" {}", t.doc);
    let sql_name = t.sql_name.map(|n| quote!(#[sql_name = #n]));
    let schema = super::ident(&t.schema);
    let name: TokenStream = t.ident.parse().unwrap_or_default();
    let cols = t.columns.iter().map(|c| {
        let docs = c.docs.iter().map(|d| format!(" {d}"));
        let sql_name = c.sql_name.as_ref().map(|n| quote!(#[sql_name = #n]));
        let ident: TokenStream = c.ident.parse().unwrap_or_default();
        let ty: TokenStream = c.ty.parse().unwrap_or_default();
        quote! {
            #(#[doc = #docs])*
            #sql_name
            #ident -> #ty,
        }
    });
    quote! {
        ::diesel::table! {
            #[doc = #doc]
            #sql_name
            #schema.#name (id) {
                #(#cols)*
            }
        }
    }
}

/// The same invocation as formatted text, indented by `indent`.
pub(super) fn table_text(catalog: &Catalog, mapping: &Mapping, indent: &str) -> String {
    let t = table(catalog, mapping);
    let mut out = format!("{indent}::diesel::table! {{\n");
    let inner = format!("{indent}    ");
    out.push_str(&format!("{inner}/// {}\n", t.doc));
    if let Some(n) = &t.sql_name {
        out.push_str(&format!("{inner}#[sql_name = \"{n}\"]\n"));
    }
    out.push_str(&format!("{inner}{}.{} (id) {{\n", t.schema, t.ident));
    for c in &t.columns {
        for d in &c.docs {
            out.push_str(&format!("{inner}    /// {d}\n"));
        }
        if let Some(n) = &c.sql_name {
            out.push_str(&format!("{inner}    #[sql_name = \"{n}\"]\n"));
        }
        out.push_str(&format!("{inner}    {} -> {},\n", c.ident, c.ty));
    }
    out.push_str(&format!("{inner}}}\n{indent}}}\n"));
    out
}
