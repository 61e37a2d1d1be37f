//! Per-table statements: create/drop a mapped table with its indexes and triggers, add, widen and
//! drop columns, create and drop indexes, switch write capture on and off.

use super::snapshot::{ColumnSnapshot, IndexSnapshot, TableSnapshot};
use super::system::{
    application_write_condition, pending_condition, status_condition, LASTOP_DEFAULT, NEW_ROWS,
    OLD_ROWS,
};
use super::{qualified, quote_ident};

/// `CREATE TABLE` with the Heroku Connect system columns, its indexes and its triggers. (The
/// engine keeps its per-mapping state in its own `_forcesync_*` tables, created at run time.)
pub fn create_table(schema: &str, table: &TableSnapshot) -> String {
    let name = qualified(schema, &table.name);
    let mut sql = format!(
        "-- {object}\nCREATE TABLE {name} (\n    id serial PRIMARY KEY,\n",
        object = table.object
    );
    for column in &table.columns {
        sql.push_str(&format!(
            "    {} {},\n",
            quote_ident(&column.name),
            column.sql_type
        ));
    }
    sql.push_str(&format!(
        "    _hc_lastop varchar(32) DEFAULT {LASTOP_DEFAULT},\n    _hc_err text\n);\n"
    ));
    for index in &table.indexes {
        sql.push_str(&create_index(schema, &table.name, index));
    }
    sql.push_str(&status_trigger(schema, &table.name));
    sql.push_str(&pending_trigger(schema, &table.name));
    if table.capture {
        sql.push_str(&enable_capture(schema, &table.name));
    }
    sql
}

/// Reverses [`create_table`].
pub fn drop_table(schema: &str, table: &TableSnapshot) -> String {
    format!("DROP TABLE {};\n", qualified(schema, &table.name))
}

/// The name of `table`'s BEFORE trigger maintaining `_hc_lastop` / `_hc_err` (Heroku
/// Connect's).
pub fn status_trigger_name(table: &str) -> String {
    format!("hc_{table}_status_trigger")
}

/// `table`'s status trigger, called only where it changes the row ([`status_condition`]).
pub fn status_trigger(schema: &str, table: &str) -> String {
    status_trigger_when(schema, table, Some(&status_condition()))
}

/// Layout 3's status trigger, called on every row (restored when layout 4 is rolled back).
pub fn status_trigger_v3(schema: &str, table: &str) -> String {
    status_trigger_when(schema, table, None)
}

fn status_trigger_when(schema: &str, table: &str, condition: Option<&str>) -> String {
    let when = condition.map_or(" ".to_owned(), |c| format!(" WHEN ({c})\n    "));
    format!(
        "CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {name}\n    FOR EACH ROW{when}EXECUTE FUNCTION {function}();\n",
        trigger = quote_ident(&status_trigger_name(table)),
        name = qualified(schema, table),
        function = qualified(schema, "forcesync_status"),
    )
}

/// The name of `table`'s BEFORE UPDATE trigger marking an application's change `PENDING`. It
/// sorts before [`status_trigger_name`]: Postgres fires a table's triggers in name order.
pub fn pending_trigger_name(table: &str) -> String {
    format!("hc_{table}_pending_trigger")
}

/// `table`'s pending trigger, called only where [`pending_condition`] holds.
pub fn pending_trigger(schema: &str, table: &str) -> String {
    format!(
        "CREATE TRIGGER {trigger} BEFORE UPDATE ON {name}\n    FOR EACH ROW WHEN ({condition})\n    EXECUTE FUNCTION {function}();\n",
        trigger = quote_ident(&pending_trigger_name(table)),
        name = qualified(schema, table),
        condition = pending_condition(),
        function = qualified(schema, "forcesync_pending"),
    )
}

/// Reverses [`pending_trigger`].
pub fn drop_pending_trigger(schema: &str, table: &str) -> String {
    format!(
        "DROP TRIGGER {} ON {};\n",
        quote_ident(&pending_trigger_name(table)),
        qualified(schema, table)
    )
}

/// The names of `table`'s capture triggers: Heroku Connect's `hc_<t>_logtrigger` (INSERT), then
/// the UPDATE and DELETE ones (a trigger with transition tables serves a single event).
pub fn capture_triggers(table: &str) -> [String; 3] {
    [
        format!("hc_{table}_logtrigger"),
        format!("hc_{table}_logtrigger_update"),
        format!("hc_{table}_logtrigger_delete"),
    ]
}

/// Records application writes on `table` in `_trigger_log` (read-write mappings): one
/// statement-level trigger per event, reading the statement's rows from its transition tables.
pub fn enable_capture(schema: &str, table: &str) -> String {
    let [insert, update, delete] = capture_triggers(table);
    let events = [
        (insert, "INSERT", format!("NEW TABLE AS {NEW_ROWS}")),
        (
            update,
            "UPDATE",
            format!("OLD TABLE AS {OLD_ROWS} NEW TABLE AS {NEW_ROWS}"),
        ),
        (delete, "DELETE", format!("OLD TABLE AS {OLD_ROWS}")),
    ];
    let mut sql = String::new();
    for (trigger, event, referencing) in events {
        sql.push_str(&format!(
            "CREATE TRIGGER {trigger} AFTER {event} ON {name}\n    REFERENCING {referencing}\n    FOR EACH STATEMENT WHEN ({condition})\n    EXECUTE FUNCTION {function}();\n",
            trigger = quote_ident(&trigger),
            name = qualified(schema, table),
            condition = application_write_condition(),
            function = qualified(schema, "forcesync_logger"),
        ));
    }
    sql
}

/// Stops recording application writes on `table`.
pub fn disable_capture(schema: &str, table: &str) -> String {
    capture_triggers(table)
        .iter()
        .map(|trigger| {
            format!(
                "DROP TRIGGER {} ON {};\n",
                quote_ident(trigger),
                qualified(schema, table),
            )
        })
        .collect()
}

pub fn create_index(schema: &str, table: &str, index: &IndexSnapshot) -> String {
    let columns: Vec<String> = index.columns.iter().map(|c| quote_ident(c)).collect();
    format!(
        "CREATE {unique}INDEX {name} ON {table} ({columns});\n",
        unique = if index.unique { "UNIQUE " } else { "" },
        name = quote_ident(&index.name),
        table = qualified(schema, table),
        columns = columns.join(", "),
    )
}

pub fn drop_index(schema: &str, index: &IndexSnapshot) -> String {
    format!("DROP INDEX {};\n", qualified(schema, &index.name))
}

pub fn add_column(schema: &str, table: &str, column: &ColumnSnapshot) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN {} {};\n",
        qualified(schema, table),
        quote_ident(&column.name),
        column.sql_type
    )
}

pub fn drop_column(schema: &str, table: &str, column: &str) -> String {
    format!(
        "ALTER TABLE {} DROP COLUMN {};\n",
        qualified(schema, table),
        quote_ident(column)
    )
}

pub fn alter_column_type(schema: &str, table: &str, column: &str, sql_type: &str) -> String {
    format!(
        "ALTER TABLE {} ALTER COLUMN {} TYPE {};\n",
        qualified(schema, table),
        quote_ident(column),
        sql_type
    )
}
