//! The sync adapter of a mapping: static field and mapping descriptors, and the `SyncAdapter`
//! implementation converting Salesforce records to rows and rows to request bodies.

use heck::ToShoutySnakeCase;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::model::{changes_ident, new_ident, row_ident};
use super::{compound_key, field_ident, ident};
use crate::catalog::{
    Access, Catalog, ConflictPolicy, DeleteMode, Field, Mapping, PgType, SfType, WriteKind,
};

const RT: &str = "::sync_runtime::adapter";

fn rt() -> TokenStream {
    RT.parse().unwrap_or_default()
}

/// The const naming a field's descriptor: `BillingCity` → `BILLING_CITY`.
pub(super) fn descriptor_ident(field: &Field) -> Ident {
    ident(&field.rust_name.to_shouty_snake_case())
}

fn opt_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    }
}

fn sf_type(ty: SfType) -> TokenStream {
    let variant = ident(ty.variant_name());
    quote!(SfType::#variant)
}

fn pg_type(ty: PgType) -> TokenStream {
    match ty {
        PgType::Varchar(n) => {
            let n = Literal::u32_unsuffixed(n);
            quote!(PgType::Varchar(#n))
        }
        PgType::Text => quote!(PgType::Text),
        PgType::DoublePrecision => quote!(PgType::DoublePrecision),
        PgType::Integer => quote!(PgType::Integer),
        PgType::BigInt => quote!(PgType::BigInt),
        PgType::Boolean => quote!(PgType::Boolean),
        PgType::Date => quote!(PgType::Date),
        PgType::Timestamp => quote!(PgType::Timestamp),
        PgType::Time => quote!(PgType::Time),
    }
}

fn field_descriptor(field: &Field) -> TokenStream {
    let name = descriptor_ident(field);
    let doc = format!("`{}` → column `{}`.", field.sf_name, field.column);
    let sf_name = &field.sf_name;
    let column = &field.column;
    let label = &field.label;
    let ty = sf_type(field.sf_type);
    let pg = pg_type(field.pg_type);
    let compound = opt_str(field.compound.as_deref());
    let key = compound_key(field);
    let compound_key = opt_str(key.as_deref());
    let length = match field.length {
        Some(n) => {
            let n = Literal::u32_unsuffixed(n);
            quote!(Some(#n))
        }
        None => quote!(None),
    };
    let Field {
        system,
        nillable,
        createable,
        updateable,
        calculated,
        external_id,
        unique,
        required_on_create,
        ..
    } = field;
    let writable = field.writable;
    let reference_to = &field.reference_to;
    quote! {
        #[doc = #doc]
        pub const #name: FieldDescriptor = FieldDescriptor {
            sf_name: #sf_name,
            column: #column,
            label: #label,
            sf_type: #ty,
            pg_type: #pg,
            compound: #compound,
            compound_key: #compound_key,
            length: #length,
            system: #system,
            nillable: #nillable,
            createable: #createable,
            updateable: #updateable,
            calculated: #calculated,
            external_id: #external_id,
            unique: #unique,
            required_on_create: #required_on_create,
            writable: #writable,
            reference_to: &[#(#reference_to),*],
        };
    }
}

pub(super) fn render_adapter(catalog: &Catalog, mapping: &Mapping) -> TokenStream {
    let rt = rt();
    let (row, new, changes) = (
        row_ident(mapping),
        new_ident(mapping),
        changes_ident(mapping),
    );
    let descriptors = mapping.fields.iter().map(field_descriptor);
    let names: Vec<Ident> = mapping.fields.iter().map(descriptor_ident).collect();
    let idents: Vec<Ident> = mapping.fields.iter().map(field_ident).collect();

    let object = &mapping.object;
    let label = &mapping.label;
    let schema = &catalog.settings.schema;
    let table = &mapping.table;
    let key_prefix = opt_str(mapping.key_prefix.as_deref());
    let access = match mapping.access {
        Access::ReadOnly => quote!(#rt::Access::ReadOnly),
        Access::ReadWrite => quote!(#rt::Access::ReadWrite),
    };
    let upsert_key = opt_str(mapping.upsert_key.as_deref());
    let filter = opt_str(mapping.filter.as_deref());
    let sync = &mapping.sync;
    let streaming = sync.streaming;
    let poll_seconds = Literal::u32_unsuffixed(sync.poll_seconds);
    let max_daily_api_calls = Literal::u32_unsuffixed(sync.max_daily_api_calls);
    let deletes = match sync.deletes {
        DeleteMode::Hard => quote!(#rt::DeleteMode::Hard),
        DeleteMode::Soft => quote!(#rt::DeleteMode::Soft),
    };
    let conflict = match sync.conflict {
        ConflictPolicy::Merge => quote!(#rt::ConflictPolicy::Merge),
        ConflictPolicy::SalesforceWins => quote!(#rt::ConflictPolicy::SalesforceWins),
        ConflictPolicy::PostgresWins => quote!(#rt::ConflictPolicy::PostgresWins),
        ConflictPolicy::LastWriterWins => quote!(#rt::ConflictPolicy::LastWriterWins),
    };

    let new_values = mapping.fields.iter().zip(&names).map(|(field, name)| {
        let ident = field_ident(field);
        if field.required_on_create {
            quote!(#ident: record.required(&fields::#name)?,)
        } else {
            quote!(#ident: record.optional(&fields::#name)?,)
        }
    });
    let body_puts = |kind: WriteKind| {
        mapping
            .fields
            .iter()
            .zip(&names)
            .filter(move |(field, _)| field.sent_on(kind))
            .map(|(field, name)| {
                let ident = field_ident(field);
                quote!(body.put(&fields::#name, &self.#ident);)
            })
            .collect::<Vec<_>>()
    };
    let create_puts = body_puts(WriteKind::Create);
    let update_puts = body_puts(WriteKind::Update);
    // A body with nothing to put is returned as is.
    let body = |kind: TokenStream, puts: &[TokenStream]| {
        if puts.is_empty() {
            quote!(#rt::SfBody::new(#rt::WriteKind::#kind))
        } else {
            quote! {
                let mut body = #rt::SfBody::new(#rt::WriteKind::#kind);
                #(#puts)*
                body
            }
        }
    };
    let create_body = body(quote!(Create), &create_puts);
    let update_body = body(quote!(Update), &update_puts);

    let fields_doc = format!("Descriptors of the synced fields of `{object}`.");
    let mapping_doc = format!("How `{object}` syncs with `{schema}.{table}`.");

    quote! {
        #[doc = #fields_doc]
        pub mod fields {
            use ::sync_runtime::adapter::{FieldDescriptor, PgType, SfType};

            #(#descriptors)*
        }

        #[doc = #mapping_doc]
        pub static MAPPING: #rt::MappingDescriptor = #rt::MappingDescriptor {
            object: #object,
            label: #label,
            schema: #schema,
            table: #table,
            key_prefix: #key_prefix,
            access: #access,
            upsert_key: #upsert_key,
            filter: #filter,
            sync: #rt::SyncOptions {
                streaming: #streaming,
                poll_seconds: #poll_seconds,
                deletes: #deletes,
                conflict: #conflict,
                max_daily_api_calls: #max_daily_api_calls,
            },
            fields: &[#(fields::#names),*],
        };

        impl #rt::SyncAdapter for #row {
            type New = #new;
            type Changes = #changes;

            fn descriptor() -> &'static #rt::MappingDescriptor {
                &MAPPING
            }

            fn new_from_sf(record: &#rt::SfRecord<'_>) -> Result<#new, #rt::ConversionError> {
                Ok(#new {
                    #(#new_values)*
                })
            }

            fn changes_from_sf(record: &#rt::SfRecord<'_>) -> Result<#changes, #rt::ConversionError> {
                Ok(#changes {
                    #(#idents: record.change(&fields::#names)?,)*
                })
            }

            fn create_body(&self) -> #rt::SfBody {
                #create_body
            }

            fn update_body(&self) -> #rt::SfBody {
                #update_body
            }
        }
    }
}
