//! Bulk API 1.0 (`/services/async/<ver>/job…`, `X-SFDC-Session`): JSON jobs (simple-salesforce,
//! integer `concurrencyMode`), CSV jobs created with JSON or XML (tap-salesforce, jsforce) and
//! XML jobs; batches processed in the background through `Org::write` (ingest) or the SOQL
//! executor (query/queryAll), batch info and lists, results (ingest JSON/CSV/XML; query
//! result-list then the result as CSV/JSON/XML), close/abort, and Bulk-shaped errors.

mod jobs;
mod process;
mod results;
mod routes;
pub mod wire;

pub use jobs::Bulk1;
pub use routes::routes;
