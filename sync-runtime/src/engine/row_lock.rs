//! Row locks the engine takes on the app's tables before writing rows the app may be changing at
//! the same moment (the read path, before it reads the app's pending changes to the rows a
//! Salesforce change writes). They are taken in `id` order, and the engine gives way, never the app: the app's own
//! multi-row statements lock rows in their scan order, so the two can wait on each other, and
//! Postgres cancels whichever side checks for a deadlock first (after `deadlock_timeout`,
//! 1 s by default). The engine waits at most [`LOCK_WAIT`], well under that, then lets go of what
//! it locked (from a savepoint) and tries again with backoff: an app statement is never the one
//! cancelled.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use crate::salesforce::backoff;

/// How long the engine waits for an app's row lock before letting go and trying again.
pub const LOCK_WAIT: Duration = Duration::from_millis(200);

/// Locks the rows of `table` (qualified, quoted) whose `key` column is one of `keys` (an array
/// parameter) `FOR NO KEY UPDATE`, in `id` order, until this transaction ends. Run it inside a
/// transaction; `lock_timeout` is back to its default afterwards.
pub async fn lock_rows<C: GenericClient>(
    tx: &C,
    table: &str,
    key: &str,
    keys: &(dyn ToSql + Sync),
) -> Result<(), tokio_postgres::Error> {
    let lock = format!("SELECT 1 FROM {table} WHERE {key} = ANY($1) ORDER BY id FOR NO KEY UPDATE");
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {}",
        LOCK_WAIT.as_millis()
    ))
    .await?;
    let mut attempt: u32 = 0;
    loop {
        tx.batch_execute("SAVEPOINT forcesync_row_lock").await?;
        match tx.query(&lock, &[keys]).await {
            Ok(_) => break,
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT forcesync_row_lock")
                    .await?;
                attempt += 1;
                if attempt.is_multiple_of(50) {
                    tracing::info!(
                        table,
                        "waiting for the app's transactions on rows the engine writes"
                    );
                }
                tokio::time::sleep(backoff::delay(
                    Duration::from_millis(10),
                    Duration::from_millis(200),
                    attempt,
                    backoff::random_share(),
                ))
                .await;
            }
            Err(e) => return Err(e),
        }
    }
    tx.batch_execute("RELEASE SAVEPOINT forcesync_row_lock; SET LOCAL lock_timeout TO DEFAULT")
        .await
}
