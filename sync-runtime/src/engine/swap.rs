//! Reload through a shadow table: the mapping is read again into `<table>_reload`, indexed after
//! the copy, and swapped in within one transaction, so the app reads the complete old rows until
//! the commit and the complete new rows after it.
//!
//! Inside the load's transaction (see [`super::load`]):
//!
//! 1. [`plan`] reads what the swap must carry over from the catalog (columns, indexes and the
//!    constraints they back, triggers, grants, the `id` sequence) and says why a table cannot be
//!    swapped at all (a view or foreign key depends on it, row security, a publication, …); then
//!    the load merges in place instead ([`Method::Merge`]) and logs the reason.
//! 2. [`remember_synced_rows`] before Salesforce is read, then [`build`]: the shadow table (same
//!    columns and defaults) is filled from the staged COPY. A record the table held keeps its
//!    row's `id` (the app holds `id`s, the trigger log
//!    refers to them) and its unmapped columns; a new record takes the next value of the table's
//!    own `id` sequence. Then every index of the table is built on the shadow.
//! 3. [`swap`]: with writes to the table blocked (`EXCLUSIVE`: the app keeps reading), the rows
//!    that changed in Postgres during the reload are carried over: rows the app inserted (no
//!    `sfid` yet), rows with unsent changes in `_trigger_log`, rows a change event updated after
//!    the snapshot (a newer `systemmodstamp`), records that arrived meanwhile; rows deleted
//!    meanwhile stay deleted. Synced rows Salesforce no longer has leave (or stay with `isdeleted`
//!    under soft deletes), as in the merge. Then the sequence changes owner, the old table is
//!    dropped, the shadow takes its name, its indexes theirs, and the triggers, grants and the
//!    table's own settings (comments, storage parameters, statistics targets, replica identity,
//!    clustering index) are created again.

use chrono::NaiveDateTime;
use tokio_postgres::Transaction;

use super::apply::qualified;
use super::system::quote_ident;
use crate::adapter::{DeleteMode, MappingDescriptor};

/// How a load writes its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// An initial load into a table without synced rows: `COPY` straight into a shadow table
    /// without indexes or triggers, its indexes built after, swapped in at the end (the rows
    /// the app inserted meanwhile are carried over).
    Shadow,
    /// `COPY` straight into the table (an initial load into a table without synced rows that
    /// cannot be swapped).
    Direct,
    /// Into a shadow table swapped in at the end.
    Swap,
    /// Staged, then merged into the table in place (the swap is impossible, for these reasons).
    Merge(Vec<String>),
}

/// How to load: into a shadow table, filled straight by `COPY` when nothing synced is there yet
/// (the limit: an unindexed `COPY`, then the index builds) or from the staged rows otherwise,
/// unless something depending on the table rules the swap out: then straight into the table
/// (nothing synced yet, nothing for the app to lose sight of) or merged in place.
pub fn method(reload: bool, has_synced: bool, blockers: Vec<String>) -> Method {
    match (!reload && !has_synced, blockers.is_empty()) {
        (true, true) => Method::Shadow,
        (true, false) => Method::Direct,
        (false, true) => Method::Swap,
        (false, false) => Method::Merge(blockers),
    }
}

/// One index of the table, rebuilt on the shadow under a temporary name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPlan {
    /// The index's name (quoted as needed).
    pub name: String,
    /// The temporary name on the shadow table.
    pub temp: String,
    /// `CREATE INDEX` of the temporary index on the shadow table.
    pub create: String,
    /// The primary key or unique constraint it backs: `(name, "PRIMARY KEY" | "UNIQUE")`.
    pub constraint: Option<(String, &'static str)>,
}

/// What the swap carries over, read from the catalog.
#[derive(Debug, Clone)]
pub struct Plan {
    table: String,
    shadow: String,
    /// Every stored column (quoted), in table order.
    columns: Vec<String>,
    /// The `id` sequence, qualified and quoted.
    sequence: String,
    indexes: Vec<IndexPlan>,
    /// `CREATE TRIGGER …` statements (they name the table, so they run after the rename), each
    /// with `ALTER TABLE … DISABLE TRIGGER` when the trigger was disabled.
    triggers: Vec<String>,
    grants: Vec<String>,
    /// The table's own settings, as statements run after the rename: its comment and its
    /// columns', storage parameters (`fillfactor`, autovacuum, …), column statistics targets,
    /// replica identity and clustering index.
    properties: Vec<String>,
    /// The owner to give the new table, when it is not the engine's role.
    owner: Option<String>,
}

/// The `CREATE INDEX` of an index's copy on the shadow table, from `pg_get_indexdef`'s text
/// (`CREATE [UNIQUE] INDEX <name> ON <table> USING …`); `None` when the text is not of that form.
pub fn shadow_index_sql(
    definition: &str,
    index: &str,
    table: &str,
    temp: &str,
    shadow: &str,
) -> Option<String> {
    let unique = definition.starts_with("CREATE UNIQUE INDEX ");
    let head = format!(
        "CREATE {}INDEX {index} ON {table} USING ",
        if unique { "UNIQUE " } else { "" }
    );
    let rest = definition.strip_prefix(&head)?;
    Some(format!(
        "CREATE {}INDEX {temp} ON {shadow} USING {rest}",
        if unique { "UNIQUE " } else { "" }
    ))
}

/// The shadow table's name: `<table>_reload`, or a name from the table's oid when that would
/// exceed Postgres' 63-byte identifiers.
pub fn shadow_name(table: &str, oid: u32) -> String {
    let name = format!("{table}_reload");
    if name.len() <= 63 {
        name
    } else {
        format!("_forcesync_reload_{oid}")
    }
}

/// Reads the table's catalog: what the swap must recreate, or why it cannot swap.
pub async fn plan(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
) -> Result<Result<Plan, Vec<String>>, tokio_postgres::Error> {
    let table = qualified(mapping);
    let schema = quote_ident(mapping.schema);
    let row = tx
        .query_one(
            "SELECT c.oid, c.relkind::text AS kind, c.relrowsecurity, \
                    pg_has_role(c.relowner, 'MEMBER') AS may_drop, \
                    CASE WHEN c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
                         THEN NULL ELSE quote_ident(pg_get_userbyid(c.relowner)) END AS owner, \
                    format('%I.%I', n.nspname, c.relname) AS pg_table \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&mapping.schema, &mapping.table],
        )
        .await?;
    let oid: u32 = row.get("oid");
    let kind: String = row.get("kind");
    let row_security: bool = row.get("relrowsecurity");
    let may_drop: bool = row.get("may_drop");
    let owner: Option<String> = row.get("owner");
    let pg_table: String = row.get("pg_table");
    let shadow_name = shadow_name(mapping.table, oid);
    let shadow = format!("{schema}.{}", quote_ident(&shadow_name));

    let mut blockers = Vec::new();
    if kind != "r" {
        blockers.push("it is a partitioned table".to_owned());
    }
    if row_security {
        blockers.push("it has row-level security".to_owned());
    }
    if !may_drop {
        blockers.push("forcesync's role does not own it".to_owned());
    }
    // Objects the DROP of the old table would take with it or refuse over.
    let dependents = tx
        .query(
            "SELECT DISTINCT 'view ' || v.oid::regclass::text || ' depends on it' AS blocker \
             FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class \
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
               AND d.refobjid = $1 AND v.oid <> $1 \
             UNION ALL \
             SELECT 'rule ' || r.rulename || ' is defined on it' FROM pg_rewrite r WHERE r.ev_class = $1 \
             UNION ALL \
             SELECT 'foreign key ' || quote_ident(conname) || ' of ' || conrelid::regclass::text || ' involves it' \
             FROM pg_constraint WHERE contype = 'f' AND (confrelid = $1 OR conrelid = $1) \
             UNION ALL \
             SELECT 'exclusion constraint ' || quote_ident(conname) || ' is defined on it' \
             FROM pg_constraint WHERE contype = 'x' AND conrelid = $1 \
             UNION ALL \
             SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid) || ' uses its row type' \
             FROM pg_depend d WHERE d.refclassid = 'pg_type'::regclass AND d.deptype = 'n' \
               AND d.refobjid = (SELECT reltype FROM pg_class WHERE oid = $1) \
             UNION ALL \
             SELECT 'publication ' || p.pubname || ' publishes it' \
             FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = $1 \
             UNION ALL \
             SELECT 'it takes part in table inheritance' \
             WHERE EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = $1 OR inhparent = $1) \
             UNION ALL \
             SELECT 'its id column is an identity column' \
             FROM pg_attribute WHERE attrelid = $1 AND attname = 'id' AND attidentity <> ''",
            &[&oid],
        )
        .await?;
    blockers.extend(dependents.iter().map(|r| r.get::<_, String>("blocker")));
    let sequence: Option<String> = tx
        .query_one(
            "SELECT pg_get_serial_sequence($1, 'id') AS sequence",
            &[&pg_table],
        )
        .await?
        .get("sequence");
    if sequence.is_none() {
        blockers.push("its id column has no sequence of its own".to_owned());
    }
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2) AS taken",
            &[&mapping.schema, &shadow_name],
        )
        .await?
        .get("taken");
    if exists {
        blockers.push(format!("a relation named {shadow} already exists"));
    }

    let columns: Vec<String> = tx
        .query(
            "SELECT attname::text AS name FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' \
             ORDER BY attnum",
            &[&oid],
        )
        .await?
        .iter()
        .map(|r| quote_ident(r.get("name")))
        .collect();

    let mut indexes = Vec::new();
    for r in tx
        .query(
            "SELECT i.indexrelid, quote_ident(c.relname) AS name, \
                    pg_get_indexdef(i.indexrelid) AS definition, \
                    quote_ident(con.conname) AS constraint_name, con.contype::text AS constraint_type \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid \
             WHERE i.indrelid = $1 ORDER BY c.relname",
            &[&oid],
        )
        .await?
    {
        let index_oid: u32 = r.get("indexrelid");
        let name: String = r.get("name");
        let definition: String = r.get("definition");
        let constraint = match (
            r.get::<_, Option<String>>("constraint_name"),
            r.get::<_, Option<String>>("constraint_type"),
        ) {
            (Some(con), Some(kind)) if kind == "p" => Some((con, "PRIMARY KEY")),
            (Some(con), Some(kind)) if kind == "u" => Some((con, "UNIQUE")),
            (Some(con), Some(_)) => {
                blockers.push(format!("constraint {con} cannot be rebuilt"));
                None
            }
            _ => None,
        };
        let temp = format!("_forcesync_reload_{index_oid}");
        match shadow_index_sql(&definition, &name, &pg_table, &temp, &shadow) {
            Some(create) => indexes.push(IndexPlan {
                name,
                temp,
                create,
                constraint,
            }),
            None => blockers.push(format!("index {name} cannot be rebuilt ({definition})")),
        }
    }

    let mut triggers = Vec::new();
    for r in tx
        .query(
            "SELECT pg_get_triggerdef(oid) AS definition, tgenabled::text AS enabled, \
                    quote_ident(tgname) AS name \
             FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname",
            &[&oid],
        )
        .await?
    {
        triggers.push(r.get::<_, String>("definition"));
        if r.get::<_, String>("enabled") == "D" {
            triggers.push(format!(
                "ALTER TABLE {table} DISABLE TRIGGER {}",
                r.get::<_, String>("name")
            ));
        }
    }

    let grants = tx
        .query(
            "SELECT 'GRANT ' || a.privilege_type || ' ON ' || $2 || ' TO ' || \
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END || \
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS statement \
             FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1 AND a.grantee <> c.relowner \
             UNION ALL \
             SELECT 'GRANT ' || a.privilege_type || ' (' || quote_ident(t.attname) || ') ON ' || $2 || ' TO ' || \
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END || \
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END \
             FROM pg_attribute t, aclexplode(t.attacl) a \
             WHERE t.attrelid = $1 AND t.attacl IS NOT NULL AND NOT t.attisdropped",
            &[&oid, &table],
        )
        .await?
        .iter()
        .map(|r| r.get("statement"))
        .collect();

    // Named after the rename: `{table}` is the swapped-in table by then, its indexes renamed.
    let properties = tx
        .query(
            "SELECT 'COMMENT ON TABLE ' || $2 || ' IS ' || quote_literal(d.description) AS statement              FROM pg_description d              WHERE d.objoid = $1 AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0              UNION ALL              SELECT 'COMMENT ON COLUMN ' || $2 || '.' || quote_ident(a.attname) || ' IS ' || quote_literal(d.description)              FROM pg_description d JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid              WHERE d.objoid = $1 AND d.classoid = 'pg_class'::regclass AND d.objsubid > 0 AND NOT a.attisdropped              UNION ALL              SELECT 'ALTER TABLE ' || $2 || ' SET (' || array_to_string(c.reloptions, ', ') || ')'              FROM pg_class c WHERE c.oid = $1 AND c.reloptions IS NOT NULL              UNION ALL              SELECT 'ALTER TABLE ' || $2 || ' ALTER COLUMN ' || quote_ident(a.attname) ||                     ' SET STATISTICS ' || a.attstattarget::int              FROM pg_attribute a              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped                AND coalesce(a.attstattarget::int, -1) >= 0              UNION ALL              SELECT 'ALTER TABLE ' || $2 || ' REPLICA IDENTITY ' ||                     CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'                          ELSE 'USING INDEX ' || quote_ident(i.relname) END              FROM pg_class c LEFT JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident                   LEFT JOIN pg_class i ON i.oid = x.indexrelid              WHERE c.oid = $1 AND c.relreplident IN ('f', 'n', 'i')              UNION ALL              SELECT 'ALTER TABLE ' || $2 || ' CLUSTER ON ' || quote_ident(i.relname)              FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid              WHERE x.indrelid = $1 AND x.indisclustered",
            &[&oid, &table],
        )
        .await?
        .iter()
        .map(|r| r.get("statement"))
        .collect();

    if !blockers.is_empty() {
        return Ok(Err(blockers));
    }
    Ok(Ok(Plan {
        table,
        shadow,
        columns,
        sequence: sequence.unwrap_or_default(),
        indexes,
        triggers,
        grants,
        properties,
        owner,
    }))
}

/// The columns of the table that are not read from Salesforce (`_hc_err`, columns the app added):
/// a record's row keeps them across a reload. `id` and `_hc_lastop` are handled apart.
fn kept_columns<'a>(mapping: &MappingDescriptor, columns: &'a [String]) -> Vec<&'a String> {
    let mapped: Vec<String> = mapping
        .fields
        .iter()
        .map(|f| quote_ident(f.column))
        .collect();
    columns
        .iter()
        .filter(|c| c.as_str() != "id" && c.as_str() != "_hc_lastop" && !mapped.contains(c))
        .collect()
}

/// Remembers which synced rows the table holds (`_forcesync_known`: `id`, `sfid`) before
/// Salesforce is read: a record it held then and Postgres deleted since (a change event, the app)
/// must not come back from the snapshot.
pub async fn remember_synced_rows(
    tx: &Transaction<'_>,
    table: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE _forcesync_known ON COMMIT DROP AS \
             SELECT id, sfid FROM {table} WHERE sfid IS NOT NULL;
         ANALYZE _forcesync_known;"
    ))
    .await
}

/// Fills the shadow table from the staged rows (`staging`: the mapping's columns) and builds its
/// indexes. Records the table held when the load began keep their row's `id` and unmapped
/// columns; those deleted from it since stay out (see [`remember_synced_rows`]).
pub async fn build(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
    plan: &Plan,
    staging: &str,
) -> Result<(), tokio_postgres::Error> {
    let Plan {
        table,
        shadow,
        columns,
        ..
    } = plan;
    let mapped: Vec<String> = mapping
        .fields
        .iter()
        .map(|f| quote_ident(f.column))
        .collect();
    let kept = kept_columns(mapping, columns);
    let has_lastop = columns.iter().any(|c| c == "_hc_lastop");
    let lastop = |prefix: &str| {
        if has_lastop {
            format!("{prefix}'SYNCED'")
        } else {
            String::new()
        }
    };
    let mapped_list = mapped.join(", ");
    let from_staging: Vec<String> = mapped.iter().map(|c| format!("l.{c}")).collect();
    let from_table: Vec<String> = kept.iter().map(|c| format!(", o.{c}")).collect();
    let kept_list: Vec<String> = kept.iter().map(|c| format!(", {c}")).collect();
    create_shadow(tx, plan).await?;
    tx.batch_execute(&format!(
        "ANALYZE {staging};
         INSERT INTO {shadow} (id, {mapped_list}{lastop_col}{kept_cols}) \
             SELECT k.id, {staged}{lastop_val}{table_cols} \
             FROM {staging} l JOIN _forcesync_known k ON k.sfid = l.sfid \
             JOIN {table} o ON o.id = k.id;
         INSERT INTO {shadow} ({mapped_list}{lastop_col}) \
             SELECT {staged}{lastop_val} FROM {staging} l \
             WHERE NOT EXISTS (SELECT 1 FROM _forcesync_known k WHERE k.sfid = l.sfid);",
        lastop_col = if has_lastop { ", _hc_lastop" } else { "" },
        lastop_val = lastop(", "),
        kept_cols = kept_list.concat(),
        staged = from_staging.join(", "),
        table_cols = from_table.concat(),
    ))
    .await?;
    index_shadow(tx, plan).await?;
    // The swap's statements join the old table with the shadow: they are planned on its
    // statistics.
    tx.batch_execute(&format!("ANALYZE {shadow}")).await
}

/// Creates the empty shadow table: the table's columns, defaults (the `id` sequence's among
/// them), check constraints, storage and comments; no index, no trigger.
pub async fn create_shadow(tx: &Transaction<'_>, plan: &Plan) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!(
        "CREATE TABLE {shadow} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
             INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)",
        shadow = plan.shadow,
        table = plan.table,
    ))
    .await
}

/// Builds every index of the table on the filled shadow table. (Building an index records the
/// table's size, `reltuples`; its column statistics wait for an `ANALYZE`.)
pub async fn index_shadow(tx: &Transaction<'_>, plan: &Plan) -> Result<(), tokio_postgres::Error> {
    for index in &plan.indexes {
        tx.batch_execute(&index.create).await?;
    }
    Ok(())
}

impl Plan {
    /// The shadow table, qualified and quoted.
    pub fn shadow(&self) -> &str {
        &self.shadow
    }

    /// Whether the table has this (quoted) column.
    pub fn has_column(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }
}

/// Carries over what changed in Postgres during the reload and swaps the shadow table in (see the
/// module header). `started_at`: when the load began reading Salesforce.
pub async fn swap(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
    plan: &Plan,
    started_at: NaiveDateTime,
) -> Result<(), tokio_postgres::Error> {
    let Plan {
        table,
        shadow,
        columns,
        ..
    } = plan;
    let schema = quote_ident(mapping.schema);
    let all = columns.join(", ");
    let from_old: Vec<String> = columns.iter().map(|c| format!("o.{c}")).collect();
    let soft_deleted: Vec<String> = columns
        .iter()
        .map(|c| {
            if c == "isdeleted" {
                "true".to_owned()
            } else {
                format!("o.{c}")
            }
        })
        .collect();
    // Writes wait from here to the commit; reads go on.
    tx.batch_execute(&format!("LOCK TABLE {table} IN EXCLUSIVE MODE"))
        .await?;
    // Rows deleted in Postgres during the reload stay deleted; a record whose sfid an app's row
    // took meanwhile (the writer created it) is that row, with its id and its own columns.
    let adopted: Vec<String> = kept_columns(mapping, columns)
        .iter()
        .map(|c| format!(", {c} = o.{c}"))
        .collect();
    tx.batch_execute(&format!(
        "DELETE FROM {shadow} s USING _forcesync_known k \
         WHERE s.id = k.id AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.id = k.id);
         UPDATE {shadow} s SET id = o.id{adopted} FROM {table} o \
         WHERE o.sfid = s.sfid AND o.id <> s.id;",
        adopted = adopted.concat()
    ))
    .await?;
    // The app's rows, rows with unsent changes, and rows changed since the snapshot win whole.
    tx.execute(
        &format!(
            "CREATE TEMP TABLE _forcesync_keep ON COMMIT DROP AS \
             SELECT o.id, o.sfid FROM {table} o LEFT JOIN {shadow} s ON s.sfid = o.sfid \
             WHERE o.sfid IS NULL \
                OR o.id IN (SELECT record_id FROM {schema}._trigger_log \
                            WHERE table_name = $1 AND state IN ('NEW', 'PENDING')) \
                OR (s.id IS NULL AND (o.systemmodstamp IS NULL OR o.systemmodstamp >= $2)) \
                OR (s.id IS NOT NULL AND o.systemmodstamp > s.systemmodstamp)"
        ),
        &[&mapping.table, &started_at],
    )
    .await?;
    tx.batch_execute(&format!(
        "DELETE FROM {shadow} WHERE id IN (SELECT id FROM _forcesync_keep);
         DELETE FROM {shadow} WHERE sfid IN (SELECT sfid FROM _forcesync_keep WHERE sfid IS NOT NULL);
         INSERT INTO {shadow} ({all}) SELECT {old} FROM {table} o \
             WHERE o.id IN (SELECT id FROM _forcesync_keep);",
        old = from_old.join(", ")
    ))
    .await?;
    if mapping.sync.deletes == DeleteMode::Soft {
        // Synced rows Salesforce no longer selects stay, marked deleted.
        tx.batch_execute(&format!(
            "INSERT INTO {shadow} ({all}) SELECT {old} FROM {table} o \
             WHERE o.sfid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {shadow} s WHERE s.sfid = o.sfid)",
            old = soft_deleted.join(", ")
        ))
        .await?;
    }
    let mut statements = vec![
        format!("ALTER SEQUENCE {} OWNED BY {shadow}.id", plan.sequence),
        format!("DROP TABLE {table}"),
        format!(
            "ALTER TABLE {shadow} RENAME TO {}",
            quote_ident(mapping.table)
        ),
    ];
    for index in &plan.indexes {
        let temp = format!("{schema}.{}", index.temp);
        statements.push(match &index.constraint {
            Some((name, kind)) => {
                format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {name} {kind} USING INDEX {}",
                    index.temp
                )
            }
            None => format!("ALTER INDEX {temp} RENAME TO {}", index.name),
        });
    }
    statements.extend(plan.triggers.iter().cloned());
    statements.extend(plan.grants.iter().cloned());
    statements.extend(plan.properties.iter().cloned());
    if let Some(owner) = &plan.owner {
        statements.push(format!("ALTER TABLE {table} OWNER TO {owner}"));
    }
    for statement in statements {
        tx.batch_execute(&statement).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
