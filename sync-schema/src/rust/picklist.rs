//! A typed enum per picklist (with `Other(String)` for values added later) and a set type per
//! multipicklist. The enum and its conversions are `sync_runtime::adapter::picklist!`'s; the
//! generated text lists only the values (variant names come from `types::assign_variants`).

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{doc, ident, multipicklist_names};
use crate::catalog::{Field, Mapping, Picklist, RustType};

/// The enum (and set alias) of every picklist field of a mapping.
pub(super) fn render_picklists(mapping: &Mapping) -> TokenStream {
    let mut out = TokenStream::new();
    let mut seen = Vec::<String>::new();
    for field in &mapping.fields {
        let Some(picklist) = &field.picklist else {
            continue;
        };
        match &field.rust_type {
            RustType::Picklist(name) if !seen.contains(name) => {
                seen.push(name.clone());
                out.extend(render_enum(mapping, field, picklist, &ident(name)));
            }
            RustType::MultiPicklist(_) => {
                let Some((element, set)) = multipicklist_names(field) else {
                    continue;
                };
                if seen.contains(&set) {
                    continue;
                }
                seen.push(set.clone());
                let element_ident = ident(&element);
                if !seen.contains(&element) {
                    seen.push(element.clone());
                    out.extend(render_enum(mapping, field, picklist, &element_ident));
                }
                let set_ident = ident(&set);
                let set_doc = doc(&format!(
                    "The values of {} (`{}.{}`), stored as `A;B;C`.",
                    field.label, mapping.object, field.sf_name
                ));
                out.extend(quote! {
                    #set_doc
                    pub type #set_ident = ::sync_runtime::adapter::MultiPicklist<#element_ident>;
                });
            }
            _ => {}
        }
    }
    out
}

fn render_enum(mapping: &Mapping, field: &Field, picklist: &Picklist, name: &Ident) -> TokenStream {
    let restricted = if picklist.restricted {
        " Restricted: Salesforce accepts only the listed values."
    } else {
        ""
    };
    let enum_doc = doc(&format!(
        "Values of {} (`{}.{}`).{restricted} Values added in Salesforce after this code was \
         generated load as `Other`.",
        field.label, mapping.object, field.sf_name
    ));
    // The runtime macro documents each variant with its value; only what else is known is here.
    let variants = picklist.values.iter().map(|v| {
        let mut notes = Vec::new();
        if v.default {
            notes.push("The default.");
        }
        if !v.active {
            notes.push("Inactive.");
        }
        let notes = doc(&notes.join(" "));
        let variant = ident(&v.variant);
        let value = &v.value;
        let label = (v.label != v.value).then(|| {
            let label = &v.label;
            quote!((#label))
        });
        quote!(#notes #variant = #value #label,)
    });
    quote! {
        ::sync_runtime::adapter::picklist! {
            #enum_doc
            pub enum #name {
                #(#variants)*
            }
        }
    }
}
