//! The fixed two-year window, French retail seasonality and local-time conversion.
//!
//! Everything in the dataset happens between 2024-11-01 00:00:00 and 2026-10-31 23:59:59
//! UTC. Days are numbered 0..730 from the window start. Shoppers live on French local
//! time (UTC+1, UTC+2 in summer); timestamps are stored in UTC.

use chrono::{Datelike, NaiveDate};
use rand_pcg::Pcg64;

use crate::rng::{CumulativeTable, between, pick_weighted};

/// Microseconds since the Unix epoch, UTC.
pub(crate) type Micros = i64;

pub(crate) const WINDOW_DAYS: u32 = 730;
pub(crate) const SECOND: Micros = 1_000_000;
pub(crate) const MINUTE: Micros = 60 * SECOND;
pub(crate) const HOUR: Micros = 60 * MINUTE;
pub(crate) const DAY: Micros = 24 * HOUR;
pub(crate) const MONTHS: usize = 24;

pub(crate) fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("calendar constants are valid dates")
}

fn epoch_days(d: NaiveDate) -> i64 {
    (d - date(1970, 1, 1)).num_days()
}

/// Days since the Unix epoch of a date (Date32 value).
pub(crate) fn epoch_day_of(d: NaiveDate) -> i32 {
    epoch_days(d) as i32
}

/// The calendar year of a Date32 value.
pub(crate) fn year_of_epoch_day(day: i32) -> i32 {
    (date(1970, 1, 1) + chrono::TimeDelta::days(i64::from(day))).year()
}

/// The kind of sale running on a day; drives volumes and discounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sale {
    None,
    Soldes,
    BlackFriday,
}

/// What is being timed; each has its own weekly cycle and hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activity {
    Store,
    Web,
    App,
}

#[derive(Debug, Clone)]
pub(crate) struct Day {
    pub date: NaiveDate,
    /// Index of the month partition, 0 = 2024-11.
    pub month: usize,
    pub utc_offset_hours: i64,
    pub sale: Sale,
}

#[derive(Debug)]
pub(crate) struct Calendar {
    pub start: Micros,
    pub start_epoch_day: i32,
    pub days: Vec<Day>,
    pub month_labels: Vec<String>,
    store_days: CumulativeTable,
    web_days: CumulativeTable,
    app_days: CumulativeTable,
}

/// Local-hour weights. Stores open 9h-20h; web peaks at lunch and in the evening.
const STORE_HOURS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 6.0, 7.0, 8.0, 8.0, 8.0, 9.0, 10.0, 11.0,
    10.0, 4.0, 0.0, 0.0, 0.0, 0.0,
];
const WEB_HOURS: [f64; 24] = [
    3.0, 1.5, 0.8, 0.4, 0.3, 0.4, 1.0, 2.5, 4.0, 4.5, 5.0, 5.5, 7.0, 6.5, 5.5, 5.5, 5.5, 6.0, 7.0,
    8.0, 10.0, 11.0, 8.5, 5.0,
];
const APP_HOURS: [f64; 24] = [
    2.5, 1.2, 0.5, 0.3, 0.3, 0.6, 1.5, 4.0, 5.5, 4.5, 4.5, 5.0, 6.5, 6.0, 4.5, 4.5, 5.0, 6.0, 7.5,
    8.0, 10.0, 10.5, 8.5, 4.5,
];

/// Weekday factors, Monday first. Saturday is the big store day, Sunday most stores close.
const STORE_WEEK: [f64; 7] = [0.75, 0.85, 1.0, 0.9, 1.1, 1.75, 0.35];
const WEB_WEEK: [f64; 7] = [1.1, 1.0, 1.0, 1.0, 0.9, 0.9, 1.15];

impl Calendar {
    pub(crate) fn new() -> Self {
        let first = date(2024, 11, 1);
        let start_epoch_day = epoch_days(first) as i32;
        let days: Vec<Day> = (0..WINDOW_DAYS)
            .map(|i| describe_day(first + chrono::Days::new(u64::from(i))))
            .collect();
        let table =
            |activity: Activity| CumulativeTable::new(days.iter().map(|d| day_weight(d, activity)));
        let month_labels = (0..MONTHS)
            .map(|m| {
                let n = 10 + m as i32; // months since 2024-01
                format!("{}-{:02}", 2024 + n / 12, n % 12 + 1)
            })
            .collect();
        Self {
            start: i64::from(start_epoch_day) * DAY,
            start_epoch_day,
            store_days: table(Activity::Store),
            web_days: table(Activity::Web),
            app_days: table(Activity::App),
            days,
            month_labels,
        }
    }

    /// The last representable instant of the window (2026-10-31 23:59:59.999999).
    pub(crate) fn end(&self) -> Micros {
        self.start + i64::from(WINDOW_DAYS) * DAY - 1
    }

    pub(crate) fn clamp(&self, t: Micros) -> Micros {
        t.clamp(self.start, self.end())
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, t: Micros) -> bool {
        t >= self.start && t <= self.end()
    }

    /// The UTC day index of an instant (clamped into the window).
    pub(crate) fn day_of(&self, t: Micros) -> u32 {
        ((self.clamp(t) - self.start) / DAY) as u32
    }

    /// The month partition index of an instant.
    pub(crate) fn month_of(&self, t: Micros) -> usize {
        self.days[self.day_of(t) as usize].month
    }

    /// Days since the Unix epoch of a window day (for Date32 columns).
    pub(crate) fn epoch_day(&self, day: u32) -> i32 {
        self.start_epoch_day + day as i32
    }

    /// A day in `first..=last` drawn with the activity's weekly and seasonal weights.
    pub(crate) fn sample_day(
        &self,
        rng: &mut Pcg64,
        activity: Activity,
        first: u32,
        last: u32,
    ) -> u32 {
        let table = match activity {
            Activity::Store => &self.store_days,
            Activity::Web => &self.web_days,
            Activity::App => &self.app_days,
        };
        table.sample_range(rng, first as usize, last as usize) as u32
    }

    /// A local time of day (seconds since local midnight) typical of the activity.
    pub(crate) fn sample_local_seconds(&self, rng: &mut Pcg64, activity: Activity) -> u32 {
        let hours = match activity {
            Activity::Store => &STORE_HOURS,
            Activity::Web => &WEB_HOURS,
            Activity::App => &APP_HOURS,
        };
        let table: [(u32, f64); 24] = std::array::from_fn(|h| (h as u32, hours[h]));
        let hour = *pick_weighted(rng, &table);
        hour * 3600 + between(rng, 0, 3599) as u32
    }

    /// The UTC instant of a French local time on a window day, clamped into the window.
    pub(crate) fn local_instant(&self, day: u32, local_seconds: u32, micros: u32) -> Micros {
        let offset = self.days[day as usize].utc_offset_hours * HOUR;
        let t = self.start
            + i64::from(day) * DAY
            + i64::from(local_seconds) * SECOND
            + i64::from(micros)
            - offset;
        // Just after midnight on the first day, local time is still before the window:
        // keep the clock time rather than piling events onto the first instant.
        let t = if t < self.start { t + offset } else { t };
        self.clamp(t)
    }

    /// A random instant on a day drawn for the activity within `first..=last`.
    pub(crate) fn sample_instant(
        &self,
        rng: &mut Pcg64,
        activity: Activity,
        first: u32,
        last: u32,
    ) -> Micros {
        let day = self.sample_day(rng, activity, first, last);
        self.instant_on(rng, activity, day)
    }

    /// A random instant during the activity's hours on a given day.
    pub(crate) fn instant_on(&self, rng: &mut Pcg64, activity: Activity, day: u32) -> Micros {
        let seconds = self.sample_local_seconds(rng, activity);
        let micros = between(rng, 0, 999_999) as u32;
        self.local_instant(day, seconds, micros)
    }

    pub(crate) fn sale(&self, day: u32) -> Sale {
        self.days[day as usize].sale
    }

    /// Window day index of a calendar date (must be inside the window).
    pub(crate) fn day_index(&self, d: NaiveDate) -> u32 {
        (epoch_days(d) - i64::from(self.start_epoch_day)).clamp(0, i64::from(WINDOW_DAYS) - 1)
            as u32
    }
}

fn in_range(d: NaiveDate, from: NaiveDate, to: NaiveDate) -> bool {
    d >= from && d <= to
}

/// French winter and summer sales ("soldes"), 4 weeks from the legal opening Wednesday.
type Ymd = (i32, u32, u32);

const SOLDES: [(Ymd, Ymd); 4] = [
    ((2025, 1, 8), (2025, 2, 4)),
    ((2025, 6, 25), (2025, 7, 22)),
    ((2026, 1, 7), (2026, 2, 3)),
    ((2026, 6, 24), (2026, 7, 21)),
];
const BLACK_FRIDAYS: [Ymd; 2] = [(2024, 11, 29), (2025, 11, 28)];
const MOTHERS_DAYS: [Ymd; 2] = [(2025, 5, 25), (2026, 5, 31)];

fn ymd((y, m, d): Ymd) -> NaiveDate {
    date(y, m, d)
}

fn describe_day(d: NaiveDate) -> Day {
    let summer_time = in_range(d, date(2025, 3, 30), date(2025, 10, 25))
        || in_range(d, date(2026, 3, 29), date(2026, 10, 24));
    let sale = if BLACK_FRIDAYS.iter().any(|bf| {
        let bf = ymd(*bf);
        in_range(d, bf - chrono::Days::new(7), bf + chrono::Days::new(3))
    }) {
        Sale::BlackFriday
    } else if SOLDES.iter().any(|(a, b)| in_range(d, ymd(*a), ymd(*b))) {
        Sale::Soldes
    } else {
        Sale::None
    };
    Day {
        date: d,
        month: ((d.year() - 2024) * 12 + d.month() as i32 - 11) as usize,
        utc_offset_hours: if summer_time { 2 } else { 1 },
        sale,
    }
}

/// Relative volume of an activity on a day: weekly cycle x seasonality x slow growth.
fn day_weight(day: &Day, activity: Activity) -> f64 {
    let d = day.date;
    let weekday = d.weekday().num_days_from_monday() as usize;
    let week = match activity {
        Activity::Store => STORE_WEEK[weekday],
        Activity::Web | Activity::App => WEB_WEEK[weekday],
    };
    let years_in = (d - date(2024, 11, 1)).num_days() as f64 / 365.0;
    week * season_factor(d, activity) * (1.0 + 0.08 * years_in)
}

fn season_factor(d: NaiveDate, activity: Activity) -> f64 {
    let store = activity == Activity::Store;
    let (m, day) = (d.month(), d.day());
    // Public holidays when stores are closed.
    if store && ((m == 12 && day == 25) || (m == 1 && day == 1) || (m == 5 && day == 1)) {
        return 0.0;
    }
    let mut f = 1.0;
    for (a, b) in SOLDES {
        let (a, b) = (ymd(a), ymd(b));
        if in_range(d, a, a + chrono::Days::new(6)) {
            f *= 2.2;
        } else if in_range(d, a, b) {
            f *= 1.5;
        }
    }
    for bf in BLACK_FRIDAYS {
        let bf = ymd(bf);
        let cyber_monday = bf + chrono::Days::new(3);
        if d == bf {
            f *= if store { 2.4 } else { 3.0 };
        } else if d == cyber_monday && !store {
            f *= 2.2;
        } else if in_range(d, bf - chrono::Days::new(4), cyber_monday) {
            f *= 1.3;
        }
    }
    for md in MOTHERS_DAYS {
        let md = ymd(md);
        if in_range(d, md - chrono::Days::new(6), md) {
            f *= 1.25;
        }
    }
    f * match (m, day) {
        (12, 1..=15) => 1.35,
        (12, 16..=23) => 1.9,
        (12, 24) => {
            if store {
                1.3
            } else {
                0.8
            }
        }
        (12, 25) => 0.5,
        (8, _) => {
            if store {
                0.8
            } else {
                0.9
            }
        }
        (2 | 3, _) => 0.92,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream_rng};

    #[test]
    fn window_bounds_and_months() {
        let cal = Calendar::new();
        assert_eq!(cal.start, 1_730_419_200 * SECOND);
        assert_eq!(cal.end(), 1_793_491_199 * SECOND + 999_999);
        assert_eq!(cal.month_labels[0], "2024-11");
        assert_eq!(cal.month_labels[23], "2026-10");
        assert_eq!(cal.days[0].month, 0);
        assert_eq!(cal.days[729].month, 23);
        assert_eq!(cal.days[729].date, date(2026, 10, 31));
    }

    #[test]
    fn sampled_instants_stay_in_window_and_respect_store_closures() {
        let cal = Calendar::new();
        let mut rng = stream_rng(3, Stream::Catalog, 9);
        let christmas = cal.day_index(date(2025, 12, 25));
        for _ in 0..5000 {
            let t = cal.sample_instant(&mut rng, Activity::Store, 0, WINDOW_DAYS - 1);
            assert!(cal.contains(t));
            assert_ne!(cal.day_of(t), christmas);
        }
    }

    #[test]
    fn black_friday_outsells_an_ordinary_friday() {
        let cal = Calendar::new();
        let bf = &cal.days[cal.day_index(date(2025, 11, 28)) as usize];
        let ordinary = &cal.days[cal.day_index(date(2025, 10, 10)) as usize];
        assert!(day_weight(bf, Activity::Web) > 2.5 * day_weight(ordinary, Activity::Web));
        assert_eq!(bf.sale, Sale::BlackFriday);
    }
}
