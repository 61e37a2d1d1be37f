//! Reconciliation's IO (step 1): journaled creates and upserts whose outcome is unknown, looked
//! up in Salesforce and matched ([`super::match_creates`]), then adopted or sent again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::adapter::MappingDescriptor;
use crate::engine::soql;
use crate::engine::writer::outcome::LastOp;
use crate::engine::writer::plan::CallKind;
use crate::engine::writer::settle::success;
use crate::engine::writer::store::{JournalRow, RECONCILE, RETRY};
use crate::engine::writer::{RoundReport, WriteError, Writer};
use crate::salesforce::SfError;

use super::{fields_to_query, match_creates, Candidate, InFlightCreate, Resolution};

impl Writer {
    /// Step 1: journaled creates with unknown outcome, per mapping.
    pub(in crate::engine::writer) async fn reconcile(&mut self) -> Result<RoundReport, WriteError> {
        let mut report = RoundReport::default();
        for t in 0..self.targets.len() {
            let mapping = self.targets[t].mapping;
            let rows = self
                .store
                .journaled(&self.db, &[mapping.table], &[RECONCILE])
                .await?;
            if rows.is_empty() {
                continue;
            }
            let settled_before = Utc::now()
                - chrono::Duration::from_std(self.config.reconcile_after)
                    .unwrap_or(chrono::Duration::seconds(5));
            let (ready, others): (Vec<JournalRow>, Vec<JournalRow>) = rows
                .into_iter()
                .filter(|r| {
                    !matches!(r.write.kind, CallKind::Create | CallKind::Upsert)
                        || r.sent_at <= settled_before
                })
                .partition(|r| matches!(r.write.kind, CallKind::Create | CallKind::Upsert));
            let other_ids: Vec<i64> = others.iter().map(|r| r.id).collect();
            self.store
                .set_journal_state(&self.db, &other_ids, RETRY)
                .await?;
            let (creates, upserts): (Vec<JournalRow>, Vec<JournalRow>) = ready
                .into_iter()
                .partition(|r| r.write.kind == CallKind::Create);
            if !upserts.is_empty() {
                report.absorb(self.reconcile_upserts(t, &upserts).await?);
            }
            if creates.is_empty() {
                continue;
            }
            let in_flight: Vec<InFlightCreate> = creates
                .iter()
                .map(|r| InFlightCreate {
                    journal_id: r.id,
                    body: r.write.body.clone(),
                })
                .collect();
            let earliest = creates.iter().map(|r| r.sent_at).min();
            let (mut candidates, by_user) = self.candidates(t, &in_flight, earliest).await?;
            let candidate_ids: Vec<String> = candidates.iter().map(|c| c.id.clone()).collect();
            let taken: HashSet<String> = self
                .store
                .held_sfids(&self.db, mapping, &candidate_ids, by_user)
                .await?
                .into_iter()
                .collect();
            if by_user {
                let changes = self
                    .store
                    .copy_changes(&self.db, mapping, &candidate_ids)
                    .await?;
                for (sfid, column) in changes {
                    let (Some(candidate), Some(field)) = (
                        candidates.iter_mut().find(|c| c.id == sfid),
                        mapping.fields.iter().find(|f| f.column == column),
                    ) else {
                        continue;
                    };
                    candidate
                        .changed_since
                        .insert(field.sf_name.to_ascii_lowercase());
                }
            }
            let by_id: HashMap<i64, &JournalRow> = creates.iter().map(|r| (r.id, r)).collect();
            let resolved = match_creates(&in_flight, &candidates, &taken)
                .into_iter()
                .map(|(journal_id, resolution)| (by_id[&journal_id], resolution))
                .collect();
            report.absorb(self.resolve(mapping, resolved).await?);
        }
        Ok(report)
    }

    /// Upserts whose outcome is unknown: a record with the external ID exists (adopted: the
    /// upsert created or found it) or not (sent again).
    async fn reconcile_upserts(
        &mut self,
        t: usize,
        upserts: &[JournalRow],
    ) -> Result<RoundReport, WriteError> {
        let target = self.targets[t].clone();
        let mapping = target.mapping;
        let Some(key) = mapping.upsert_key else {
            let ids: Vec<i64> = upserts.iter().map(|r| r.id).collect();
            self.store.set_journal_state(&self.db, &ids, RETRY).await?;
            return Ok(RoundReport::default());
        };
        let mut found: HashMap<String, String> = HashMap::new();
        for chunk in upserts.chunks(200) {
            let values: Vec<&str> = chunk
                .iter()
                .filter_map(|r| r.write.external_id.as_deref())
                .collect();
            if values.is_empty() {
                continue;
            }
            let soql = soql::by_external_ids_query(mapping.object, key, &values);
            let page =
                target
                    .client
                    .query(&soql)
                    .await
                    .map_err(|error| WriteError::Salesforce {
                        mapping: mapping.object.to_owned(),
                        error,
                    })?;
            for record in &page.records {
                if let (Some(id), Some(ext)) = (
                    record.get("Id").and_then(Value::as_str),
                    record.get(key).and_then(Value::as_str),
                ) {
                    found.insert(ext.to_ascii_lowercase(), id.to_owned());
                }
            }
        }
        let resolved = upserts
            .iter()
            .map(|r| {
                let sfid = r
                    .write
                    .external_id
                    .as_ref()
                    .and_then(|x| found.get(&x.to_ascii_lowercase()));
                let resolution = sfid.map_or(Resolution::Resend, |s| Resolution::Adopt(s.clone()));
                (r, resolution)
            })
            .collect();
        self.resolve(mapping, resolved).await
    }

    /// Adopts the records found (the rows take their sfids, the entries are settled `SUCCESS`)
    /// and schedules the others to be sent again, in one transaction.
    async fn resolve(
        &mut self,
        mapping: &'static MappingDescriptor,
        resolved: Vec<(&JournalRow, Resolution)>,
    ) -> Result<RoundReport, WriteError> {
        let mut settles = Vec::new();
        let mut adopted = Vec::new();
        let mut resend = Vec::new();
        for (row, resolution) in resolved {
            match resolution {
                Resolution::Adopt(sfid) => {
                    settles.push(success(&row.write, Some(sfid), LastOp::Inserted, true));
                    adopted.push(row.id);
                }
                Resolution::Resend => resend.push(row.id),
            }
        }
        let report = RoundReport {
            adopted: adopted.len(),
            resent: resend.len(),
            ..RoundReport::default()
        };
        let tx = self.db.transaction().await?;
        let latencies = self.store.settle(&tx, mapping, &settles, &adopted).await?;
        self.store.set_journal_state(&tx, &resend, RETRY).await?;
        tx.commit().await?;
        crate::engine::activity::record_sent(mapping.object, &latencies);
        Ok(report)
    }

    /// Records of the mapping created since the earliest of these sends (`earliest`), with the
    /// sent fields; and whether they were asked for by the integration user.
    async fn candidates(
        &self,
        t: usize,
        in_flight: &[InFlightCreate],
        earliest: Option<DateTime<Utc>>,
    ) -> Result<(Vec<Candidate>, bool), WriteError> {
        let target = &self.targets[t];
        let since = earliest.unwrap_or_else(Utc::now)
            - chrono::Duration::from_std(self.config.reconcile_margin)
                .unwrap_or(chrono::Duration::minutes(5));
        let fields = fields_to_query(in_flight);
        let sf_error = |error: SfError| WriteError::Salesforce {
            mapping: target.mapping.object.to_owned(),
            error,
        };
        let user = target.client.user_id().await.map_err(sf_error)?;
        let soql =
            soql::created_since_query(target.mapping.object, &fields, since, user.as_deref());
        let mut page = target.client.query(&soql).await.map_err(sf_error)?;
        let mut candidates = Vec::new();
        loop {
            for record in &page.records {
                let Some(fields) = record.as_object() else {
                    continue;
                };
                let Some(id) = fields.get("Id").and_then(Value::as_str) else {
                    continue;
                };
                candidates.push(Candidate {
                    id: id.to_owned(),
                    fields: fields.clone(),
                    changed_since: HashSet::new(),
                });
            }
            match (&page.next_records_url, page.done) {
                (Some(next), false) => {
                    page = target.client.query_more(next).await.map_err(sf_error)?;
                }
                _ => break,
            }
        }
        Ok((candidates, user.is_some()))
    }
}
