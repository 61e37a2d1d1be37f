//! The merge-join behind `verify` (pure): the two sides' `(Id, SystemModstamp)` streams, each in
//! Id byte order, fed page by page; what differs comes out as it is decided, in bounded memory.

use std::collections::VecDeque;

use chrono::{NaiveDateTime, SubsecRound};
use serde::Serialize;

/// How one record differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// In Salesforce (and the filter), not in Postgres.
    Missing,
    /// In Postgres, not in Salesforce (deleted, or no longer matching the filter).
    Extra,
    /// In both, Postgres holding an older `SystemModstamp`.
    Stale,
}

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Salesforce,
    Postgres,
}

/// A side produced an Id not after the one before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{side:?} returned Ids out of order ({after} then {id}); the comparison needs both sides in byte order")]
pub struct OutOfOrder {
    pub side: Side,
    pub after: String,
    pub id: String,
}

/// The merge-join of the two Id-ordered streams (pure). Feed each side page by page
/// ([`Merge::needs`] says which side to read next), and collect what [`Merge::step`] decides.
#[derive(Debug, Default)]
pub struct Merge {
    sf: VecDeque<(String, NaiveDateTime)>,
    pg: VecDeque<(String, Option<NaiveDateTime>)>,
    sf_done: bool,
    pg_done: bool,
    sf_last: Option<String>,
    pg_last: Option<String>,
    /// Records present on both sides and equal.
    pub matching: u64,
}

fn check_order(side: Side, last: &mut Option<String>, id: &str) -> Result<(), OutOfOrder> {
    if let Some(after) = last.as_deref() {
        if after.as_bytes() >= id.as_bytes() {
            return Err(OutOfOrder {
                side,
                after: after.to_owned(),
                id: id.to_owned(),
            });
        }
    }
    *last = Some(id.to_owned());
    Ok(())
}

impl Merge {
    /// Adds the next Salesforce records (`Id`, `SystemModstamp`), in Id order.
    pub fn push_salesforce(
        &mut self,
        page: impl IntoIterator<Item = (String, NaiveDateTime)>,
    ) -> Result<(), OutOfOrder> {
        for (id, stamp) in page {
            check_order(Side::Salesforce, &mut self.sf_last, &id)?;
            self.sf.push_back((id, stamp));
        }
        Ok(())
    }

    /// Adds the next Postgres rows (`sfid`, `systemmodstamp`), in byte order of `sfid`.
    pub fn push_postgres(
        &mut self,
        page: impl IntoIterator<Item = (String, Option<NaiveDateTime>)>,
    ) -> Result<(), OutOfOrder> {
        for (id, stamp) in page {
            check_order(Side::Postgres, &mut self.pg_last, &id)?;
            self.pg.push_back((id, stamp));
        }
        Ok(())
    }

    /// No more records will come from that side.
    pub fn finish(&mut self, side: Side) {
        match side {
            Side::Salesforce => self.sf_done = true,
            Side::Postgres => self.pg_done = true,
        }
    }

    /// The side to read next before [`Merge::step`] can decide more; `None` when both are
    /// finished and everything is decided.
    pub fn needs(&self) -> Option<Side> {
        if self.sf.is_empty() && !self.sf_done {
            Some(Side::Salesforce)
        } else if self.pg.is_empty() && !self.pg_done {
            Some(Side::Postgres)
        } else {
            None
        }
    }

    /// Decides every record that can be decided with what was pushed, calling `found` for each
    /// difference. A row is stale when its stamp, to Salesforce's millisecond precision, is
    /// older than Salesforce's (a newer one is a change event's commit time, not staleness).
    pub fn step(&mut self, mut found: impl FnMut(Kind, String)) {
        loop {
            match (self.sf.front(), self.pg.front()) {
                (Some((sf_id, sf_stamp)), Some((pg_id, pg_stamp))) => {
                    match sf_id.as_bytes().cmp(pg_id.as_bytes()) {
                        std::cmp::Ordering::Less => {
                            let (id, _) = self.sf.pop_front().expect("front exists");
                            found(Kind::Missing, id);
                        }
                        std::cmp::Ordering::Greater => {
                            let (id, _) = self.pg.pop_front().expect("front exists");
                            found(Kind::Extra, id);
                        }
                        std::cmp::Ordering::Equal => {
                            let stale = pg_stamp.is_none_or(|pg| pg.trunc_subsecs(3) < *sf_stamp);
                            self.sf.pop_front();
                            let (id, _) = self.pg.pop_front().expect("front exists");
                            if stale {
                                found(Kind::Stale, id);
                            } else {
                                self.matching += 1;
                            }
                        }
                    }
                }
                (Some(_), None) if self.pg_done => {
                    let (id, _) = self.sf.pop_front().expect("front exists");
                    found(Kind::Missing, id);
                }
                (None, Some(_)) if self.sf_done => {
                    let (id, _) = self.pg.pop_front().expect("front exists");
                    found(Kind::Extra, id);
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: u32) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, millis * 1_000_000)
            .unwrap()
            .naive_utc()
    }

    fn sf(ids: &[(&str, i64)]) -> Vec<(String, NaiveDateTime)> {
        ids.iter()
            .map(|(id, s)| (id.to_string(), at(*s, 0)))
            .collect()
    }

    fn pg(ids: &[(&str, Option<i64>)]) -> Vec<(String, Option<NaiveDateTime>)> {
        ids.iter()
            .map(|(id, s)| (id.to_string(), s.map(|s| at(s, 0))))
            .collect()
    }

    /// Runs a merge to the end, feeding each side in pages of `page` as it asks.
    fn run(
        salesforce: Vec<(String, NaiveDateTime)>,
        postgres: Vec<(String, Option<NaiveDateTime>)>,
        page: usize,
    ) -> (Vec<(Kind, String)>, u64) {
        let mut merge = Merge::default();
        let mut sf = salesforce.chunks(page).map(<[_]>::to_vec);
        let mut pg = postgres.chunks(page).map(<[_]>::to_vec);
        let mut found = Vec::new();
        loop {
            merge.step(|kind, id| found.push((kind, id)));
            match merge.needs() {
                None => break,
                Some(Side::Salesforce) => match sf.next() {
                    Some(p) => merge.push_salesforce(p).unwrap(),
                    None => merge.finish(Side::Salesforce),
                },
                Some(Side::Postgres) => match pg.next() {
                    Some(p) => merge.push_postgres(p).unwrap(),
                    None => merge.finish(Side::Postgres),
                },
            }
        }
        (found, merge.matching)
    }

    #[test]
    fn missing_extra_and_stale_records_are_found_whatever_the_page_size() {
        let salesforce = sf(&[("001A", 10), ("001B", 20), ("001D", 40), ("001E", 50)]);
        let postgres = pg(&[
            ("001A", Some(10)),
            ("001C", Some(30)),
            ("001D", Some(39)),
            ("001E", None),
            ("001F", Some(60)),
        ]);
        for page in [1, 2, 3, 100] {
            let (found, matching) = run(salesforce.clone(), postgres.clone(), page);
            assert_eq!(
                found,
                [
                    (Kind::Missing, "001B".to_owned()),
                    (Kind::Extra, "001C".to_owned()),
                    (Kind::Stale, "001D".to_owned()),
                    (Kind::Stale, "001E".to_owned()),
                    (Kind::Extra, "001F".to_owned()),
                ],
                "page size {page}"
            );
            assert_eq!(matching, 1);
        }
    }

    #[test]
    fn an_empty_side_makes_every_record_of_the_other_a_difference() {
        let (found, _) = run(sf(&[("001A", 1), ("001B", 1)]), Vec::new(), 1);
        assert!(found.iter().all(|(k, _)| *k == Kind::Missing) && found.len() == 2);
        let (found, _) = run(Vec::new(), pg(&[("001A", Some(1))]), 1);
        assert_eq!(found, [(Kind::Extra, "001A".to_owned())]);
        assert_eq!(run(Vec::new(), Vec::new(), 1), (Vec::new(), 0));
    }

    #[test]
    fn a_newer_postgres_stamp_or_extra_microseconds_are_not_stale() {
        // A change event's commit time is at or after Salesforce's stamp; Postgres keeps
        // microseconds Salesforce does not have.
        let salesforce = vec![
            ("001A".to_owned(), at(10, 5)),
            ("001B".to_owned(), at(10, 5)),
        ];
        let newer = at(11, 0);
        let same_ms = at(10, 5) + chrono::Duration::microseconds(700);
        let postgres = vec![
            ("001A".to_owned(), Some(newer)),
            ("001B".to_owned(), Some(same_ms)),
        ];
        assert_eq!(run(salesforce, postgres, 2), (Vec::new(), 2));
    }

    #[test]
    fn ids_compare_as_bytes_so_case_matters() {
        // 'Z' (0x5A) sorts before 'a' (0x61): Salesforce's case-sensitive Ids, COLLATE "C".
        let salesforce = sf(&[("001Z", 1), ("001a", 1)]);
        let postgres = pg(&[("001Z", Some(1)), ("001a", Some(1))]);
        assert_eq!(run(salesforce, postgres, 1), (Vec::new(), 2));
    }

    #[test]
    fn a_side_out_of_order_is_an_error_not_a_wrong_report() {
        let mut merge = Merge::default();
        let error = merge
            .push_salesforce(sf(&[("001b", 1), ("001B", 1)]))
            .unwrap_err();
        assert_eq!(error.side, Side::Salesforce);
        assert!(error.to_string().contains("out of order"), "{error}");
        let mut merge = Merge::default();
        merge.push_postgres(pg(&[("001B", Some(1))])).unwrap();
        assert!(merge.push_postgres(pg(&[("001B", Some(1))])).is_err());
    }
}
