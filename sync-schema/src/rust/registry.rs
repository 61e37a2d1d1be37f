//! The root module: one module per mapped object, `MAPPINGS` and the `REGISTRY`.

use proc_macro2::TokenStream;
use quote::quote;

use super::adapter::render_adapter;
use super::model::render_models;
use super::picklist::render_picklists;
use super::table::render_table;
use super::{doc, ident};
use crate::catalog::{Access, Catalog, Mapping};

fn render_mapping(catalog: &Catalog, mapping: &Mapping) -> TokenStream {
    let module = ident(&mapping.module);
    let access = match mapping.access {
        Access::ReadOnly => "read-only: Salesforce changes are copied into Postgres",
        Access::ReadWrite => "read-write: changes flow both ways",
    };
    let mut lines = vec![format!(
        "{} (`{}`) ⇄ `{}.{}`, {access}.",
        mapping.label, mapping.object, catalog.settings.schema, mapping.table
    )];
    if let Some(key) = &mapping.upsert_key {
        lines.push(String::new());
        lines.push(format!(
            "Inserts are made idempotent by the external ID `{key}`."
        ));
    }
    if let Some(filter) = &mapping.filter {
        lines.push(String::new());
        lines.push(format!("Only records matching `{filter}` are synced."));
    }
    let table = render_table(catalog, mapping);
    let module_doc = doc(&lines.join("\n"));
    let picklists = render_picklists(mapping);
    let models = render_models(catalog, mapping);
    let adapter = render_adapter(catalog, mapping);
    quote! {
        #module_doc
        pub mod #module {
            #table
            #models
            #picklists
            #adapter
        }
    }
}

/// The `salesforce` module.
pub(super) fn render_root(catalog: &Catalog) -> TokenStream {
    let modules = catalog.mappings.iter().map(|m| render_mapping(catalog, m));
    let entries = catalog.mappings.iter().map(|m| {
        let module = ident(&m.module);
        quote!(&#module::MAPPING)
    });
    let api_version = &catalog.settings.api_version;
    let schema = &catalog.settings.schema;
    let transport = match catalog.settings.streaming_transport {
        crate::model::StreamingTransport::PubSub => quote!(PubSub),
        crate::model::StreamingTransport::Cometd => quote!(Cometd),
    };
    quote! {
        /// Typed Diesel models and sync adapters for every mapped Salesforce object.
        pub mod salesforce {
            #(#modules)*

            /// Every mapping of the project, in object-name order.
            pub static MAPPINGS: &[&::sync_runtime::adapter::MappingDescriptor] = &[#(#entries),*];

            /// The connection-wide settings (`forcesync.toml`) and every mapping.
            pub static REGISTRY: ::sync_runtime::adapter::Registry = ::sync_runtime::adapter::Registry {
                api_version: #api_version,
                schema: #schema,
                streaming_transport: ::sync_runtime::adapter::StreamingTransport::#transport,
                mappings: MAPPINGS,
            };
        }
    }
}
