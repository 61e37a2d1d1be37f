//! The row structs of a mapping: `<Type>` (read), `New<Type>` (insert), `<Type>Changes` (update).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::{columns, doc, field_doc, table_ident, value_type};
use crate::catalog::{Catalog, Mapping};

pub(super) fn row_ident(mapping: &Mapping) -> Ident {
    super::ident(&mapping.type_name)
}

pub(super) fn new_ident(mapping: &Mapping) -> Ident {
    format_ident!("New{}", mapping.type_name)
}

pub(super) fn changes_ident(mapping: &Mapping) -> Ident {
    format_ident!("{}Changes", mapping.type_name)
}

pub(super) fn render_models(catalog: &Catalog, mapping: &Mapping) -> TokenStream {
    let table = table_ident(mapping);
    let qualified = format!("{}.{}", catalog.settings.schema, mapping.table);
    let (row, new, changes) = (
        row_ident(mapping),
        new_ident(mapping),
        changes_ident(mapping),
    );

    let row_doc = doc(&format!(
        "A row of `{qualified}`: one {} record.",
        mapping.label
    ));
    let row_fields = columns(mapping).map(|(field, ident)| {
        let field_doc = doc(&field_doc(field));
        let ty = value_type(field);
        quote! {
            #field_doc
            pub #ident: Option<#ty>,
        }
    });

    let new_doc = doc(&format!(
        "A new row for `{qualified}`. Fields Salesforce requires on create are not optional."
    ));
    let new_fields = columns(mapping).map(|(field, ident)| {
        let field_doc = doc(&field_doc(field));
        let ty = value_type(field);
        let ty = if field.required_on_create {
            ty
        } else {
            quote!(Option<#ty>)
        };
        quote! {
            #field_doc
            pub #ident: #ty,
        }
    });

    let required: Vec<_> = columns(mapping)
        .filter(|(f, _)| f.required_on_create)
        .map(|(f, ident)| {
            let ty = value_type(f);
            quote!(#ident: #ty)
        })
        .collect();
    let inits = columns(mapping).map(|(f, ident)| {
        if f.required_on_create {
            quote!(#ident)
        } else {
            quote!(#ident: None)
        }
    });
    let ctor_doc = doc(if required.is_empty() {
        "A new row with every column unset."
    } else {
        "A new row with the fields Salesforce requires on create; every other column unset."
    });

    // Without required fields every column is optional, so an empty row is a sensible default.
    let new_default = required.is_empty().then(|| quote!(Default,));

    let changes_doc = doc(&format!(
        "Changes to a row of `{qualified}`: `None` leaves a column alone, `Some(None)` sets it \
         to NULL."
    ));
    let change_fields = columns(mapping).map(|(field, ident)| {
        let field_doc = doc(&field_doc(field));
        let ty = value_type(field);
        quote! {
            #field_doc
            pub #ident: Option<Option<#ty>>,
        }
    });

    quote! {
        #row_doc
        #[derive(
            Debug, Clone, PartialEq,
            ::serde::Serialize, ::serde::Deserialize,
            ::diesel::Queryable, ::diesel::Selectable, ::diesel::Identifiable,
        )]
        #[diesel(table_name = #table, check_for_backend(::diesel::pg::Pg))]
        pub struct #row {
            /// Row id (`serial`); not stable across table reloads.
            pub id: i32,
            #(#row_fields)*
            /// The last sync operation (`PENDING`, `SYNCED`, …).
            pub hc_lastop: Option<String>,
            /// JSON details of the last failed write to Salesforce.
            pub hc_err: Option<String>,
        }

        #new_doc
        #[derive(Debug, Clone, PartialEq, #new_default ::serde::Serialize, ::serde::Deserialize, ::diesel::Insertable)]
        #[diesel(table_name = #table)]
        pub struct #new {
            #(#new_fields)*
        }

        impl #new {
            #ctor_doc
            pub fn new(#(#required),*) -> Self {
                #new {
                    #(#inits,)*
                }
            }
        }

        #changes_doc
        #[derive(Debug, Clone, Default, PartialEq, ::diesel::AsChangeset)]
        #[diesel(table_name = #table)]
        pub struct #changes {
            #(#change_fields)*
        }
    }
}
