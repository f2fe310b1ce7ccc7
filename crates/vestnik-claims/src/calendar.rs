//! The production calendar: which days are business days in Russia, and what "20 business days
//! after receipt" means. Per-year data (holidays, transferred days off, working Saturdays) is
//! checked in under `data/`; a year without data falls back to the Labour Code's holidays with
//! weekend holidays moved to the next working day, and says so. Pure.

use jiff::civil::{Date, Weekday};
use std::collections::BTreeSet;

/// The checked-in years, as (year, file text).
const DATA: [(i16, &str); 3] = [
    (2025, include_str!("../data/ru-2025.txt")),
    (2026, include_str!("../data/ru-2026.txt")),
    (2027, include_str!("../data/ru-2027.txt")),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("line {line}: {message}")]
    Data { line: usize, message: String },
}

/// Business days per the Russian production calendar.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    /// Weekdays that are not worked.
    off: BTreeSet<Date>,
    /// Weekend days that are worked.
    work: BTreeSet<Date>,
    /// Years the data covers; other years use the statutory rule.
    covered: BTreeSet<i16>,
}

impl BusinessCalendar {
    /// The calendar built from the checked-in data.
    pub fn russia() -> Self {
        let mut calendar = Self {
            off: BTreeSet::new(),
            work: BTreeSet::new(),
            covered: BTreeSet::new(),
        };
        for (year, text) in DATA {
            calendar
                .load(text)
                .unwrap_or_else(|err| panic!("data/ru-{year}.txt: {err}"));
            calendar.covered.insert(year);
        }
        calendar
    }

    /// Adds one year's data: lines `off DATE…` and `work DATE…`; `#` starts a comment.
    pub fn load(&mut self, text: &str) -> Result<(), CalendarError> {
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let error = |message: String| CalendarError::Data {
                line: index + 1,
                message,
            };
            let mut words = line.split_whitespace();
            let kind = words.next().unwrap_or("");
            for word in words {
                let date: Date = word
                    .parse()
                    .map_err(|err| error(format!("{word:?} is not a date: {err}")))?;
                let weekend = is_weekend(date);
                match kind {
                    "off" if !weekend => self.off.insert(date),
                    "work" if weekend => self.work.insert(date),
                    "off" => return Err(error(format!("{date} is a weekend day already"))),
                    "work" => return Err(error(format!("{date} is a weekday already"))),
                    _ => return Err(error(format!("unknown kind {kind:?} (use off or work)"))),
                };
            }
        }
        Ok(())
    }

    /// Whether the data covers `year` (otherwise the statutory rule answers).
    pub fn covers(&self, year: i16) -> bool {
        self.covered.contains(&year)
    }

    pub fn is_business_day(&self, date: Date) -> bool {
        if self.covers(date.year()) {
            if is_weekend(date) {
                self.work.contains(&date)
            } else {
                !self.off.contains(&date)
            }
        } else {
            !is_weekend(date) && !statutory_days_off(date.year()).contains(&date)
        }
    }

    /// The `n`th business day after `received` (counting starts the next day, Civil Code
    /// art. 191), i.e. the last day of an `n`-business-day period.
    pub fn add_business_days(&self, received: Date, n: u32) -> Date {
        let mut date = received;
        let mut counted = 0;
        while counted < n {
            date = date.tomorrow().expect("dates stay far from jiff's limits");
            if self.is_business_day(date) {
                counted += 1;
            }
        }
        date
    }

    /// Business days in `(from, to]`.
    pub fn business_days_between(&self, from: Date, to: Date) -> u32 {
        let mut count = 0;
        let mut date = from;
        while date < to {
            date = date.tomorrow().expect("dates stay far from jiff's limits");
            if self.is_business_day(date) {
                count += 1;
            }
        }
        count
    }
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// Labour Code art. 112: 1–8 January, 23 February, 8 March, 1 and 9 May, 12 June, 4 November. A
/// holiday on a weekend moves to the next working day, except 1–8 January (whose weekend days
/// the Government transfers by decree, which this rule cannot know).
fn statutory_days_off(year: i16) -> BTreeSet<Date> {
    let date = |month: i8, day: i8| Date::new(year, month, day).expect("valid holiday");
    let mut off: BTreeSet<Date> = (1..=8).map(|day| date(1, day)).collect();
    for (month, day) in [(2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4)] {
        let mut holiday = date(month, day);
        while is_weekend(holiday) || off.contains(&holiday) {
            holiday = holiday.tomorrow().expect("valid date");
        }
        off.insert(holiday);
    }
    off.retain(|d| !is_weekend(*d));
    off
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        text.parse().unwrap()
    }

    fn working_days(calendar: &BusinessCalendar, year: i16) -> u32 {
        calendar.business_days_between(
            Date::new(year - 1, 12, 31).unwrap(),
            Date::new(year, 12, 31).unwrap(),
        )
    }

    #[test]
    fn twenty_business_days_against_the_worked_examples() {
        let calendar = BusinessCalendar::russia();
        // An ordinary stretch: four weeks and a day (29 calendar days).
        assert_eq!(
            calendar.add_business_days(d("2025-10-23"), 20),
            d("2025-11-21")
        );
        // Across the May holidays and their transfers.
        assert_eq!(
            calendar.add_business_days(d("2025-04-25"), 20),
            d("2025-05-29")
        );
        // Across the New Year break: 40 calendar days.
        let due = calendar.add_business_days(d("2025-12-24"), 20);
        assert_eq!(due, d("2026-02-02"));
        assert_eq!((due - d("2025-12-24")).get_days(), 40);
        // A plain month with no holiday: exactly 28 calendar days.
        let due = calendar.add_business_days(d("2026-09-07"), 20);
        assert_eq!((due - d("2026-09-07")).get_days(), 28);
    }

    #[test]
    fn transferred_days_and_working_saturdays_come_from_the_data() {
        let calendar = BusinessCalendar::russia();
        assert!(
            calendar.is_business_day(d("2025-11-01")),
            "Saturday 1 Nov 2025 was worked"
        );
        assert!(
            !calendar.is_business_day(d("2025-11-03")),
            "Monday 3 Nov 2025 was off"
        );
        assert!(
            !calendar.is_business_day(d("2025-05-02")),
            "4 Jan moved to 2 May"
        );
        assert!(
            calendar.is_business_day(d("2025-02-24")),
            "23 Feb 2025 moved to 8 May, not 24 Feb"
        );
        assert!(
            !calendar.is_business_day(d("2026-01-09")),
            "3 Jan 2026 moved to 9 Jan"
        );
        assert!(!calendar.is_business_day(d("2026-12-31")));
        assert!(
            calendar.is_business_day(d("2027-11-13")),
            "Saturday 13 Nov 2027 is worked"
        );
        assert_eq!(working_days(&calendar, 2025), 247);
        assert_eq!(working_days(&calendar, 2026), 247);
    }

    #[test]
    fn years_without_data_use_the_statutory_rule() {
        let calendar = BusinessCalendar::russia();
        assert!(!calendar.covers(2028));
        assert!(
            !calendar.is_business_day(d("2028-01-03")),
            "New Year holidays"
        );
        // 4 Nov 2028 is a Saturday: the holiday moves to Monday 6 Nov.
        assert!(!calendar.is_business_day(d("2028-11-06")));
        assert!(calendar.is_business_day(d("2028-11-07")));
        // Where the data covers a year, it agrees with the statute except for decree transfers.
        let statutory = statutory_days_off(2026);
        assert!(statutory.contains(&d("2026-03-09")) && statutory.contains(&d("2026-05-11")));
    }

    #[test]
    fn bad_data_is_refused_with_its_line() {
        let mut calendar = BusinessCalendar::russia();
        let err = calendar.load("off 2025-13-01").unwrap_err();
        assert!(matches!(err, CalendarError::Data { line: 1, .. }), "{err}");
        assert!(
            calendar.load("# a comment\noff 2025-11-01").is_err(),
            "a Saturday cannot be 'off'"
        );
        assert!(calendar.load("holiday 2025-11-05").is_err());
    }
}
