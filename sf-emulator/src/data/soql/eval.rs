//! Evaluating bound predicates and `ORDER BY` keys against a record, with SOQL's null rules
//! (`!=` and `NOT IN` match nulls; ordering comparisons never do).

use std::cmp::Ordering;

use super::ast::{CmpOp, LikePart};
use super::bind::{FieldRef, OrderKey, Pred};
use crate::data::value::Value;

/// Read access to one record's fields, including fields reached through parent hops.
pub trait Fields {
    fn get<'s>(&'s self, f: &'s FieldRef) -> &'s Value;
}

/// Whether the record satisfies `p`.
pub fn matches(p: &Pred, r: &impl Fields) -> bool {
    match p {
        Pred::And(v) => v.iter().all(|p| matches(p, r)),
        Pred::Or(v) => v.iter().any(|p| matches(p, r)),
        Pred::Not(p) => !matches(p, r),
        Pred::Null { f, is_null } => r.get(f).is_null() == *is_null,
        Pred::Cmp { f, op, v } => {
            let x = r.get(f);
            if x.is_null() {
                return *op == CmpOp::Ne;
            }
            let compared = match op {
                CmpOp::Eq | CmpOp::Ne => x.compare(v),
                _ => id_compare(f, x, v).or_else(|| x.compare(v)),
            };
            let Some(o) = compared else {
                return *op == CmpOp::Ne;
            };
            match op {
                CmpOp::Eq => o == Ordering::Equal,
                CmpOp::Ne => o != Ordering::Equal,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
            }
        }
        Pred::Range { f, op, lo, hi } => {
            let x = r.get(f);
            if x.is_null() {
                return *op == CmpOp::Ne;
            }
            let ge_lo = x.compare(lo).is_some_and(|o| o != Ordering::Less);
            let lt_hi = x.compare(hi).is_some_and(|o| o == Ordering::Less);
            match op {
                CmpOp::Eq => ge_lo && lt_hi,
                CmpOp::Ne => !(ge_lo && lt_hi),
                CmpOp::Lt => !ge_lo,
                CmpOp::Le => lt_hi,
                CmpOp::Gt => !lt_hi,
                CmpOp::Ge => ge_lo,
            }
        }
        Pred::Like { f, parts } => match r.get(f).as_str() {
            Some(s) => like(&s.to_lowercase(), parts),
            None => false,
        },
        Pred::In { f, vals, negated } => {
            let x = r.get(f);
            let found = vals.iter().any(|v| {
                if v.is_null() || x.is_null() {
                    v.is_null() && x.is_null()
                } else {
                    x.compare(v) == Some(Ordering::Equal)
                }
            });
            found != *negated
        }
        Pred::Includes { f, sets, negated } => {
            let selected: Vec<String> = match r.get(f).as_str() {
                Some(s) => s.split(';').map(|x| x.trim().to_lowercase()).collect(),
                None => Vec::new(),
            };
            let any = sets.iter().any(|set| {
                set.iter()
                    .all(|want| selected.iter().any(|have| have == want))
            });
            any != *negated
        }
    }
}

/// Case-folded `LIKE` match of `s` (already lower-cased) against `parts`.
pub fn like(s: &str, parts: &[LikePart]) -> bool {
    let chars: Vec<char> = s.chars().collect();
    like_from(&chars, parts)
}

fn like_from(s: &[char], parts: &[LikePart]) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((LikePart::AnyChar, rest)) => !s.is_empty() && like_from(&s[1..], rest),
        Some((LikePart::Text(t), rest)) => {
            let n = t.chars().count();
            s.len() >= n && s[..n].iter().copied().eq(t.chars()) && like_from(&s[n..], rest)
        }
        Some((LikePart::AnyRun, rest)) => {
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).any(|i| like_from(&s[i..], rest))
        }
    }
}

/// Orders two records by the `ORDER BY` keys.
pub fn order_cmp(keys: &[OrderKey], a: &impl Fields, b: &impl Fields) -> Ordering {
    for k in keys {
        let o = cmp_key(k, a.get(&k.f), b.get(&k.f));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// How Ids (of an Id or a reference field) order, in `<`, `>` and `ORDER BY`: as the base-62
/// numbers they are (digits, then upper case, then lower case: their bytes), by their
/// case-sensitive 15-character form, so that a 15- and an 18-character Id of one record are
/// equal. PK chunking's boundaries (`Id >= 001300000000000 AND Id < 00130000000132G`) count in
/// that order, and the (SystemModstamp, Id) index walks it; comparing Ids without case, as other
/// strings, would make a client paging by `ORDER BY SystemModstamp, Id` skip records. Equality
/// stays without case (an 18-character Id names its record whatever its case).
fn id_compare(f: &FieldRef, x: &Value, y: &Value) -> Option<Ordering> {
    use crate::data::schema::FieldType;
    if !matches!(f.ftype, FieldType::Id | FieldType::Reference) {
        return None;
    }
    match (x, y) {
        (Value::String(a), Value::String(b)) => Some(id15(a).cmp(id15(b))),
        _ => None,
    }
}

/// An Id's case-sensitive 15-character form (the whole value if shorter).
fn id15(id: &str) -> &[u8] {
    id.get(..15).unwrap_or(id).as_bytes()
}

/// Compares two values of one `ORDER BY` key, with its direction and null placement.
pub fn cmp_key(k: &OrderKey, x: &Value, y: &Value) -> Ordering {
    match (x.is_null(), y.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if k.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if k.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (false, false) => {
            let o = id_compare(&k.f, x, y)
                .or_else(|| x.compare(y))
                .unwrap_or(Ordering::Equal);
            if k.descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<LikePart> {
        let mut out = Vec::new();
        for c in s.chars() {
            out.push(match c {
                '%' => LikePart::AnyRun,
                '_' => LikePart::AnyChar,
                c => LikePart::Text(c.to_string()),
            });
        }
        out
    }

    #[test]
    fn like_patterns() {
        assert!(like("acme corp", &p("acme%")));
        assert!(like("acme corp", &p("%corp")));
        assert!(like("acme corp", &p("%me c%")));
        assert!(like("acme", &p("ac_e")));
        assert!(!like("acme", &p("ac_")));
        assert!(like("", &p("%")));
        assert!(!like("acme", &p("x%")));
    }
}
