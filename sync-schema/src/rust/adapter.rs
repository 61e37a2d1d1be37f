//! The sync adapter of a mapping: static field and mapping descriptors, the `SyncAdapter`
//! implementation converting Salesforce records to rows, and for read-write mappings the
//! `WriteBack` implementation turning rows into request bodies.

use heck::ToShoutySnakeCase;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::model::{changes_ident, new_ident, row_ident};
use super::{compound_key, doc, field_ident, ident};
use crate::catalog::{
    Access, Catalog, ConflictPolicy, DeleteMode, Field, Mapping, PgType, WriteKind,
};

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

/// `Varchar(40)`, `Text`, ... as `field_descriptors!` takes it.
fn pg_type(ty: PgType) -> TokenStream {
    match ty {
        PgType::Varchar(n) => {
            let n = Literal::u32_unsuffixed(n);
            quote!(Varchar(#n))
        }
        PgType::Text => quote!(Text),
        PgType::DoublePrecision => quote!(DoublePrecision),
        PgType::Integer => quote!(Integer),
        PgType::BigInt => quote!(BigInt),
        PgType::Boolean => quote!(Boolean),
        PgType::Date => quote!(Date),
        PgType::Timestamp => quote!(Timestamp),
        PgType::Time => quote!(Time),
    }
}

/// One `field_descriptors!` entry: `NAME: "Sf" => "col", SfType, PgType, "Label", [flags] …;`.
fn field_descriptor(field: &Field) -> TokenStream {
    let name = descriptor_ident(field);
    let entry_doc = doc(&format!("`{}` → column `{}`.", field.sf_name, field.column));
    let (sf_name, column, label) = (&field.sf_name, &field.column, &field.label);
    let sf_type = ident(field.sf_type.variant_name());
    let pg = pg_type(field.pg_type);
    let flags = [
        ("system", field.system),
        ("nillable", field.nillable),
        ("createable", field.createable),
        ("updateable", field.updateable),
        ("calculated", field.calculated),
        ("external_id", field.external_id),
        ("unique", field.unique),
        ("required_on_create", field.required_on_create),
        ("writable", field.writable),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(flag, _)| ident(flag));
    let length = field.length.map(|n| {
        let n = Literal::u32_unsuffixed(n);
        quote!(, length #n)
    });
    let compound = field
        .compound
        .as_deref()
        .zip(compound_key(field))
        .map(|(compound, key)| quote!(, compound #compound . #key));
    let via = field.relationship.as_ref().map(|r| {
        let (lookup, name, key) = (&r.lookup, &r.name, &r.field);
        quote!(, via #lookup #name . #key)
    });
    let reference_to = (!field.reference_to.is_empty()).then(|| {
        let to = &field.reference_to;
        quote!(, to [#(#to),*])
    });
    quote! {
        #entry_doc
        #name: #sf_name => #column, #sf_type, #pg, #label, [#(#flags)*] #length #compound #via #reference_to;
    }
}

pub(super) fn render_adapter(catalog: &Catalog, mapping: &Mapping) -> TokenStream {
    let rt = quote!(::sync_runtime::adapter);
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
        Access::ReadOnly => quote!(ReadOnly),
        Access::ReadWrite => quote!(ReadWrite),
    };
    let upsert_key = opt_str(mapping.upsert_key.as_deref());
    let filter = opt_str(mapping.filter.as_deref());
    let sync = &mapping.sync;
    let streaming = sync.streaming;
    let poll_seconds = Literal::u32_unsuffixed(sync.poll_seconds);
    let max_daily_api_calls = Literal::u32_unsuffixed(sync.max_daily_api_calls);
    let deletes = match sync.deletes {
        DeleteMode::Hard => quote!(Hard),
        DeleteMode::Soft => quote!(Soft),
    };
    let conflict = match sync.conflict {
        ConflictPolicy::Merge => quote!(Merge),
        ConflictPolicy::SalesforceWins => quote!(SalesforceWins),
        ConflictPolicy::PostgresWins => quote!(PostgresWins),
        ConflictPolicy::LastWriterWins => quote!(LastWriterWins),
    };

    let new_values = mapping.fields.iter().zip(&names).map(|(field, name)| {
        let ident = field_ident(field);
        if field.required_on_create {
            quote!(#ident: record.required(&fields::#name)?,)
        } else {
            quote!(#ident: record.optional(&fields::#name)?,)
        }
    });

    let fields_doc = doc(&format!("Descriptors of the synced fields of `{object}`."));
    let mapping_doc = doc(&format!("How `{object}` syncs with `{schema}.{table}`."));
    let write_back = mapping
        .is_read_write()
        .then(|| render_write_back(mapping, &names));

    quote! {
        #fields_doc
        pub mod fields {
            ::sync_runtime::adapter::field_descriptors! {
                #(#descriptors)*
            }
        }

        #mapping_doc
        pub static MAPPING: #rt::MappingDescriptor = #rt::MappingDescriptor {
            object: #object,
            label: #label,
            schema: #schema,
            table: #table,
            key_prefix: #key_prefix,
            access: #rt::Access::#access,
            upsert_key: #upsert_key,
            filter: #filter,
            sync: #rt::SyncOptions {
                streaming: #streaming,
                poll_seconds: #poll_seconds,
                deletes: #rt::DeleteMode::#deletes,
                conflict: #rt::ConflictPolicy::#conflict,
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
        }

        #write_back
    }
}

/// `impl WriteBack`: the fields sent on create and on update.
fn render_write_back(mapping: &Mapping, names: &[Ident]) -> TokenStream {
    let row = row_ident(mapping);
    let puts = |kind: WriteKind| {
        mapping
            .fields
            .iter()
            .zip(names)
            .filter(move |(field, _)| field.sent_on(kind))
            .map(|(field, name)| {
                let ident = field_ident(field);
                quote!(body.put(&fields::#name, &self.#ident);)
            })
            .collect::<Vec<_>>()
    };
    let body = |kind: TokenStream, puts: Vec<TokenStream>| {
        let new = quote!(::sync_runtime::adapter::SfBody::new(
            ::sync_runtime::adapter::WriteKind::#kind
        ));
        if puts.is_empty() {
            new
        } else {
            quote! {
                let mut body = #new;
                #(#puts)*
                body
            }
        }
    };
    let create = body(quote!(Create), puts(WriteKind::Create));
    let update = body(quote!(Update), puts(WriteKind::Update));
    quote! {
        impl ::sync_runtime::adapter::WriteBack for #row {
            fn create_body(&self) -> ::sync_runtime::adapter::SfBody {
                #create
            }

            fn update_body(&self) -> ::sync_runtime::adapter::SfBody {
                #update
            }
        }
    }
}
