//! The retailer's product catalogue and its marketing campaigns (ads and emails).

use chrono::{Datelike, Weekday};
use rand_pcg::Pcg64;

use crate::calendar::{Calendar, HOUR, MINUTE, Micros, WINDOW_DAYS, date};
use crate::reference::{CATEGORIES, COLOURS, PRODUCT_TEMPLATES, SCENTS};
use crate::rng::{CumulativeTable, Stream, between, stream_rng, unit};

#[derive(Debug)]
pub(crate) struct Product {
    pub id: String,
    pub name: String,
    pub category: usize,
    pub price_cents: i64,
}

#[derive(Debug)]
pub(crate) struct Catalog {
    pub products: Vec<Product>,
    /// Product indices per category, most popular first.
    by_category: Vec<Vec<u32>>,
    /// Zipf-like popularity per category.
    popularity: Vec<CumulativeTable>,
}

impl Catalog {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = stream_rng(seed, Stream::Catalog, 0);
        let mut products = Vec::new();
        let mut by_category = vec![Vec::new(); CATEGORIES.len()];
        for (category, templates) in PRODUCT_TEMPLATES.iter().enumerate() {
            for (base_name, base_price) in *templates {
                let variants = if category == 4 { SCENTS } else { COLOURS };
                for variant in variants.iter() {
                    if unit(&mut rng) >= 0.6 {
                        continue;
                    }
                    by_category[category].push(products.len() as u32);
                    products.push(Product {
                        id: format!("PRD{:05}", 10_001 + products.len()),
                        name: format!("{base_name} {variant}"),
                        category,
                        price_cents: retail_price(&mut rng, *base_price),
                    });
                }
            }
        }
        // Shuffle popularity so the best sellers are not simply the first templates.
        for ids in &mut by_category {
            for i in (1..ids.len()).rev() {
                ids.swap(i, between(&mut rng, 0, i as u64) as usize);
            }
        }
        let popularity = by_category
            .iter()
            .map(|ids| {
                CumulativeTable::new((1..=ids.len()).map(|rank| 1.0 / (rank as f64).powf(0.9)))
            })
            .collect();
        Self {
            products,
            by_category,
            popularity,
        }
    }

    /// A product of the category, popular ones more often.
    pub(crate) fn sample(&self, rng: &mut Pcg64, category: usize) -> u32 {
        self.by_category[category][self.popularity[category].sample(rng)]
    }
}

/// A price near the template's base, ending in .99 / .95 / .00 like real price tags.
fn retail_price(rng: &mut Pcg64, base_cents: i64) -> i64 {
    let euros = (base_cents as f64 / 100.0 * (0.85 + 0.4 * unit(rng)))
        .round()
        .max(3.0) as i64;
    match between(rng, 0, 9) {
        0..=6 => euros * 100 - 1,
        7 | 8 => euros * 100 - 5,
        _ => euros * 100,
    }
}

// ---------------------------------------------------------------------------------------
// Paid media campaigns.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdChannel {
    PaidSearch,
    PaidSocial,
    Display,
    Affiliate,
}

impl AdChannel {
    pub(crate) const ALL: [AdChannel; 4] = [
        Self::PaidSearch,
        Self::PaidSocial,
        Self::Display,
        Self::Affiliate,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::PaidSearch => "paid_search",
            Self::PaidSocial => "paid_social",
            Self::Display => "display",
            Self::Affiliate => "affiliate",
        }
    }

    pub(crate) fn platform(self) -> &'static str {
        match self {
            Self::PaidSearch => "google_ads",
            Self::PaidSocial => "meta",
            Self::Display => "criteo",
            Self::Affiliate => "awin",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::PaidSearch => "GA",
            Self::PaidSocial => "META",
            Self::Display => "CRT",
            Self::Affiliate => "AWIN",
        }
    }

    fn platform_label(self) -> &'static str {
        match self {
            Self::PaidSearch => "Google Ads",
            Self::PaidSocial => "Meta",
            Self::Display => "Criteo",
            Self::Affiliate => "Awin",
        }
    }

    /// The utm_medium tracked on visits from this channel.
    pub(crate) fn utm_medium(self) -> &'static str {
        match self {
            Self::PaidSearch => "cpc",
            Self::PaidSocial => "paid_social",
            Self::Display => "display",
            Self::Affiliate => "affiliate",
        }
    }

    /// Typical click-through rate and cost per click (EUR).
    pub(crate) fn economics(self) -> (f64, f64) {
        match self {
            Self::PaidSearch => (0.045, 0.48),
            Self::PaidSocial => (0.011, 0.36),
            Self::Display => (0.0035, 0.27),
            Self::Affiliate => (0.02, 0.32),
        }
    }
}

#[derive(Debug)]
pub(crate) struct AdCampaign {
    pub id: String,
    pub name: String,
    pub channel: AdChannel,
    pub first_day: u32,
    pub last_day: u32,
    /// Relative share of the channel's paid visits while active (seasonal pushes spend more).
    pub weight: f64,
    pub landing: &'static str,
}

#[derive(Debug)]
pub(crate) struct EmailCampaign {
    pub id: String,
    pub send_at: Micros,
    pub landing: &'static str,
}

/// All campaigns and a per-day index of the active ad campaigns.
#[derive(Debug)]
pub(crate) struct Campaigns {
    pub ads: Vec<AdCampaign>,
    pub emails: Vec<EmailCampaign>,
    /// `active[channel][day]` = (campaign index, weight) of campaigns running that day.
    active: Vec<Vec<Vec<(u16, f64)>>>,
}

type Ymd = (i32, u32, u32);

/// A seasonal push run on several ad platforms.
struct SeasonalPush {
    slug: &'static str,
    label: &'static str,
    landing: &'static str,
    channels: &'static [AdChannel],
    ranges: &'static [(Ymd, Ymd)],
}

const SEASONAL: &[SeasonalPush] = &[
    SeasonalPush {
        slug: "soldes-hiver",
        label: "Soldes d'hiver",
        landing: "/soldes",
        channels: &[
            AdChannel::PaidSearch,
            AdChannel::PaidSocial,
            AdChannel::Display,
        ],
        ranges: &[((2025, 1, 8), (2025, 2, 4)), ((2026, 1, 7), (2026, 2, 3))],
    },
    SeasonalPush {
        slug: "soldes-ete",
        label: "Soldes d'été",
        landing: "/soldes",
        channels: &AdChannel::ALL,
        ranges: &[
            ((2025, 6, 25), (2025, 7, 22)),
            ((2026, 6, 24), (2026, 7, 21)),
        ],
    },
    SeasonalPush {
        slug: "black-friday",
        label: "Black Friday",
        landing: "/black-friday",
        channels: &AdChannel::ALL,
        ranges: &[
            ((2024, 11, 22), (2024, 12, 2)),
            ((2025, 11, 21), (2025, 12, 1)),
        ],
    },
    SeasonalPush {
        slug: "noel",
        label: "Noël",
        landing: "/noel",
        channels: &[AdChannel::PaidSearch, AdChannel::PaidSocial],
        ranges: &[
            ((2024, 12, 3), (2024, 12, 24)),
            ((2025, 12, 2), (2025, 12, 24)),
        ],
    },
    SeasonalPush {
        slug: "fete-des-meres",
        label: "Fête des mères",
        landing: "/fete-des-meres",
        channels: &[AdChannel::PaidSocial],
        ranges: &[
            ((2025, 5, 12), (2025, 5, 25)),
            ((2026, 5, 18), (2026, 5, 31)),
        ],
    },
    SeasonalPush {
        slug: "rentree",
        label: "Rentrée",
        landing: "/rentree",
        channels: &[AdChannel::PaidSearch],
        ranges: &[
            ((2025, 8, 18), (2025, 9, 14)),
            ((2026, 8, 17), (2026, 9, 13)),
        ],
    },
];

/// Always-on campaigns, one per calendar year: (channel, slug, label, landing).
const ALWAYS_ON: &[(AdChannel, &str, &str, &str)] = &[
    (AdChannel::PaidSearch, "marque", "Marque", "/"),
    (
        AdChannel::PaidSearch,
        "generique",
        "Générique",
        "/nouveautes",
    ),
    (
        AdChannel::PaidSocial,
        "prospection",
        "Prospection",
        "/nouveautes",
    ),
    (AdChannel::Display, "retargeting", "Retargeting", "/"),
    (AdChannel::Affiliate, "partenaires", "Partenaires", "/"),
];

/// Weekly newsletter themes and their landing pages.
const NEWSLETTER_THEMES: &[(&str, &str)] = &[
    ("nouveautes", "/nouveautes"),
    ("tendances", "/femme"),
    ("maison", "/maison"),
    ("inspiration", "/nouveautes"),
    ("homme", "/homme"),
    ("enfant", "/enfant"),
    ("beaute", "/beaute"),
    ("accessoires", "/accessoires"),
    ("chaussures", "/chaussures"),
];

/// Special email campaigns: (send date, slug, landing).
const SPECIAL_EMAILS: &[(Ymd, &str, &str)] = &[
    ((2024, 11, 29), "black-friday", "/black-friday"),
    ((2024, 12, 10), "noel", "/noel"),
    ((2025, 1, 8), "soldes-hiver", "/soldes"),
    ((2025, 5, 20), "fete-des-meres", "/fete-des-meres"),
    ((2025, 6, 25), "soldes-ete", "/soldes"),
    ((2025, 9, 2), "rentree", "/rentree"),
    ((2025, 11, 28), "black-friday", "/black-friday"),
    ((2025, 12, 9), "noel", "/noel"),
    ((2026, 1, 7), "soldes-hiver", "/soldes"),
    ((2026, 5, 26), "fete-des-meres", "/fete-des-meres"),
    ((2026, 6, 24), "soldes-ete", "/soldes"),
    ((2026, 9, 1), "rentree", "/rentree"),
];

impl Campaigns {
    pub(crate) fn new(calendar: &Calendar) -> Self {
        let ads = ad_campaigns(calendar);
        let mut active = vec![vec![Vec::new(); WINDOW_DAYS as usize]; AdChannel::ALL.len()];
        for (index, campaign) in ads.iter().enumerate() {
            let channel = AdChannel::ALL
                .iter()
                .position(|c| *c == campaign.channel)
                .unwrap_or(0);
            for day in campaign.first_day..=campaign.last_day {
                active[channel][day as usize].push((index as u16, campaign.weight));
            }
        }
        Self {
            ads,
            emails: email_campaigns(calendar),
            active,
        }
    }

    /// An ad campaign of `channel` running on `day`, if any.
    pub(crate) fn active_ad(&self, rng: &mut Pcg64, channel: AdChannel, day: u32) -> Option<u16> {
        let index = AdChannel::ALL.iter().position(|c| *c == channel)?;
        let running = &self.active[index][day as usize];
        if running.is_empty() {
            return None;
        }
        Some(*crate::rng::pick_weighted(rng, running))
    }
}

fn ad_campaigns(calendar: &Calendar) -> Vec<AdCampaign> {
    let day = |(y, m, d): Ymd| calendar.day_index(date(y, m, d));
    let mut ads = Vec::new();
    for year in [2024, 2025, 2026] {
        let first = day((year, 1, 1).max((2024, 11, 1)));
        let last = day((year, 12, 31).min((2026, 10, 31)));
        for (channel, slug, label, landing) in ALWAYS_ON {
            ads.push(AdCampaign {
                id: format!("{}-{year}-{slug}", channel.code()),
                name: format!("{} - {label} {year}", channel.platform_label()),
                channel: *channel,
                first_day: first,
                last_day: last,
                weight: 1.0,
                landing,
            });
        }
    }
    for SeasonalPush {
        slug,
        label,
        landing,
        channels,
        ranges,
    } in SEASONAL
    {
        for (from, to) in *ranges {
            for channel in *channels {
                ads.push(AdCampaign {
                    id: format!("{}-{}-{slug}", channel.code(), from.0),
                    name: format!("{} - {label} {}", channel.platform_label(), from.0),
                    channel: *channel,
                    first_day: day(*from),
                    last_day: day(*to),
                    weight: 3.0,
                    landing,
                });
            }
        }
    }
    ads
}

fn email_campaigns(calendar: &Calendar) -> Vec<EmailCampaign> {
    let mut emails = Vec::new();
    // The weekly newsletter goes out every Tuesday at 09:30 local time.
    let mut theme = 0;
    for (index, day) in calendar.days.iter().enumerate() {
        if day.date.weekday() != Weekday::Tue {
            continue;
        }
        let (slug, landing) = NEWSLETTER_THEMES[theme % NEWSLETTER_THEMES.len()];
        theme += 1;
        emails.push(EmailCampaign {
            id: format!(
                "EM-{}-{:02}-{slug}-s{:02}",
                day.date.year(),
                day.date.month(),
                day.date.iso_week().week()
            ),
            send_at: calendar.local_instant(index as u32, 9 * 3600 + 30 * 60, 0),
            landing,
        });
    }
    for ((y, m, d), slug, landing) in SPECIAL_EMAILS {
        let day = calendar.day_index(date(*y, *m, *d));
        emails.push(EmailCampaign {
            id: format!("EM-{y}-{m:02}-{slug}"),
            send_at: calendar.local_instant(day, 7 * 3600, 0) + 30 * MINUTE,
            landing,
        });
    }
    emails.sort_by_key(|c| c.send_at);
    debug_assert!(emails.iter().all(|c| c.send_at + HOUR < calendar.end()));
    emails
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaigns_have_expected_shape() {
        let calendar = Calendar::new();
        let campaigns = Campaigns::new(&calendar);
        assert!(
            (40..=50).contains(&campaigns.ads.len()),
            "{}",
            campaigns.ads.len()
        );
        assert!(campaigns.ads.iter().any(|c| c.id == "GA-2025-soldes-ete"));
        assert!(
            campaigns
                .emails
                .iter()
                .any(|c| c.id == "EM-2025-11-black-friday")
        );
        assert!((100..=130).contains(&campaigns.emails.len()));
        let mut ids: Vec<&str> = campaigns.ads.iter().map(|c| c.id.as_str()).collect();
        ids.extend(campaigns.emails.iter().map(|c| c.id.as_str()));
        let before = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), before, "campaign ids are unique");
        // Every channel has an always-on campaign every day.
        let mut rng = stream_rng(1, Stream::Catalog, 5);
        for day in 0..WINDOW_DAYS {
            for channel in AdChannel::ALL {
                assert!(campaigns.active_ad(&mut rng, channel, day).is_some());
            }
        }
    }

    #[test]
    fn catalogue_is_deterministic_with_unique_ids() {
        let a = Catalog::new(5);
        let b = Catalog::new(5);
        assert_eq!(a.products.len(), b.products.len());
        assert!(a.products.len() > 300);
        let mut ids: Vec<&str> = a.products.iter().map(|p| p.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), a.products.len());
        assert!(a.products.iter().all(|p| p.price_cents > 0));
    }
}
