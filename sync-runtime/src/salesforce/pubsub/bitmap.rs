//! The Pub/Sub API's field bitmaps, decoded (pure). A change event's `changedFields`,
//! `nulledFields` and `diffFields` are lists of hex bitmaps over the Avro schema's field
//! positions (Pub/Sub API Developer Guide, "Event Deserialization Considerations"): the first
//! entry (`"0x650004E0"`) sets bit i for top-level field i, counted from the least-significant
//! end (field 0 is the `ChangeEventHeader`); each further entry `"<position>-0x<bitmap>"` names
//! subfields of the compound field at that position. Decoded, they are the names CometD sends
//! (`Industry`, `BillingAddress.City`). A bit naming a position the schema lacks is an error.

use super::datum::PayloadError;

/// The field layout of an event schema: each top-level field's name and, for a compound field
/// (a nested record), its subfields' names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub fields: Vec<(String, Option<Vec<String>>)>,
}

/// Bit positions set in a hex bitmap (`0x…` or bare digits; an odd digit count is read as if a
/// leading zero were there).
pub fn bits(hex: &str) -> Result<Vec<usize>, PayloadError> {
    let digits = hex
        .trim()
        .strip_prefix("0x")
        .or_else(|| hex.trim().strip_prefix("0X"))
        .unwrap_or(hex.trim());
    if digits.is_empty() {
        return Err(PayloadError(format!("empty bitmap {hex:?}")));
    }
    let mut out = Vec::new();
    for (i, c) in digits.chars().rev().enumerate() {
        let nibble = c
            .to_digit(16)
            .ok_or_else(|| PayloadError(format!("{hex:?} is not a hex bitmap")))?;
        for b in 0..4 {
            if nibble & (1 << b) != 0 {
                out.push(i * 4 + b);
            }
        }
    }
    Ok(out)
}

impl Shape {
    /// The field names a bitmap list sets, in list order then position order.
    pub fn names(&self, entries: &[String]) -> Result<Vec<String>, PayloadError> {
        let mut names = Vec::new();
        for entry in entries {
            match entry.split_once('-') {
                Some((position, hex)) => {
                    let p: usize = position.trim().parse().map_err(|_| {
                        PayloadError(format!("{entry:?}: {position:?} is not a field position"))
                    })?;
                    let (parent, subfields) = self.fields.get(p).ok_or_else(|| {
                        PayloadError(format!("{entry:?}: the schema has no field {p}"))
                    })?;
                    let subfields = subfields.as_ref().ok_or_else(|| {
                        PayloadError(format!("{entry:?}: field {p} ({parent}) is not compound"))
                    })?;
                    for b in bits(hex)? {
                        let sub = subfields.get(b).ok_or_else(|| {
                            PayloadError(format!("{entry:?}: {parent} has no subfield {b}"))
                        })?;
                        names.push(format!("{parent}.{sub}"));
                    }
                }
                None => {
                    for b in bits(entry)? {
                        let (name, _) = self.fields.get(b).ok_or_else(|| {
                            PayloadError(format!("{entry:?}: the schema has no field {b}"))
                        })?;
                        names.push(name.clone());
                    }
                }
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(n: usize) -> Shape {
        let mut fields: Vec<(String, Option<Vec<String>>)> =
            (0..n).map(|i| (format!("F{i}"), None)).collect();
        fields[0].0 = "ChangeEventHeader".into();
        fields[4] = (
            "BillingAddress".into(),
            Some(
                ["Street", "City", "State", "PostalCode", "Country"]
                    .map(String::from)
                    .into(),
            ),
        );
        fields[7] = (
            "Name".into(),
            Some(
                ["Salutation", "FirstName", "LastName"]
                    .map(String::from)
                    .into(),
            ),
        );
        Shape { fields }
    }

    #[test]
    fn the_documented_example_decodes_to_its_fields() {
        // Pub/Sub API Developer Guide: ['0x650004E0','4-0x10','7-0x06'].
        assert_eq!(
            bits("0x650004E0").unwrap(),
            vec![5, 6, 7, 10, 24, 26, 29, 30]
        );
        let names = shape(31)
            .names(&["0x650004E0".into(), "4-0x10".into(), "7-0x06".into()])
            .unwrap();
        assert_eq!(
            names,
            [
                "F5",
                "F6",
                "Name",
                "F10",
                "F24",
                "F26",
                "F29",
                "F30",
                "BillingAddress.Country",
                "Name.FirstName",
                "Name.LastName"
            ]
        );
    }

    #[test]
    fn bare_and_odd_length_hex_is_accepted() {
        assert_eq!(bits("A").unwrap(), vec![1, 3]);
        assert_eq!(bits("0x0100").unwrap(), vec![8]);
    }

    #[test]
    fn a_position_the_schema_lacks_is_an_error_not_a_guess() {
        let s = shape(8);
        assert!(s
            .names(&["0x0100".into()])
            .unwrap_err()
            .0
            .contains("no field 8"));
        assert!(s
            .names(&["3-0x01".into()])
            .unwrap_err()
            .0
            .contains("not compound"));
        assert!(s
            .names(&["7-0x08".into()])
            .unwrap_err()
            .0
            .contains("no subfield 3"));
        assert!(s.names(&["0xZZ".into()]).is_err());
        assert!(s.names(&[]).unwrap().is_empty());
    }
}
