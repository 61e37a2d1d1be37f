//! Binding a parsed [`Query`] to the org schema: resolves objects, fields and parent
//! relationship paths, and type-checks literals against field types (`INVALID_FIELD`,
//! `INVALID_TYPE`, `MALFORMED_QUERY` as Salesforce words them).

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};

use super::ast::{
    self, CmpOp, Cond, DateLiteral, FieldPath, LikePart, Literal, LiteralKind, SelectItem,
};
use super::dates;
use super::error::{SoqlError, SoqlErrorCode};
use super::user::VirtualUser;
use crate::data::ids::SfId;
use crate::data::schema::{FieldType, ObjectSchema, OrgSchema};
use crate::data::value::{date_ms, Value};

/// One step from a record to its parent through a reference field.
#[derive(Debug, Clone)]
pub struct Hop {
    /// Position of the reference field (`AccountId`) in the child object.
    pub ref_field: usize,
    /// The relationship name as the schema spells it (`Account`).
    pub rel_name: String,
    /// The parent object and its position in the org.
    pub target: Arc<ObjectSchema>,
    pub target_index: usize,
    /// Set when the parent is the org's (virtual, table-less) user.
    pub user: Option<Arc<VirtualUser>>,
}

/// A bound field: zero or more parent hops, then a field of the last object.
#[derive(Debug, Clone)]
pub struct FieldRef {
    pub hops: Vec<Hop>,
    pub field: usize,
    pub ftype: FieldType,
    /// The field name as the schema spells it.
    pub name: String,
    pub filterable: bool,
    pub sortable: bool,
}

impl FieldRef {
    /// `Account.Name` with schema spelling (the Bulk CSV column header).
    pub fn dotted(&self) -> String {
        let mut s = String::new();
        for h in &self.hops {
            s.push_str(&h.rel_name);
            s.push('.');
        }
        s.push_str(&self.name);
        s
    }
}

/// A bound `WHERE` predicate.
#[derive(Debug, Clone)]
pub enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    /// `f op v` with a non-null value.
    Cmp {
        f: FieldRef,
        op: CmpOp,
        v: Value,
    },
    /// `f = null` (`is_null`) or `f != null`.
    Null {
        f: FieldRef,
        is_null: bool,
    },
    /// `f op LITERAL` for a relative date literal covering `[lo, hi)`.
    Range {
        f: FieldRef,
        op: CmpOp,
        lo: Value,
        hi: Value,
    },
    /// `f LIKE pattern` (the pattern's text is lower-cased for case-insensitive matching).
    Like {
        f: FieldRef,
        parts: Vec<LikePart>,
    },
    In {
        f: FieldRef,
        vals: Vec<Value>,
        negated: bool,
    },
    /// `INCLUDES` / `EXCLUDES`: each entry is a set of values that must all be selected.
    Includes {
        f: FieldRef,
        sets: Vec<Vec<String>>,
        negated: bool,
    },
}

/// What the query returns.
#[derive(Debug, Clone)]
pub enum Output {
    /// Records with these columns, in SELECT order.
    Fields(Vec<FieldRef>),
    /// `COUNT()`: the number of rows only.
    CountAll,
    /// `COUNT(field)` items: one AggregateResult row; `None` counts every row.
    Aggregates(Vec<(Option<FieldRef>, String)>),
}

/// One bound `ORDER BY` key.
#[derive(Debug, Clone)]
pub struct OrderKey {
    pub f: FieldRef,
    pub descending: bool,
    pub nulls_first: bool,
}

/// A query bound to the schema, ready to plan and run.
#[derive(Debug, Clone)]
pub struct Bound {
    pub object: Arc<ObjectSchema>,
    /// Position of the object in the org (and its table in the store).
    pub object_index: usize,
    pub output: Output,
    pub filter: Option<Pred>,
    pub order: Vec<OrderKey>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// Binds `q` (the text of which is `text`, for error positions) against `org`.
/// `today` resolves relative date literals; `user` answers `Owner.…`/`CreatedBy.…` paths.
pub fn bind(
    org: &OrgSchema,
    text: &str,
    q: &ast::Query,
    today: NaiveDate,
    user: Option<&Arc<VirtualUser>>,
) -> Result<Bound, SoqlError> {
    let object_index = org.object_index(&q.from.text).ok_or_else(|| {
        SoqlError::at(
            SoqlErrorCode::InvalidType,
            text,
            q.from.pos,
            format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                q.from.text
            ),
        )
    })?;
    let object = org.objects[object_index].clone();
    let b = Binder {
        org,
        user,
        text,
        object: object.clone(),
        today,
    };
    let output = b.output(&q.select)?;
    let filter = q.filter.as_ref().map(|c| b.cond(c)).transpose()?;
    let mut order = Vec::new();
    for o in &q.order_by {
        let f = b.field(&o.field)?;
        if !f.sortable {
            return Err(b.err(
                SoqlErrorCode::InvalidField,
                o.field.pos,
                format!("field '{}' can not be sorted in a query call", f.name),
            ));
        }
        order.push(OrderKey {
            f,
            descending: o.descending,
            nulls_first: o.nulls_first,
        });
    }
    if !matches!(output, Output::Fields(_)) && !order.is_empty() {
        return Err(b.err(
            SoqlErrorCode::MalformedQuery,
            q.order_by[0].field.pos,
            format!(
                "Ordered field must be grouped or aggregated: {}",
                q.order_by[0].field.dotted()
            ),
        ));
    }
    Ok(Bound {
        object,
        object_index,
        output,
        filter,
        order,
        limit: q.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        offset: q
            .offset
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

struct Binder<'a> {
    org: &'a OrgSchema,
    user: Option<&'a Arc<VirtualUser>>,
    text: &'a str,
    object: Arc<ObjectSchema>,
    today: NaiveDate,
}

impl Binder<'_> {
    fn err(&self, code: SoqlErrorCode, pos: usize, detail: String) -> SoqlError {
        SoqlError::at(code, self.text, pos, detail)
    }

    fn output(&self, items: &[SelectItem]) -> Result<Output, SoqlError> {
        let has_count = items.iter().any(|i| !matches!(i, SelectItem::Field(_)));
        if !has_count {
            let mut cols = Vec::new();
            for i in items {
                if let SelectItem::Field(p) = i {
                    cols.push(self.field(p)?);
                }
            }
            return Ok(Output::Fields(cols));
        }
        if let Some(SelectItem::Field(p)) = items.iter().find(|i| matches!(i, SelectItem::Field(_)))
        {
            let f = self.field(p)?;
            return Err(self.err(
                SoqlErrorCode::MalformedQuery,
                p.pos,
                format!("Field must be grouped or aggregated: {}", f.name),
            ));
        }
        if let [SelectItem::CountAll { .. }] = items {
            return Ok(Output::CountAll);
        }
        let mut aggs = Vec::new();
        let mut n = 0;
        for i in items {
            match i {
                SelectItem::CountAll { pos } => {
                    return Err(self.err(
                        SoqlErrorCode::MalformedQuery,
                        *pos,
                        "COUNT() and other aggregate functions can not be used together".into(),
                    ))
                }
                SelectItem::CountField { field, alias } => {
                    let f = self.field(field)?;
                    let name = alias.clone().unwrap_or_else(|| {
                        let s = format!("expr{n}");
                        n += 1;
                        s
                    });
                    aggs.push((Some(f), name));
                }
                SelectItem::Field(_) => {}
            }
        }
        Ok(Output::Aggregates(aggs))
    }

    /// Resolves `Field`, `Rel.Field`, `Rel.Rel.Field` (and `Object.Field` on the queried object).
    fn field(&self, p: &FieldPath) -> Result<FieldRef, SoqlError> {
        let mut obj = self.object.clone();
        let mut parts: &[String] = &p.parts;
        if parts.len() > 1
            && parts[0].eq_ignore_ascii_case(&obj.name)
            && obj.relationship_field(&parts[0]).is_none()
        {
            parts = &parts[1..];
        }
        let mut hops = Vec::new();
        for rel in &parts[..parts.len() - 1] {
            let bad_rel = || {
                self.err(
                    SoqlErrorCode::InvalidField,
                    p.pos,
                    format!(
                        "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                )
            };
            let ref_field = obj.relationship_field(rel).ok_or_else(bad_rel)?;
            let fs = &obj.fields[ref_field];
            let rel_name = fs.relationship_name.clone().unwrap_or_else(|| rel.clone());
            let modeled = fs
                .reference_to
                .iter()
                .find_map(|t| self.org.object_index(t));
            let (target, target_index, user) = match (modeled, self.user) {
                (Some(i), _) => (self.org.objects[i].clone(), i, None),
                (None, Some(u)) if fs.reference_to.iter().any(|t| t == "User") => {
                    (u.schema.clone(), usize::MAX, Some(u.clone()))
                }
                _ => return Err(bad_rel()),
            };
            hops.push(Hop {
                ref_field,
                rel_name,
                target: target.clone(),
                target_index,
                user,
            });
            obj = target;
        }
        let name = &parts[parts.len() - 1];
        let field = obj.field_index(name).ok_or_else(|| {
            self.err(
                SoqlErrorCode::InvalidField,
                p.pos,
                format!(
                    "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                    obj.name
                ),
            )
        })?;
        let fs = &obj.fields[field];
        Ok(FieldRef {
            hops,
            field,
            ftype: fs.ftype.clone(),
            name: fs.name.clone(),
            filterable: fs.filterable && !fs.ftype.is_compound(),
            sortable: fs.sortable && !fs.ftype.is_compound(),
        })
    }

    fn cond(&self, c: &Cond) -> Result<Pred, SoqlError> {
        Ok(match c {
            Cond::And(v) => Pred::And(v.iter().map(|c| self.cond(c)).collect::<Result<_, _>>()?),
            Cond::Or(v) => Pred::Or(v.iter().map(|c| self.cond(c)).collect::<Result<_, _>>()?),
            Cond::Not(c) => Pred::Not(Box::new(self.cond(c)?)),
            Cond::Compare { field, op, value } => {
                let f = self.filterable(field)?;
                match &value.kind {
                    LiteralKind::Null => match op {
                        CmpOp::Eq => Pred::Null { f, is_null: true },
                        CmpOp::Ne => Pred::Null { f, is_null: false },
                        _ => {
                            return Err(self.err(
                                SoqlErrorCode::MalformedQuery,
                                value.pos,
                                "unexpected token: 'null'".into(),
                            ))
                        }
                    },
                    LiteralKind::DateLiteral(d) => {
                        let (lo, hi) = self.date_range(&f, field, *d)?;
                        Pred::Range { f, op: *op, lo, hi }
                    }
                    _ => {
                        if *op != CmpOp::Eq
                            && *op != CmpOp::Ne
                            && matches!(f.ftype, FieldType::MultiPicklist)
                        {
                            return Err(self.err(
                                SoqlErrorCode::InvalidField,
                                field.pos,
                                format!("invalid operator on multipicklist field: {}", f.name),
                            ));
                        }
                        let v = self.value(&f, field, value)?;
                        Pred::Cmp { f, op: *op, v }
                    }
                }
            }
            Cond::Like { field, pattern, .. } => {
                let f = self.filterable(field)?;
                if !(f.ftype.is_text() || f.ftype.is_id())
                    || matches!(f.ftype, FieldType::MultiPicklist)
                {
                    return Err(self.err(
                        SoqlErrorCode::InvalidField,
                        field.pos,
                        format!("Invalid operator on {} field: {}", f.ftype.as_str(), f.name),
                    ));
                }
                let parts = pattern
                    .parts
                    .iter()
                    .map(|p| match p {
                        LikePart::Text(t) => LikePart::Text(t.to_lowercase()),
                        other => other.clone(),
                    })
                    .collect();
                Pred::Like { f, parts }
            }
            Cond::In {
                field,
                negated,
                values,
            } => {
                let f = self.filterable(field)?;
                let mut vals = Vec::with_capacity(values.len());
                for v in values {
                    vals.push(match &v.kind {
                        LiteralKind::Null => Value::Null,
                        LiteralKind::DateLiteral(_) => {
                            return Err(self.err(
                                SoqlErrorCode::MalformedQuery,
                                v.pos,
                                "unexpected token: date literal in IN list".into(),
                            ))
                        }
                        _ => self.value(&f, field, v)?,
                    });
                }
                Pred::In {
                    f,
                    vals,
                    negated: *negated,
                }
            }
            Cond::Includes {
                field,
                negated,
                values,
            } => {
                let f = self.filterable(field)?;
                if !matches!(f.ftype, FieldType::MultiPicklist) {
                    return Err(self.err(
                        SoqlErrorCode::InvalidField,
                        field.pos,
                        format!(
                            "{} can only be used with multi-select picklist fields: {}",
                            if *negated { "EXCLUDES" } else { "INCLUDES" },
                            f.name
                        ),
                    ));
                }
                let mut sets = Vec::new();
                for v in values {
                    let LiteralKind::String(s) = &v.kind else {
                        return Err(self.type_error(&f, field));
                    };
                    sets.push(s.split(';').map(|x| x.trim().to_lowercase()).collect());
                }
                Pred::Includes {
                    f,
                    sets,
                    negated: *negated,
                }
            }
        })
    }

    fn filterable(&self, p: &FieldPath) -> Result<FieldRef, SoqlError> {
        let f = self.field(p)?;
        if !f.filterable {
            return Err(self.err(
                SoqlErrorCode::InvalidField,
                p.pos,
                format!("field '{}' can not be filtered in query call", f.name),
            ));
        }
        Ok(f)
    }

    fn type_name(t: &FieldType) -> &'static str {
        match t {
            FieldType::Id | FieldType::Reference => "id",
            FieldType::Boolean => "boolean",
            FieldType::Int => "integer",
            FieldType::Long => "long",
            FieldType::Double | FieldType::Currency | FieldType::Percent => "double",
            FieldType::Date => "date",
            FieldType::DateTime => "dateTime",
            FieldType::Time => "time",
            _ => "string",
        }
    }

    fn type_error(&self, f: &FieldRef, p: &FieldPath) -> SoqlError {
        let t = Self::type_name(&f.ftype);
        let quoted = matches!(t, "string" | "id");
        self.err(
            SoqlErrorCode::InvalidField,
            p.pos,
            format!(
                "value of filter criterion for field '{}' must be of type {t} and should {}be enclosed in quotes",
                f.name,
                if quoted { "" } else { "not " }
            ),
        )
    }

    /// Converts a literal to a value of `f`'s type.
    fn value(&self, f: &FieldRef, p: &FieldPath, lit: &Literal) -> Result<Value, SoqlError> {
        let ty = &f.ftype;
        let v = match (&lit.kind, ty) {
            (LiteralKind::String(s), FieldType::Id | FieldType::Reference) => {
                match SfId::parse(s) {
                    Ok(id) => Value::str(id.as_str()),
                    Err(_) => {
                        return Err(self.err(
                            SoqlErrorCode::InvalidQueryFilterOperator,
                            lit.pos,
                            format!("invalid ID field: {s}"),
                        ))
                    }
                }
            }
            (LiteralKind::String(s), t) if t.is_text() => Value::str(s),
            (LiteralKind::Bool(b), FieldType::Boolean) => Value::Bool(*b),
            (LiteralKind::Number { text, value }, FieldType::Int | FieldType::Long) => {
                match text.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Double(*value),
                }
            }
            (
                LiteralKind::Number { value, .. },
                FieldType::Double | FieldType::Currency | FieldType::Percent,
            ) => Value::Double(*value),
            (LiteralKind::Date(d), FieldType::Date) => Value::Date(*d),
            (LiteralKind::DateTime(d), FieldType::DateTime) => {
                Value::DateTime(d.timestamp_millis())
            }
            _ => return Err(self.type_error(f, p)),
        };
        Ok(v)
    }

    fn date_range(
        &self,
        f: &FieldRef,
        p: &FieldPath,
        d: DateLiteral,
    ) -> Result<(Value, Value), SoqlError> {
        let (lo, hi) = dates::resolve(d, self.today);
        match f.ftype {
            FieldType::Date => Ok((Value::Date(lo), Value::Date(hi))),
            FieldType::DateTime => Ok((Value::DateTime(date_ms(lo)), Value::DateTime(date_ms(hi)))),
            _ => Err(self.type_error(f, p)),
        }
    }
}

/// Today's date in the org's time zone (UTC) for an epoch-ms clock reading.
pub fn today_of_ms(now_ms: i64) -> NaiveDate {
    Utc.timestamp_millis_opt(now_ms)
        .single()
        .map_or(NaiveDate::MIN, |d| d.date_naive())
}
