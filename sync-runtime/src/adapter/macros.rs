//! The macros generated code expands, so that what is the same for every mapping is written once
//! here and the generated text keeps only what differs (as prost does with its runtime):
//!
//! * [`picklist!`](crate::picklist): a picklist enum with `Other(String)` and its conversions
//!   (text, serde, Diesel);
//! * [`field_descriptors!`](crate::field_descriptors): one `FieldDescriptor` const per line.

/// A picklist enum: one variant per known API value plus `Other(String)` for values added in
/// Salesforce later, with `as_str`, `label`, [`Picklist`](crate::adapter::Picklist), `Display`,
/// `FromStr`, serde (as the API value) and Diesel `Text` conversions.
///
/// Each variant is `Variant = "API value"`, followed by `("Label")` when the label differs from
/// the value; each is documented with its value, after any doc comment written on it.
///
/// ```
/// sync_runtime::picklist! {
///     /// Values of Stage.
///     pub enum Stage {
///         Prospecting = "Prospecting",
///         /// The default.
///         ClosedWon = "Closed Won" ("Closed/Won"),
///     }
/// }
/// use sync_runtime::adapter::Picklist;
/// assert_eq!(Stage::from_value("Closed Won"), Stage::ClosedWon);
/// assert_eq!(Stage::ClosedWon.label(), "Closed/Won");
/// assert_eq!(Stage::from_value("Lost").as_str(), "Lost");
/// ```
#[macro_export]
macro_rules! picklist {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $value:literal $(($label:literal))?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord,
            $crate::adapter::__private::diesel::expression::AsExpression,
            $crate::adapter::__private::diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = $crate::adapter::__private::diesel::sql_types::Text)]
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                #[doc = concat!("`", $value, "`.")]
                $variant,
            )*
            /// A value not known when this code was generated.
            Other(::std::string::String),
        }

        impl $name {
            /// The API value stored in Salesforce and Postgres.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Other(value) => value,
                }
            }

            /// The label shown in Salesforce (the API value for `Other`).
            pub fn label(&self) -> &str {
                match self {
                    $(Self::$variant => $crate::__first!($($label,)? $value),)*
                    Self::Other(value) => value,
                }
            }
        }

        impl $crate::adapter::Picklist for $name {
            const VALUES: &'static [&'static str] = &[$($value),*];

            fn as_str(&self) -> &str {
                $name::as_str(self)
            }

            fn from_value(value: &str) -> Self {
                match value {
                    $($value => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;

            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok($crate::adapter::Picklist::from_value(value))
            }
        }

        impl $crate::adapter::__private::serde::Serialize for $name {
            fn serialize<S: $crate::adapter::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::adapter::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::adapter::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let value: ::std::string::String =
                    $crate::adapter::__private::serde::Deserialize::deserialize(deserializer)?;
                Ok($crate::adapter::Picklist::from_value(&value))
            }
        }

        impl $crate::adapter::__private::diesel::serialize::ToSql<
            $crate::adapter::__private::diesel::sql_types::Text,
            $crate::adapter::__private::diesel::pg::Pg,
        > for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut $crate::adapter::__private::diesel::serialize::Output<
                    'b,
                    '_,
                    $crate::adapter::__private::diesel::pg::Pg,
                >,
            ) -> $crate::adapter::__private::diesel::serialize::Result {
                ::std::io::Write::write_all(out, self.as_str().as_bytes())?;
                Ok($crate::adapter::__private::diesel::serialize::IsNull::No)
            }
        }

        impl $crate::adapter::__private::diesel::deserialize::FromSql<
            $crate::adapter::__private::diesel::sql_types::Text,
            $crate::adapter::__private::diesel::pg::Pg,
        > for $name {
            fn from_sql(
                value: $crate::adapter::__private::diesel::pg::PgValue<'_>,
            ) -> $crate::adapter::__private::diesel::deserialize::Result<Self> {
                let value = ::std::str::from_utf8(value.as_bytes())?;
                Ok($crate::adapter::Picklist::from_value(value))
            }
        }
    };
}

/// `FieldDescriptor` consts, one per line:
///
/// `NAME: "SfName" => "column", SfType, PgType, "Label", [flags]` followed by any of
/// `, length N`, `, compound "Compound"."Key"`, `, via "Lookup" "Relationship"."Field"`,
/// `, to ["Object", …]` in that order. Flags are the descriptor's boolean fields that are true
/// (`nillable createable updateable writable`).
///
/// ```
/// sync_runtime::field_descriptors! {
///     /// `BillingCity` → column `billingcity`.
///     BILLING_CITY: "BillingCity" => "billingcity", String, Varchar(40), "Billing City",
///         [nillable createable updateable writable], length 40, compound "BillingAddress"."City";
///     /// `ParentId` → column `parentid`.
///     PARENT_ID: "ParentId" => "parentid", Reference, Varchar(18), "Parent Account ID",
///         [nillable], length 18, to ["Account"];
///     /// `Invoice__r.External_Id__c` → column `invoice__r__external_id__c`.
///     INVOICE_EXTERNAL_ID: "Invoice__r.External_Id__c" => "invoice__r__external_id__c", String,
///         Varchar(40), "Invoice External ID", [nillable createable writable], length 40,
///         via "Invoice__c" "Invoice__r"."External_Id__c", to ["Invoice__c"];
/// }
/// assert_eq!(BILLING_CITY.compound_key, Some("City"));
/// assert!(BILLING_CITY.writable && !PARENT_ID.writable);
/// assert_eq!(PARENT_ID.reference_to, ["Account"]);
/// assert_eq!(INVOICE_EXTERNAL_ID.relationship.unwrap().name, "Invoice__r");
/// ```
#[macro_export]
macro_rules! field_descriptors {
    ($(
        $(#[$meta:meta])*
        $name:ident: $sf_name:literal => $column:literal, $sf_type:ident,
        $pg_type:ident $(($pg_len:literal))?, $label:literal, [$($flag:ident)*]
        $(, length $length:literal)?
        $(, compound $compound:literal . $key:literal)?
        $(, via $lookup:literal $relationship:literal . $rel_field:literal)?
        $(, to [$($to:literal),* $(,)?])?
    );* $(;)?) => {$(
        $(#[$meta])*
        pub const $name: $crate::adapter::FieldDescriptor = $crate::adapter::FieldDescriptor {
            $($flag: true,)*
            length: $crate::__option!($($length)?),
            compound: $crate::__option!($($compound)?),
            compound_key: $crate::__option!($($key)?),
            reference_to: &[$($($to),*)?],
            relationship: $crate::__option!($($crate::adapter::Relationship {
                lookup: $lookup,
                name: $relationship,
                field: $rel_field,
            })?),
            ..$crate::adapter::FieldDescriptor::new(
                $sf_name,
                $column,
                $label,
                $crate::adapter::SfType::$sf_type,
                $crate::adapter::PgType::$pg_type $(($pg_len))?,
            )
        };
    )*};
}

/// `Some(x)` for one expression, `None` for none.
#[doc(hidden)]
#[macro_export]
macro_rules! __option {
    () => {
        ::std::option::Option::None
    };
    ($value:expr) => {
        ::std::option::Option::Some($value)
    };
}

/// The first of its expressions.
#[doc(hidden)]
#[macro_export]
macro_rules! __first {
    ($first:expr $(, $rest:expr)*) => {
        $first
    };
}
