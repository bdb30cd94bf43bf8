//! Channel-level results, and how they credit a single conversion.

use crate::credits::{Credits, absorb_rounding};
use crate::error::Result;
use crate::fast_hash::FastMap;
use crate::markov::MarkovSummary;
use crate::model::Model;

/// Credit of one channel over all paths.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelCredit {
    /// The channel's name, as in the paths.
    pub channel: String,
    /// Conversions credited to the channel; over all channels they sum to the total.
    pub conversions: f64,
    /// Revenue credited to the channel; over all channels it sums to the total.
    pub revenue: f64,
    /// Markov models only: the share of conversions lost when the channel is removed.
    pub removal_effect: Option<f64>,
}

/// What a model credits each channel over a [`crate::PathSet`], channels sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelAttribution {
    model: Model,
    channels: Vec<ChannelCredit>,
    index: FastMap<String, usize>,
    total_conversions: f64,
    total_revenue: f64,
    markov: Option<MarkovSummary>,
}

/// Channel-level numbers in [`crate::PathSet`] id order, before sorting by name.
pub(crate) struct ChannelTotals<'a> {
    pub names: &'a [String],
    pub conversions: Vec<f64>,
    pub revenue: Vec<f64>,
    pub removal_effects: Option<Vec<f64>>,
}

impl<'a> ChannelTotals<'a> {
    /// Splits both totals over the channels in proportion to `values` (removal effects,
    /// Shapley values); all zero when every value is zero, as when nothing converted.
    pub(crate) fn proportional(
        names: &'a [String],
        values: &[f64],
        total_conversions: f64,
        total_revenue: f64,
    ) -> Self {
        let sum: f64 = values.iter().sum();
        let split = |total: f64| -> Vec<f64> {
            if sum > 0.0 {
                values.iter().map(|value| total * value / sum).collect()
            } else {
                vec![0.0; values.len()]
            }
        };
        Self {
            names,
            conversions: split(total_conversions),
            revenue: split(total_revenue),
            removal_effects: None,
        }
    }
}

impl ChannelAttribution {
    pub(crate) fn new(
        model: Model,
        totals: ChannelTotals<'_>,
        total_conversions: f64,
        total_revenue: f64,
        markov: Option<MarkovSummary>,
    ) -> Self {
        let ChannelTotals {
            names,
            mut conversions,
            mut revenue,
            removal_effects,
        } = totals;
        if conversions.iter().any(|&value| value != 0.0) {
            absorb_rounding(&mut conversions, total_conversions);
        }
        if revenue.iter().any(|&value| value != 0.0) {
            absorb_rounding(&mut revenue, total_revenue);
        }
        let mut channels: Vec<ChannelCredit> = names
            .iter()
            .enumerate()
            .map(|(id, name)| ChannelCredit {
                channel: name.clone(),
                conversions: conversions[id],
                revenue: revenue[id],
                removal_effect: removal_effects.as_ref().map(|effects| effects[id]),
            })
            .collect();
        // Name order keeps the output stable whatever order partial aggregates merged in.
        channels.sort_by(|a, b| a.channel.cmp(&b.channel));
        let index = channels
            .iter()
            .enumerate()
            .map(|(position, credit)| (credit.channel.clone(), position))
            .collect();
        Self {
            model,
            channels,
            index,
            total_conversions,
            total_revenue,
            markov,
        }
    }

    /// The model that produced these credits.
    pub fn model(&self) -> Model {
        self.model
    }

    /// One credit per channel seen in the paths, sorted by channel name.
    pub fn channels(&self) -> &[ChannelCredit] {
        &self.channels
    }

    /// The credit of `channel`, if it was seen.
    pub fn get(&self, channel: &str) -> Option<&ChannelCredit> {
        self.index
            .get(channel)
            .map(|&position| &self.channels[position])
    }

    /// Sum of conversions over the paths.
    pub fn total_conversions(&self) -> f64 {
        self.total_conversions
    }

    /// Sum of revenue over the paths.
    pub fn total_revenue(&self) -> f64 {
        self.total_revenue
    }

    /// Markov models only: size of the chain and how it was solved.
    pub fn markov(&self) -> Option<&MarkovSummary> {
        self.markov.as_ref()
    }

    /// Credits one conversion along `channels` with these channel-level values: each distinct
    /// channel of the path gets a share proportional to its credited conversions, split
    /// equally between its touchpoints when it repeats. Channels never seen count 0. If every
    /// channel of the path counts 0, the touchpoints share equally (as `linear`).
    pub fn credit_path<S: AsRef<str>>(
        &self,
        channels: &[S],
        revenue: f64,
        out: &mut Credits,
    ) -> Result<()> {
        let location = || format!("the {} path to credit", self.model);
        out.spread(channels, revenue, &location, |channel| {
            self.get(channel).map_or(0.0, |credit| credit.conversions)
        })
    }
}
