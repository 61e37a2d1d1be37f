//! Bulk API 2.0 against the emulated org: a query job of several thousand rows read page by page
//! as CSV, an ingest job where one bad row fails alone, and a failed job reported as such.

mod salesforce_support;

use std::collections::HashSet;
use std::time::Duration;

use salesforce_support::org;
use sync_runtime::salesforce::bulk::{IngestOperation, PollPolicy, QueryOperation};
use sync_runtime::salesforce::{ErrorClass, SfErrorKind};

fn poll() -> PollPolicy {
    PollPolicy {
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        timeout: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn a_query_job_streams_thousands_of_rows_in_bounded_pages() {
    let org = org().await;
    org.seed("Account", 4_000).await;
    let client = org.client();
    let total = client
        .count("SELECT COUNT() FROM Account")
        .await
        .expect("count");
    let mut job = client
        .bulk_query(
            "SELECT Id, Name, BillingCity FROM Account",
            QueryOperation::Query,
            Some(1_000),
            &poll(),
        )
        .await
        .expect("job completes");
    assert_eq!(job.job.state, "JobComplete");
    let mut ids = HashSet::new();
    let mut pages = 0;
    while let Some(page) = job.next_page().await.expect("page") {
        pages += 1;
        let rows = page.rows().expect("csv");
        assert_eq!(rows.header, vec!["Id", "Name", "BillingCity"]);
        assert!(rows.rows.len() <= 1_000);
        assert_eq!(page.number_of_records, Some(rows.rows.len() as u64));
        assert!(
            page.csv.starts_with(b"\"Id\",\"Name\",\"BillingCity\"")
                || page.csv.starts_with(b"Id,Name,BillingCity")
        );
        for row in rows.rows {
            assert!(ids.insert(row[0].clone()), "row {} twice", row[0]);
        }
    }
    assert_eq!(ids.len() as u64, total);
    assert!(pages as u64 >= total.div_ceil(1_000), "{pages} pages");
    job.delete().await.expect("delete the job");
}

#[tokio::test]
async fn an_ingest_job_reports_the_one_bad_row_and_creates_the_rest() {
    let org = org().await;
    let client = org.client();
    let mut csv = String::from("Name,Phone\n");
    for i in 0..9 {
        csv.push_str(&format!("Ingested {i},555-01{i:02}\n"));
    }
    csv.push_str(",555-0999\n"); // no Name: required
    let results = client
        .bulk_ingest(
            "Account",
            &IngestOperation::Insert,
            csv.into_bytes(),
            &poll(),
        )
        .await
        .expect("job completes");
    assert_eq!(results.successful.len(), 9);
    assert!(results
        .successful
        .iter()
        .all(|s| s.created && s.id.len() == 18));
    assert_eq!(
        results.successful[0].row.get("Name").map(String::as_str),
        Some("Ingested 0")
    );
    assert_eq!(results.failed.len(), 1);
    let failure = &results.failed[0];
    assert_eq!(failure.error.code, "REQUIRED_FIELD_MISSING");
    assert_eq!(failure.error.class, ErrorClass::Definite);
    assert_eq!(
        failure.row.get("Phone").map(String::as_str),
        Some("555-0999")
    );
    assert!(failure.id.is_none());
    assert!(results.unprocessed.is_empty());
    let stored = client
        .count("SELECT COUNT() FROM Account WHERE Name LIKE 'Ingested %'")
        .await
        .expect("count");
    assert_eq!(stored, 9);
}

#[tokio::test]
async fn a_failed_job_is_an_error_the_caller_can_fall_back_from() {
    let org = org().await;
    let client = org.client();
    let e = client
        .bulk_ingest(
            "Account",
            &IngestOperation::Insert,
            b"Name,Phone\n\"unterminated,555\n".to_vec(),
            &poll(),
        )
        .await
        .expect_err("the job fails");
    assert_eq!(e.kind, SfErrorKind::BulkJobFailed, "{e}");
    assert!(e.message.contains("Failed"), "{e}");
}
