//! A typed enum per picklist (with `Other(String)` for values added later) and a set type per
//! multipicklist.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{ident, multipicklist_names};
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
                let doc = format!(
                    "The values of {} (`{}.{}`), stored as `A;B;C`.",
                    field.label, mapping.object, field.sf_name
                );
                out.extend(quote! {
                    #[doc = #doc]
                    pub type #set_ident = ::sync_runtime::adapter::MultiPicklist<#element_ident>;
                });
            }
            _ => {}
        }
    }
    out
}

/// Variant idents, with a known value named `Other` renamed so it cannot clash with the
/// catch-all `Other(String)`.
fn variants(picklist: &Picklist) -> Vec<Ident> {
    picklist
        .values
        .iter()
        .map(|v| {
            if v.variant == "Other" {
                ident("OtherValue")
            } else {
                ident(&v.variant)
            }
        })
        .collect()
}

fn render_enum(mapping: &Mapping, field: &Field, picklist: &Picklist, name: &Ident) -> TokenStream {
    let restricted = if picklist.restricted {
        " Restricted: Salesforce accepts only the listed values."
    } else {
        ""
    };
    let doc = format!(
        "Values of {} (`{}.{}`).{restricted} Values added in Salesforce after this code was \
         generated load as `Other`.",
        field.label, mapping.object, field.sf_name
    );
    let variants = variants(picklist);
    let values: Vec<&str> = picklist.values.iter().map(|v| v.value.as_str()).collect();
    let labels: Vec<&str> = picklist.values.iter().map(|v| v.label.as_str()).collect();
    let variant_docs = picklist.values.iter().map(|v| {
        let mut doc = format!("`{}`", v.value);
        if v.label != v.value {
            doc.push_str(&format!(" ({})", v.label));
        }
        if v.default {
            doc.push_str(", the default");
        }
        if !v.active {
            doc.push_str(", inactive");
        }
        doc.push('.');
        doc
    });

    quote! {
        #[doc = #doc]
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::diesel::AsExpression, ::diesel::FromSqlRow,
        )]
        #[diesel(sql_type = ::diesel::sql_types::Text)]
        pub enum #name {
            #(
                #[doc = #variant_docs]
                #variants,
            )*
            /// A value not known when this code was generated.
            Other(String),
        }

        impl #name {
            /// The API value stored in Salesforce and Postgres.
            pub fn as_str(&self) -> &str {
                match self {
                    #(Self::#variants => #values,)*
                    Self::Other(value) => value,
                }
            }

            /// The label shown in Salesforce (the API value for `Other`).
            pub fn label(&self) -> &str {
                match self {
                    #(Self::#variants => #labels,)*
                    Self::Other(value) => value,
                }
            }
        }

        impl ::sync_runtime::adapter::Picklist for #name {
            const VALUES: &'static [&'static str] = &[#(#values),*];

            fn as_str(&self) -> &str {
                #name::as_str(self)
            }

            fn from_value(value: &str) -> Self {
                match value {
                    #(#values => Self::#variants,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for #name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for #name {
            type Err = ::std::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(::sync_runtime::adapter::Picklist::from_value(value))
            }
        }

        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok(::sync_runtime::adapter::Picklist::from_value(&value))
            }
        }

        impl ::diesel::serialize::ToSql<::diesel::sql_types::Text, ::diesel::pg::Pg> for #name {
            fn to_sql<'b>(
                &'b self,
                out: &mut ::diesel::serialize::Output<'b, '_, ::diesel::pg::Pg>,
            ) -> ::diesel::serialize::Result {
                ::std::io::Write::write_all(out, self.as_str().as_bytes())?;
                Ok(::diesel::serialize::IsNull::No)
            }
        }

        impl ::diesel::deserialize::FromSql<::diesel::sql_types::Text, ::diesel::pg::Pg> for #name {
            fn from_sql(value: ::diesel::pg::PgValue<'_>) -> ::diesel::deserialize::Result<Self> {
                let value = ::std::str::from_utf8(value.as_bytes())?;
                Ok(::sync_runtime::adapter::Picklist::from_value(value))
            }
        }
    }
}
