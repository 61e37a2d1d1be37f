//! The archive: the operator's `retry` (requeue failed entries as they were) and `ignore`,
//! pruning old entries, and the unsent writes of read-only mappings.

use tokio_postgres::GenericClient;

use crate::adapter::MappingDescriptor;

use super::Store;

impl Store {
    /// Requeues failed entries (from the archive, as they were) of these tables, optionally
    /// only these ids, and wakes the writer as an app write does (they go out at once, not at
    /// its next fallback poll); returns how many.
    pub(crate) async fn requeue_failed<C: GenericClient>(
        &self,
        db: &C,
        tables: &[&str],
        ids: Option<&[i32]>,
    ) -> Result<u64, tokio_postgres::Error> {
        let requeued = db.execute(
            &format!(
                "WITH moved AS (
                     DELETE FROM {archive} WHERE state = 'FAILED' AND table_name = ANY($1)
                       AND ($2::int[] IS NULL OR id = ANY($2))
                     RETURNING *)
                 INSERT INTO {log} (id, txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, \"values\")
                 SELECT id, txid, created_at, now(), 'NEW', action, table_name, record_id, sfid, old, \"values\" FROM moved",
                archive = self.archive,
                log = self.log
            ),
            &[&tables, &ids],
        )
        .await?;
        if requeued > 0 {
            db.execute("SELECT pg_notify($1, 'requeued')", &[&self.channel])
                .await?;
        }
        Ok(requeued)
    }

    /// Marks failed entries handled (`IGNORED`) and clears `_hc_err` on their rows; returns
    /// how many entries.
    pub(crate) async fn ignore_failed<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        ids: Option<&[i32]>,
    ) -> Result<u64, tokio_postgres::Error> {
        let records = db
            .query(
                &format!(
                    "UPDATE {} SET state = 'IGNORED', updated_at = now()
                     WHERE state = 'FAILED' AND table_name = $1 AND ($2::int[] IS NULL OR id = ANY($2))
                     RETURNING record_id",
                    self.archive
                ),
                &[&mapping.table, &ids],
            )
            .await?;
        let record_ids: Vec<i32> = records
            .iter()
            .filter_map(|r| r.get::<_, Option<i32>>(0))
            .collect();
        db.batch_execute("SET LOCAL forcesync.engine = 'on'")
            .await?;
        db.execute(
            &format!(
                "UPDATE {} SET _hc_err = NULL, _hc_lastop = CASE WHEN sfid IS NULL THEN 'IGNORED' ELSE 'SYNCED' END
                 WHERE id = ANY($1) AND _hc_lastop = 'FAILED'",
                self.table(mapping)
            ),
            &[&record_ids],
        )
        .await?;
        Ok(records.len() as u64)
    }

    /// Deletes archived entries processed more than `days` days ago; returns how many. Entries
    /// marked `REQUEUE` / `REQUEUED` (Heroku Connect's "copy me back" / "copied back", set by
    /// the app's own tools) are left alone, as every other writer step leaves them.
    pub(crate) async fn prune<C: GenericClient>(
        &self,
        db: &C,
        days: u32,
    ) -> Result<u64, tokio_postgres::Error> {
        db.execute(
            &format!(
                // An entry is processed after it is created, so the `created_at` bound leaves
                // the same rows and lets the archive's `created_at` index find them (not a scan
                // of the whole archive every poll interval).
                "DELETE FROM {} WHERE processed_at < now() - make_interval(days => $1)
                   AND created_at < now() - make_interval(days => $1)
                   AND state IS DISTINCT FROM 'REQUEUE' AND state IS DISTINCT FROM 'REQUEUED'",
                self.archive
            ),
            &[&(days as i32)],
        )
        .await
    }

    /// Rows of a read-only mapping the app changed (`_hc_lastop = 'PENDING'`): never sent.
    pub(crate) async fn unsent_read_only<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
    ) -> Result<i64, tokio_postgres::Error> {
        Ok(db
            .query_one(
                &format!(
                    "SELECT count(*) AS unsent FROM {} WHERE _hc_lastop = 'PENDING'",
                    self.table(mapping)
                ),
                &[],
            )
            .await?
            .get("unsent"))
    }
}
