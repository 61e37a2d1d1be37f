//! What adopting a Heroku Connect database changes (pure): the database's layout against the
//! layout forcesync's migrations would create ([`Layout`], read by the caller), turned into a
//! [`Plan`] per table: created, columns added or widened, columns kept, incompatible types,
//! indexes added, capture triggers and functions replaced; and the plan's text for the user.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// One table's columns (in order, with `format_type` types), their defaults, indexes and
/// triggers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableLayout {
    pub columns: Vec<(String, String)>,
    /// Column defaults (`pg_get_expr`) by column.
    pub defaults: BTreeMap<String, String>,
    pub indexes: Vec<IndexLayout>,
    pub triggers: Vec<TriggerLayout>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexLayout {
    pub name: String,
    /// `pg_get_indexdef`.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TriggerLayout {
    pub name: String,
    /// `pg_get_triggerdef`.
    pub definition: String,
    /// The function it calls (unqualified).
    pub function: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionLayout {
    pub name: String,
    /// `pg_get_function_identity_arguments`.
    pub arguments: String,
    /// `pg_get_functiondef`.
    pub definition: String,
}

/// A schema as the catalog describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    pub schema: String,
    pub tables: BTreeMap<String, TableLayout>,
    pub functions: Vec<FunctionLayout>,
}

impl Layout {
    /// A definition with this layout's schema written as `{schema}`, so that definitions from
    /// two schemas compare.
    pub fn neutral(&self, definition: &str) -> String {
        definition.replace(&format!("{}.", self.schema), "{schema}.")
    }

    fn function(&self, name: &str, arguments: &str) -> Option<&FunctionLayout> {
        self.functions
            .iter()
            .find(|f| f.name == name && f.arguments == arguments)
    }
}

/// How an existing column's type relates to the one forcesync's migrations create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// Holds every value forcesync writes (the same type, or a wider one).
    Same,
    /// Narrower text: widened in place (`varchar(n)` to a longer one, or to `text`: no rewrite).
    Widen,
    /// Different kinds of value.
    Incompatible,
}

fn varchar_length(ty: &str) -> Option<Option<u32>> {
    let rest = ty.strip_prefix("character varying")?;
    if rest.is_empty() {
        return Some(None);
    }
    rest.strip_prefix('(')?
        .strip_suffix(')')?
        .parse()
        .ok()
        .map(Some)
}

/// Whether a column of type `have` can stand for one of type `want` (pure; `format_type`
/// spellings).
pub fn fit(have: &str, want: &str) -> Fit {
    if have == want {
        return Fit::Same;
    }
    let text_like = |t: &str| t == "text" || varchar_length(t).is_some();
    match (varchar_length(have), varchar_length(want)) {
        (Some(None), _) => return Fit::Same,
        (Some(Some(n)), Some(Some(m))) => return if n >= m { Fit::Same } else { Fit::Widen },
        (Some(_), None) if want == "text" => return Fit::Widen,
        (Some(_), Some(None)) => return Fit::Widen,
        _ => {}
    }
    if have == "text" && text_like(want) {
        return Fit::Same;
    }
    let wider: &[(&str, &str)] = &[
        ("bigint", "integer"),
        ("numeric", "double precision"),
        ("double precision", "real"),
    ];
    if wider.iter().any(|(h, w)| *h == have && *w == want) {
        Fit::Same
    } else {
        Fit::Incompatible
    }
}

/// A table forcesync needs, and what adoption does to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TablePlan {
    /// The mapping's object (`None` for the trigger log tables).
    pub object: Option<String>,
    pub table: String,
    pub found: bool,
    /// Columns added: name and type.
    pub add_columns: Vec<(String, String)>,
    /// Columns widened: name, type now, type after.
    pub widen_columns: Vec<(String, String, String)>,
    /// Defaults set on columns that have none (`_hc_lastop`'s `'PENDING'`, which spares a plain
    /// application insert its status-trigger call): column and expression.
    pub set_defaults: Vec<(String, String)>,
    /// Columns the database has and the mapping does not: kept as they are.
    pub kept_columns: Vec<String>,
    /// Columns whose type cannot hold forcesync's values: name, type now, type needed.
    pub incompatible: Vec<(String, String, String)>,
    /// Indexes created (names).
    pub add_indexes: Vec<String>,
    /// Triggers dropped (Heroku Connect's, or out-of-date ones), then forcesync's created.
    pub replace_triggers: Vec<String>,
    /// forcesync's triggers created.
    pub create_triggers: Vec<String>,
    /// Heroku Connect's per-table trigger functions dropped.
    pub drop_functions: Vec<String>,
    /// Trigger-log entries of the table by state.
    pub log_by_state: BTreeMap<String, i64>,
    /// Archived `FAILED` entries (shown by `forcesync errors`, sent again by `forcesync retry`).
    pub archived_failed: i64,
    /// Rows, and the newest `systemmodstamp` (RFC 3339) when any.
    pub rows: i64,
    pub newest_systemmodstamp: Option<String>,
}

impl TablePlan {
    fn changes(&self) -> bool {
        !self.found
            || !self.add_columns.is_empty()
            || !self.widen_columns.is_empty()
            || !self.set_defaults.is_empty()
            || !self.add_indexes.is_empty()
            || !self.replace_triggers.is_empty()
            || !self.create_triggers.is_empty()
            || !self.drop_functions.is_empty()
    }
}

/// What adoption does.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub schema: String,
    /// Mapped tables first (registry order), then `_trigger_log` and `_trigger_log_archive`.
    pub tables: Vec<TablePlan>,
    /// Shared functions created or replaced (`tlog_notify_trigger`, `hc_capture_*_from_row`, …).
    pub replace_functions: Vec<String>,
    /// forcesync's engine tables to create (system migrations not applied yet).
    pub engine_migrations: Vec<String>,
    /// App migrations recorded as applied (their tables are the adopted ones).
    pub record_migrations: Vec<String>,
    /// Mappings recorded as loaded, with the polling cursor they start from.
    pub mark_loaded: Vec<(String, String)>,
    /// Left exactly as they are, with why.
    pub left_alone: Vec<String>,
}

impl Plan {
    /// Whether adoption would change anything.
    pub fn changes(&self) -> bool {
        self.tables.iter().any(TablePlan::changes)
            || !self.replace_functions.is_empty()
            || !self.engine_migrations.is_empty()
            || !self.record_migrations.is_empty()
            || !self.mark_loaded.is_empty()
    }

    /// Incompatible columns: (table, column, type now, type needed).
    pub fn incompatible(&self) -> Vec<(String, String, String, String)> {
        self.tables
            .iter()
            .flat_map(|t| {
                t.incompatible
                    .iter()
                    .map(|(c, h, w)| (t.table.clone(), c.clone(), h.clone(), w.clone()))
            })
            .collect()
    }
}

/// A table forcesync needs: its name and, for a mapped one, its object.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub table: String,
    pub object: Option<String>,
}

/// An index definition without its name and schema, for comparing indexes across schemas.
fn index_shape(layout: &Layout, definition: &str) -> String {
    let neutral = layout.neutral(definition);
    match (neutral.find(" INDEX "), neutral.find(" ON ")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &neutral[..a + 7], &neutral[b..]),
        _ => neutral,
    }
}

/// Heroku Connect's per-table function names: `hc_<t>_logger`, `hc_<t>_status`.
fn hc_functions(table: &str) -> [String; 2] {
    [format!("hc_{table}_logger"), format!("hc_{table}_status")]
}

/// The table part of the plan (pure): `have` is the database's schema, `want` the layout the
/// migrations create (in a scratch schema).
pub fn plan_tables(have: &Layout, want: &Layout, wanted: &[Wanted]) -> Vec<TablePlan> {
    let mut plans = Vec::new();
    for w in wanted {
        let Some(target) = want.tables.get(&w.table) else {
            continue;
        };
        let mut plan = TablePlan {
            object: w.object.clone(),
            table: w.table.clone(),
            ..TablePlan::default()
        };
        let Some(existing) = have.tables.get(&w.table) else {
            plan.create_triggers = target.triggers.iter().map(|t| t.name.clone()).collect();
            plans.push(plan);
            continue;
        };
        plan.found = true;
        for (column, want_type) in &target.columns {
            match existing.columns.iter().find(|(c, _)| c == column) {
                None => plan.add_columns.push((column.clone(), want_type.clone())),
                Some((_, have_type)) => match fit(have_type, want_type) {
                    Fit::Same => {}
                    Fit::Widen => plan.widen_columns.push((
                        column.clone(),
                        have_type.clone(),
                        want_type.clone(),
                    )),
                    Fit::Incompatible => plan.incompatible.push((
                        column.clone(),
                        have_type.clone(),
                        want_type.clone(),
                    )),
                },
            }
        }
        // A default the column lacks (never a sequence's: `id` keeps its own).
        plan.set_defaults = target
            .defaults
            .iter()
            .filter(|(column, default)| {
                !default.contains("nextval(")
                    && existing.columns.iter().any(|(c, _)| c == *column)
                    && !existing.defaults.contains_key(*column)
            })
            .map(|(column, default)| (column.clone(), default.clone()))
            .collect();
        plan.kept_columns = existing
            .columns
            .iter()
            .filter(|(c, _)| !target.columns.iter().any(|(t, _)| t == c))
            .map(|(c, _)| c.clone())
            .collect();
        let shapes: BTreeSet<String> = existing
            .indexes
            .iter()
            .map(|i| index_shape(have, &i.definition))
            .collect();
        for index in &target.indexes {
            let named = existing.indexes.iter().any(|i| i.name == index.name);
            if !named && !shapes.contains(&index_shape(want, &index.definition)) {
                plan.add_indexes.push(index.name.clone());
            }
        }
        let ours = hc_functions(&w.table);
        for trigger in &existing.triggers {
            let wanted_same = target.triggers.iter().any(|t| {
                t.name == trigger.name
                    && want.neutral(&t.definition) == have.neutral(&trigger.definition)
            });
            let theirs = target.triggers.iter().any(|t| t.name == trigger.name)
                || ours.contains(&trigger.function)
                || trigger.function == "tlog_notify_trigger";
            if theirs && !wanted_same {
                plan.replace_triggers.push(trigger.name.clone());
            }
        }
        for trigger in &target.triggers {
            let kept = existing.triggers.iter().any(|t| {
                t.name == trigger.name
                    && want.neutral(&trigger.definition) == have.neutral(&t.definition)
            });
            if !kept {
                plan.create_triggers.push(trigger.name.clone());
            }
        }
        plan.drop_functions = ours
            .into_iter()
            .filter(|f| have.functions.iter().any(|h| &h.name == f))
            .collect();
        plans.push(plan);
    }
    plans
}

/// Shared functions (not per-table) the migrations create that the database lacks or holds
/// with another definition (pure).
pub fn plan_functions(have: &Layout, want: &Layout) -> Vec<String> {
    want.functions
        .iter()
        .filter(|f| {
            have.function(&f.name, &f.arguments)
                .is_none_or(|h| have.neutral(&h.definition) != want.neutral(&f.definition))
        })
        .map(|f| format!("{}({})", f.name, f.arguments))
        .collect()
}

/// `items` as `each` writes them, comma-separated.
fn joined<I: IntoIterator>(items: I, each: impl FnMut(I::Item) -> String) -> String {
    items.into_iter().map(each).collect::<Vec<_>>().join(", ")
}

/// The plan as text for a person (pure).
pub fn render(plan: &Plan) -> String {
    let mut out = format!("Adoption plan for schema {}:\n", plan.schema);
    let list = |items: &[String]| items.join(", ");
    for t in &plan.tables {
        let name = match &t.object {
            Some(object) => format!("{object} ({}.{})", plan.schema, t.table),
            None => format!("{}.{}", plan.schema, t.table),
        };
        if !t.found {
            out.push_str(&format!(
                "  {name}: missing; created as `forcesync migrate` would\n"
            ));
            continue;
        }
        let rows = match &t.newest_systemmodstamp {
            Some(stamp) => format!("{} rows, newest systemmodstamp {stamp}", t.rows),
            None if t.object.is_some() => format!("{} rows", t.rows),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {name}: found{}\n",
            if rows.is_empty() {
                String::new()
            } else {
                format!(", {rows}")
            }
        ));
        let mut line = |label: &str, text: String| {
            if !text.is_empty() {
                out.push_str(&format!("    {label}: {text}\n"));
            }
        };
        line(
            "columns to add",
            joined(&t.add_columns, |(c, ty)| format!("{c} {ty}")),
        );
        line(
            "columns to widen",
            joined(&t.widen_columns, |(c, h, w)| format!("{c} {h} -> {w}")),
        );
        line(
            "INCOMPATIBLE column types",
            joined(&t.incompatible, |(c, h, w)| {
                format!("{c} is {h}, forcesync needs {w}")
            }),
        );
        line(
            "defaults to set",
            joined(&t.set_defaults, |(c, d)| format!("{c} {d}")),
        );
        line("columns kept (not in the mapping)", list(&t.kept_columns));
        line("indexes to add", list(&t.add_indexes));
        line("triggers to replace", list(&t.replace_triggers));
        line("triggers to create", list(&t.create_triggers));
        line("functions to drop", list(&t.drop_functions));
        if !t.log_by_state.is_empty() {
            line(
                "trigger-log entries",
                joined(&t.log_by_state, |(s, n)| format!("{n} {s}")),
            );
        }
        if t.archived_failed > 0 {
            line(
                "archived FAILED entries",
                format!(
                    "{} (listed by `forcesync errors`, sent again by `forcesync retry`)",
                    t.archived_failed
                ),
            );
        }
    }
    let mut section = |label: &str, items: &[String]| {
        if !items.is_empty() {
            out.push_str(&format!("  {label}: {}\n", items.join(", ")));
        }
    };
    section("functions to create or replace", &plan.replace_functions);
    section(
        "engine tables to create (migrations)",
        &plan.engine_migrations,
    );
    section(
        "app migrations recorded as applied",
        &plan.record_migrations,
    );
    let loaded: Vec<String> = plan
        .mark_loaded
        .iter()
        .map(|(m, c)| format!("{m} (polling from {c})"))
        .collect();
    section("recorded as loaded, no reload", &loaded);
    for item in &plan.left_alone {
        out.push_str(&format!("  left as it is: {item}\n"));
    }
    out
}

#[cfg(test)]
mod tests;
