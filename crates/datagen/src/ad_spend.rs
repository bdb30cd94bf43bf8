//! Daily ad platform reports, consistent with the tracked paid visits: each day's clicks
//! are at least the visits that carried the campaign's utm_campaign that day (some
//! clicks are never tracked: consent refusals, ad blockers, bounces before the tag fires).

use arrow::array::{ArrayRef, Date32Array};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use std::sync::Arc;

use crate::calendar::WINDOW_DAYS;
use crate::columns::{Text, int64, money};
use crate::plan::Plan;
use crate::rng::{Stream, between, stream_rng, unit};

/// Tracked paid visits per (campaign, UTC day).
pub(crate) struct AdVisits {
    counts: Vec<u32>,
}

impl AdVisits {
    pub(crate) fn new(campaigns: usize) -> Self {
        Self {
            counts: vec![0; campaigns * WINDOW_DAYS as usize],
        }
    }

    pub(crate) fn add(&mut self, visits: &[(u16, u32)]) {
        for &(campaign, day) in visits {
            self.counts[usize::from(campaign) * WINDOW_DAYS as usize + day as usize] += 1;
        }
    }

    fn get(&self, campaign: usize, day: u32) -> u64 {
        u64::from(self.counts[campaign * WINDOW_DAYS as usize + day as usize])
    }
}

/// One row per campaign per active day, ordered by date then campaign.
pub(crate) fn ad_spend_batch(plan: &Plan, visits: &AdVisits) -> Result<RecordBatch, ArrowError> {
    let ads = &plan.campaigns.ads;
    let (mut dates, mut impressions, mut clicks, mut costs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let n = ads.len() * WINDOW_DAYS as usize;
    let (mut platform, mut channel, mut id, mut name) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    for day in 0..WINDOW_DAYS {
        for (index, campaign) in ads.iter().enumerate() {
            if day < campaign.first_day || day > campaign.last_day {
                continue;
            }
            let mut rng = stream_rng(
                plan.seed,
                Stream::AdSpend,
                (index as u64) << 16 | u64::from(day),
            );
            let tracked = visits.get(index, day);
            let untracked = (tracked as f64 * (0.15 + 0.3 * unit(&mut rng))).round() as u64;
            let day_clicks = tracked + untracked + between(&mut rng, 0, 2);
            let (ctr, cpc) = campaign.channel.economics();
            let ctr = ctr * (0.8 + 0.4 * unit(&mut rng));
            let cpc =
                cpc * (0.85 + 0.3 * unit(&mut rng)) * if campaign.weight > 1.0 { 1.3 } else { 1.0 };
            dates.push(plan.calendar.epoch_day(day));
            impressions
                .push((day_clicks as f64 / ctr).round() as i64 + between(&mut rng, 0, 40) as i64);
            clicks.push(day_clicks as i64);
            costs.push((day_clicks as f64 * cpc * 100.0).round() as i64);
            platform.str(campaign.channel.platform());
            channel.str(campaign.channel.as_str());
            id.str(&campaign.id);
            name.str(&campaign.name);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(dates)),
        platform.finish(),
        channel.finish(),
        id.finish(),
        name.finish(),
        int64(impressions),
        int64(clicks),
        money(costs.into_iter())?,
    ];
    RecordBatch::try_new(crate::schema::ad_spend(), columns)
}
