//! Resolution of relative date literals (`TODAY`, `LAST_N_DAYS:n`, ...) to day ranges.
//!
//! The org runs in UTC with weeks starting on Sunday and fiscal years equal to calendar years.

use chrono::{Datelike, NaiveDate};

use super::ast::DateLiteral;

/// The half-open range of days `[start, end)` a date literal covers when today is `today`.
pub fn resolve(lit: DateLiteral, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    match lit {
        DateLiteral::Days { start, end } => (add_days(today, start), add_days(today, end)),
        DateLiteral::Weeks { start, end } => {
            let week = add_days(today, -i64::from(today.weekday().num_days_from_sunday()));
            (add_days(week, start * 7), add_days(week, end * 7))
        }
        DateLiteral::Months { start, end } => {
            let month = today.with_day(1).unwrap_or(today);
            (add_months(month, start), add_months(month, end))
        }
        DateLiteral::Quarters { start, end } => {
            let q0 = (today.month0() / 3) * 3 + 1;
            let quarter = NaiveDate::from_ymd_opt(today.year(), q0, 1).unwrap_or(today);
            (add_months(quarter, start * 3), add_months(quarter, end * 3))
        }
        DateLiteral::Years { start, end } => {
            let year = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
            (add_months(year, start * 12), add_months(year, end * 12))
        }
    }
}

fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    let r = if n >= 0 {
        d.checked_add_days(chrono::Days::new(n as u64))
    } else {
        d.checked_sub_days(chrono::Days::new(n.unsigned_abs()))
    };
    r.unwrap_or(if n >= 0 {
        NaiveDate::MAX
    } else {
        NaiveDate::MIN
    })
}

fn add_months(d: NaiveDate, n: i64) -> NaiveDate {
    let m = u32::try_from(n.unsigned_abs()).unwrap_or(u32::MAX);
    let r = if n >= 0 {
        d.checked_add_months(chrono::Months::new(m))
    } else {
        d.checked_sub_months(chrono::Months::new(m))
    };
    r.unwrap_or(if n >= 0 {
        NaiveDate::MAX
    } else {
        NaiveDate::MIN
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use DateLiteral::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn ranges_relative_to_a_wednesday() {
        let today = d(2024, 5, 15); // Wednesday
        assert_eq!(
            resolve(Days { start: 0, end: 1 }, today),
            (d(2024, 5, 15), d(2024, 5, 16))
        );
        assert_eq!(
            resolve(Days { start: -30, end: 1 }, today),
            (d(2024, 4, 15), d(2024, 5, 16))
        );
        assert_eq!(
            resolve(Weeks { start: 0, end: 1 }, today),
            (d(2024, 5, 12), d(2024, 5, 19))
        );
        assert_eq!(
            resolve(Weeks { start: -1, end: 0 }, today),
            (d(2024, 5, 5), d(2024, 5, 12))
        );
        assert_eq!(
            resolve(Months { start: -1, end: 0 }, today),
            (d(2024, 4, 1), d(2024, 5, 1))
        );
        assert_eq!(
            resolve(Quarters { start: 0, end: 1 }, today),
            (d(2024, 4, 1), d(2024, 7, 1))
        );
        assert_eq!(
            resolve(Years { start: -1, end: 0 }, today),
            (d(2023, 1, 1), d(2024, 1, 1))
        );
    }
}
