//! Reading a schema's layout from the Postgres catalogs (tables, columns, indexes, triggers,
//! functions), schema-qualified so that the adopted schema and the reference compare.

use std::collections::BTreeMap;

use tokio_postgres::{GenericClient, Row};

use super::plan::{FunctionLayout, IndexLayout, Layout, TableLayout, TriggerLayout};
use super::AdoptError;

/// Reads a schema's tables, columns, indexes, triggers and functions. Definitions come
/// schema-qualified whatever the connection's `search_path` (Heroku Connect sets the role's to
/// its schema), so that two schemas compare.
pub(crate) async fn read_layout<C: GenericClient>(
    db: &C,
    schema: &str,
) -> Result<Layout, AdoptError> {
    let saved: String = db
        .query_one(
            "SELECT current_setting('search_path') AS saved,
                    set_config('search_path', 'pg_catalog', true)",
            &[],
        )
        .await?
        .get("saved");
    let layout = read_layout_qualified(db, schema).await;
    db.execute("SELECT set_config('search_path', $1, true)", &[&saved])
        .await?;
    layout
}

async fn read_layout_qualified<C: GenericClient>(
    db: &C,
    schema: &str,
) -> Result<Layout, AdoptError> {
    let mut tables: BTreeMap<String, TableLayout> = BTreeMap::new();
    for row in db
        .query(
            "SELECT c.relname::text AS table_name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
            &[&schema],
        )
        .await?
    {
        tables.insert(row.get("table_name"), TableLayout::default());
    }
    per_table(
        db,
        "SELECT c.relname::text AS table_name, a.attname::text AS column_name,
                    format_type(a.atttypid, a.atttypmod) AS column_type
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY c.relname, a.attnum",
        schema,
        &mut tables,
        |t, row| t.columns.push((row.get("column_name"), row.get("column_type"))),
    )
    .await?;
    per_table(
        db,
        "SELECT c.relname::text AS table_name, a.attname::text AS column_name,
                    pg_get_expr(d.adbin, d.adrelid) AS column_default
             FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
             JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT a.attisdropped
               AND a.attgenerated = ''",
        schema,
        &mut tables,
        |t, row| {
            t.defaults
                .insert(row.get("column_name"), row.get("column_default"));
        },
    )
    .await?;
    per_table(
        db,
        "SELECT t.relname::text AS table_name, i.relname::text AS index_name,
                    pg_get_indexdef(x.indexrelid) AS definition
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = $1 AND NOT x.indisprimary ORDER BY i.relname",
        schema,
        &mut tables,
        |t, row| {
            t.indexes.push(IndexLayout {
                name: row.get("index_name"),
                definition: row.get("definition"),
            });
        },
    )
    .await?;
    per_table(
        db,
        "SELECT c.relname::text AS table_name, g.tgname::text AS trigger_name,
                    pg_get_triggerdef(g.oid) AS definition, p.proname::text AS function_name
             FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = g.tgfoid
             WHERE n.nspname = $1 AND NOT g.tgisinternal ORDER BY g.tgname",
        schema,
        &mut tables,
        |t, row| {
            t.triggers.push(TriggerLayout {
                name: row.get("trigger_name"),
                definition: row.get("definition"),
                function: row.get("function_name"),
            });
        },
    )
    .await?;
    let functions = db
        .query(
            "SELECT p.proname::text AS function_name,
                    pg_get_function_identity_arguments(p.oid) AS arguments,
                    pg_get_functiondef(p.oid) AS definition
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = $1 AND p.prokind = 'f' ORDER BY p.proname, p.oid",
            &[&schema],
        )
        .await?
        .iter()
        .map(|row| FunctionLayout {
            name: row.get("function_name"),
            arguments: row.get("arguments"),
            definition: row.get("definition"),
        })
        .collect();
    Ok(Layout {
        schema: schema.to_owned(),
        tables,
        functions,
    })
}

/// Runs `sql` (the schema its one parameter, each row naming its `table_name`) and hands each
/// row to `add` with the layout of its table (rows of tables not listed are skipped).
async fn per_table<C: GenericClient>(
    db: &C,
    sql: &str,
    schema: &str,
    tables: &mut BTreeMap<String, TableLayout>,
    mut add: impl FnMut(&mut TableLayout, &Row),
) -> Result<(), AdoptError> {
    for row in db.query(sql, &[&schema]).await? {
        if let Some(t) = tables.get_mut(row.get::<_, &str>("table_name")) {
            add(t, &row);
        }
    }
    Ok(())
}
