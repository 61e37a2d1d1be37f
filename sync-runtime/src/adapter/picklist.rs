//! Picklists: the trait generated picklist enums implement, and the typed set multipicklists use.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write as _;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;

/// A generated picklist enum: one variant per known value plus `Other(String)`, so a value added
/// in Salesforce later still loads.
pub trait Picklist: Clone + Ord + fmt::Debug {
    /// The API values known when the code was generated, in Salesforce order.
    const VALUES: &'static [&'static str];

    /// The API value, e.g. `"Closed Won"`.
    fn as_str(&self) -> &str;

    /// The variant for an API value; unknown values become `Other`.
    fn from_value(value: &str) -> Self;

    /// Whether the value was known when the code was generated.
    fn is_known(&self) -> bool {
        Self::VALUES.contains(&self.as_str())
    }
}

/// The values of a multipicklist field, stored as `A;B;C` in a `varchar(4099)` column.
///
/// Ordered and de-duplicated; the Salesforce order of the string is not significant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct MultiPicklist<T: Picklist>(pub BTreeSet<T>);

impl<T: Picklist> MultiPicklist<T> {
    pub fn new() -> Self {
        MultiPicklist(BTreeSet::new())
    }

    /// Parses `A;B;C`; empty items are skipped.
    pub fn parse(s: &str) -> Self {
        MultiPicklist(
            s.split(';')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(T::from_value)
                .collect(),
        )
    }

    pub fn contains(&self, value: &T) -> bool {
        self.0.contains(value)
    }

    pub fn insert(&mut self, value: T) -> bool {
        self.0.insert(value)
    }

    pub fn remove(&mut self, value: &T) -> bool {
        self.0.remove(value)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Picklist> Default for MultiPicklist<T> {
    fn default() -> Self {
        MultiPicklist::new()
    }
}

impl<T: Picklist> FromIterator<T> for MultiPicklist<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        MultiPicklist(iter.into_iter().collect())
    }
}

impl<T: Picklist, const N: usize> From<[T; N]> for MultiPicklist<T> {
    fn from(values: [T; N]) -> Self {
        values.into_iter().collect()
    }
}

impl<T: Picklist> IntoIterator for MultiPicklist<T> {
    type Item = T;
    type IntoIter = std::collections::btree_set::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// `A;B;C`, the Salesforce and Heroku Connect spelling.
impl<T: Picklist> fmt::Display for MultiPicklist<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(value.as_str())?;
        }
        Ok(())
    }
}

impl<T: Picklist> std::str::FromStr for MultiPicklist<T> {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MultiPicklist::parse(s))
    }
}

impl<T: Picklist> serde::Serialize for MultiPicklist<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Picklist::as_str))
    }
}

impl<'de, T: Picklist> serde::Deserialize<'de> for MultiPicklist<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = Vec::<String>::deserialize(deserializer)?;
        Ok(values.iter().map(|v| T::from_value(v)).collect())
    }
}

impl<T: Picklist> ToSql<Text, Pg> for MultiPicklist<T> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.to_string().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl<T: Picklist> FromSql<Text, Pg> for MultiPicklist<T> {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(MultiPicklist::parse(std::str::from_utf8(bytes.as_bytes())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    enum Color {
        Red,
        Blue,
        Other(String),
    }

    impl Picklist for Color {
        const VALUES: &'static [&'static str] = &["Red", "Blue"];

        fn as_str(&self) -> &str {
            match self {
                Color::Red => "Red",
                Color::Blue => "Blue",
                Color::Other(v) => v,
            }
        }

        fn from_value(value: &str) -> Self {
            match value {
                "Red" => Color::Red,
                "Blue" => Color::Blue,
                other => Color::Other(other.to_owned()),
            }
        }
    }

    #[test]
    fn a_multipicklist_round_trips_through_its_semicolon_spelling() {
        let set: MultiPicklist<Color> = "Blue;Red;;Teal".parse().unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.contains(&Color::Other("Teal".into())));
        assert_eq!(set.to_string(), "Red;Blue;Teal");
        assert!(!Color::Other("Teal".into()).is_known());
    }
}
