//! Floor 1, data: what an org holds and how it reads, with no HTTP handlers and no org
//! services — object metadata (`schema`), Ids (`ids`), field values (`value`), record tables
//! and indexes (`store`), formula fields (`formula`), record rendering (`render`), the SOQL
//! engine (`soql`), the rolling API-usage window (`api_window`), the store's write-counting
//! lock (`tracked`) and the Salesforce error type every floor answers with (`error`). Nothing
//! here imports from `org`, `routes` or `server`.

pub mod api_window;
pub mod error;
pub mod formula;
pub mod ids;
pub mod render;
pub mod schema;
pub mod soql;
pub mod store;
pub mod tracked;
pub mod value;
