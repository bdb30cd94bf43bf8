//! Who a person is as a shopper, and the browsers and phones they use.

use rand_pcg::Pcg64;

use crate::calendar::{Activity, DAY, Micros, WINDOW_DAYS};
use crate::identifiers::{EmailStyle, PhoneFormat, ScrambledKind, email_variant, scrambled_id};
use crate::plan::Plan;
use crate::population::{Account, Person};
use crate::reference::{FEMALE_CATEGORY_WEIGHTS, MALE_CATEGORY_WEIGHTS};
use crate::rng::{between, chance, normal, pick_weighted};

const LAST_DAY: u32 = WINDOW_DAYS - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Buyer {
    Never,
    Occasional,
    Loyal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelMix {
    StoreOnly,
    WebFirst,
    Omni,
}

/// Where the customer account was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signup {
    /// Imported from the legacy loyalty system when the CRM went live (first week).
    Migrated,
    Store,
    Web,
    App,
}

#[derive(Debug)]
pub(crate) struct AccountLife {
    pub account: Account,
    pub signup: Signup,
    pub created_at: Micros,
    pub created_day: u32,
    /// The email as the CRM holds it; some store sign-ups gave none.
    pub crm_email: Option<String>,
    /// The format of the phone in the CRM, if one was given.
    pub crm_phone: Option<PhoneFormat>,
}

#[derive(Debug)]
pub(crate) struct Profile {
    /// Window days during which the person is an active shopper.
    pub first_day: u32,
    pub last_day: u32,
    pub account: Option<AccountLife>,
    pub buyer: Buyer,
    pub channels: ChannelMix,
    pub app_user: bool,
    pub browse_sessions: u32,
    /// Probability of opening a marketing email.
    pub open_rate: f64,
    pub category_weights: &'static [f64; 7],
}

impl Profile {
    pub(crate) fn draw(rng: &mut Pcg64, plan: &Plan, person: &Person) -> Self {
        let signup = person.account.map(|_| {
            *pick_weighted(
                rng,
                &[
                    (Signup::Migrated, 0.40),
                    (Signup::Store, 0.30),
                    (Signup::Web, 0.22),
                    (Signup::App, 0.08),
                ],
            )
        });
        let (first_day, last_day) = active_days(rng, signup);
        let account = person.account.zip(signup).map(|(account, signup)| {
            draw_account(rng, plan, person, account, signup, (first_day, last_day))
        });
        let has_account = account.is_some();
        let buyer = *pick_weighted(
            rng,
            &if has_account {
                [
                    (Buyer::Never, 0.12),
                    (Buyer::Occasional, 0.58),
                    (Buyer::Loyal, 0.30),
                ]
            } else {
                [
                    (Buyer::Never, 0.45),
                    (Buyer::Occasional, 0.52),
                    (Buyer::Loyal, 0.03),
                ]
            },
        );
        let channels = *pick_weighted(
            rng,
            &[
                (ChannelMix::StoreOnly, 0.42),
                (ChannelMix::WebFirst, 0.30),
                (ChannelMix::Omni, 0.28),
            ],
        );
        let app_user =
            person.shared_device.is_some() || chance(rng, if has_account { 0.30 } else { 0.06 });
        let span = f64::from(last_day - first_day + 1) / f64::from(WINDOW_DAYS);
        let browse_sessions = if chance(rng, 0.12) {
            0
        } else {
            let sessions = (1.5 + 0.9 * normal(rng)).exp().round() + 1.0;
            ((sessions * (0.3 + 0.7 * span)).round() as u32).clamp(1, 300)
        };
        let open_rate = *pick_weighted(rng, &[(0.55, 0.25), (0.20, 0.50), (0.04, 0.25)]);
        Self {
            first_day,
            last_day,
            account,
            buyer,
            channels,
            app_user,
            browse_sessions,
            open_rate,
            category_weights: if person.female {
                &FEMALE_CATEGORY_WEIGHTS
            } else {
                &MALE_CATEGORY_WEIGHTS
            },
        }
    }

    /// The account, if it already exists at `t` (people shop before they sign up).
    pub(crate) fn account_at(&self, t: Micros) -> Option<&AccountLife> {
        self.account.as_ref().filter(|a| a.created_at <= t)
    }

    pub(crate) fn customer_at(&self, t: Micros) -> Option<u32> {
        self.account_at(t).map(|a| a.account.customer)
    }

    pub(crate) fn loyalty_at(&self, t: Micros) -> Option<u64> {
        self.account_at(t).and_then(|a| a.account.loyalty)
    }

    /// The fraction of the window the person is active, for scaling activity counts.
    pub(crate) fn span_share(&self) -> f64 {
        f64::from(self.last_day - self.first_day + 1) / f64::from(WINDOW_DAYS)
    }
}

/// The CRM account: migrated accounts exist from the start, others open while the person
/// is an active shopper (`days`).
fn draw_account(
    rng: &mut Pcg64,
    plan: &Plan,
    person: &Person,
    account: Account,
    signup: Signup,
    (first_day, last_day): (u32, u32),
) -> AccountLife {
    let calendar = &plan.calendar;
    let first = first_day.max(7);
    let created_at = match signup {
        // The import ran over the CRM's first week, records stamped through the day.
        Signup::Migrated => calendar.start + between(rng, 0, 7 * DAY as u64 - 1) as i64,
        Signup::Store => calendar.sample_instant(rng, Activity::Store, first, last_day),
        Signup::Web => calendar.sample_instant(rng, Activity::Web, first, last_day),
        Signup::App => calendar.sample_instant(rng, Activity::App, first, last_day),
    };
    let in_store = matches!(signup, Signup::Migrated | Signup::Store);
    let crm_email = (!in_store || !chance(rng, 0.10)).then(|| {
        let style = *pick_weighted(
            rng,
            &[
                (EmailStyle::Exact, 0.86),
                (EmailStyle::Capitalized, 0.05),
                (EmailStyle::Upper, 0.03),
                (EmailStyle::Padded, 0.06),
            ],
        );
        email_variant(rng, &person.email, style)
    });
    let crm_phone = chance(rng, if in_store { 0.9 } else { 0.65 })
        .then(|| *pick_weighted(rng, &crate::identifiers::HAND_TYPED_PHONES));
    AccountLife {
        account,
        signup,
        created_day: calendar.day_of(created_at),
        created_at,
        crm_email,
        crm_phone,
    }
}

/// The days the person shops. Most are existing customers when the window opens; the
/// others are acquired during it. Some churn before it ends.
fn active_days(rng: &mut Pcg64, signup: Option<Signup>) -> (u32, u32) {
    let existing = signup == Some(Signup::Migrated) || chance(rng, 0.6);
    let first = if existing {
        0
    } else {
        between(rng, 0, u64::from(LAST_DAY)) as u32
    };
    let stays = chance(rng, if signup.is_some() { 0.88 } else { 0.80 });
    let last = if stays {
        LAST_DAY
    } else {
        between(rng, u64::from(first), u64::from(LAST_DAY)) as u32
    };
    (first, last)
}

/// A browser cookie or app install, used over a range of days.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeviceSpan {
    pub id: u64,
    pub last_day: u32,
    /// Whether the person ever logs in on this browser.
    pub logs_in: bool,
}

#[derive(Debug)]
pub(crate) struct Devices {
    /// Successive browser cookies (cookie churn: cleared cookies, new browsers).
    pub cookies: Vec<DeviceSpan>,
    /// Successive personal app installs (phone replaced).
    pub apps: Vec<DeviceSpan>,
    /// The household's family tablet.
    pub shared: Option<u64>,
}

impl Devices {
    pub(crate) fn draw(
        rng: &mut Pcg64,
        plan: &Plan,
        person: &Person,
        index: u32,
        profile: &Profile,
    ) -> Self {
        let key = plan.keys.scramble;
        let cookie_count = *pick_weighted(rng, &[(1u32, 0.50), (2, 0.35), (3, 0.15)]);
        let cookies = split_days(rng, profile.first_day, profile.last_day, cookie_count)
            .into_iter()
            .enumerate()
            .map(|(k, (_, last_day))| DeviceSpan {
                id: scrambled_id(key, ScrambledKind::Cookie, index, k as u32),
                last_day,
                logs_in: chance(rng, 0.72),
            })
            .collect();
        let app_count = if profile.app_user {
            *pick_weighted(rng, &[(1u32, 0.8), (2, 0.2)])
        } else {
            0
        };
        let apps = split_days(rng, profile.first_day, profile.last_day, app_count)
            .into_iter()
            .enumerate()
            .map(|(k, (_, last_day))| DeviceSpan {
                id: scrambled_id(key, ScrambledKind::Device, index, k as u32),
                last_day,
                logs_in: true,
            })
            .collect();
        Self {
            cookies,
            apps,
            shared: person.shared_device,
        }
    }

    /// The cookie in use on a day (the nearest one outside the person's active days).
    pub(crate) fn cookie_at(&self, day: u32) -> DeviceSpan {
        span_at(&self.cookies, day)
    }

    /// The personal app install in use on a day, if the person uses the app.
    pub(crate) fn app_at(&self, day: u32) -> Option<DeviceSpan> {
        (!self.apps.is_empty()).then(|| span_at(&self.apps, day))
    }
}

fn span_at(spans: &[DeviceSpan], day: u32) -> DeviceSpan {
    spans
        .iter()
        .find(|s| day <= s.last_day)
        .copied()
        .unwrap_or(spans[spans.len() - 1])
}

/// Splits `first..=last` into `n` consecutive non-empty ranges (fewer if too short).
fn split_days(rng: &mut Pcg64, first: u32, last: u32, n: u32) -> Vec<(u32, u32)> {
    if n == 0 {
        return Vec::new();
    }
    let n = n.min(last - first + 1);
    let mut cuts: Vec<u32> = Vec::with_capacity(n as usize);
    while cuts.len() + 1 < n as usize {
        let cut = between(rng, u64::from(first) + 1, u64::from(last)) as u32;
        if !cuts.contains(&cut) {
            cuts.push(cut);
        }
    }
    cuts.sort_unstable();
    let mut ranges = Vec::with_capacity(n as usize);
    let mut start = first;
    for cut in cuts {
        ranges.push((start, cut - 1));
        start = cut;
    }
    ranges.push((start, last));
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream_rng};

    #[test]
    fn split_days_covers_the_range_without_gaps() {
        let mut rng = stream_rng(1, Stream::Life, 1);
        for (first, last, n) in [(0, 729, 3), (700, 702, 3), (5, 5, 2), (10, 400, 1)] {
            let ranges = split_days(&mut rng, first, last, n);
            assert_eq!(ranges[0].0, first);
            assert_eq!(ranges[ranges.len() - 1].1, last);
            for w in ranges.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
            assert!(ranges.iter().all(|(a, b)| a <= b));
        }
    }
}
