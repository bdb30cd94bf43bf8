//! Times every model on random journeys: 1 to 10 touchpoints over the default channels.
//!
//! ```text
//! cargo run --release -p cdphub-attribution --example timing -- [journeys] [channels] [dense-max-states]
//! ```
//!
//! 3,000,000 journeys (scale 10) and 9 channels by default; `dense-max-states` overrides
//! the Markov solver setting of the same name. Rules credit every journey as a
//! conversion; the fitted models get each journey as a path that converted or not (about a
//! third convert), fit, then spread each conversion over its path. Random sequences of up to
//! 10 touchpoints are nearly all distinct, the worst case for the fitted models.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cdphub_attribution::{AttributionConfig, Attributor, Credits, Journey, Model, PathSet};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

const DEFAULT_CHANNELS: [&str; 9] = [
    "paid_search",
    "paid_social",
    "display",
    "email",
    "affiliate",
    "organic_search",
    "organic_social",
    "referral",
    "direct",
];
const MICROS_PER_SECOND: i64 = 1_000_000;
const CONVERSION_TIME: i64 = 1_700_000_000 * MICROS_PER_SECOND;

/// Journeys stored compactly; `load` expands one into reusable buffers.
struct Journeys {
    names: Vec<String>,
    channels: Vec<u16>,
    /// Seconds from each touchpoint to the conversion.
    ages: Vec<u32>,
    ends: Vec<usize>,
    converted: Vec<bool>,
    revenue: Vec<f64>,
}

impl Journeys {
    fn generate(count: usize, channel_count: usize) -> Self {
        let names: Vec<String> = (0..channel_count)
            .map(|i| match DEFAULT_CHANNELS.get(i) {
                Some(name) => (*name).to_string(),
                None => format!("campaign_{i}"),
            })
            .collect();
        let mut random = Pcg64::seed_from_u64(10);
        let mut journeys = Self {
            names,
            channels: Vec::new(),
            ages: Vec::new(),
            ends: Vec::with_capacity(count),
            converted: Vec::with_capacity(count),
            revenue: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let len = random.random_range(1..=10);
            let mut age = random.random_range(0..30 * 86_400u32);
            let mut odds = 0.15;
            for _ in 0..len {
                let channel = random.random_range(0..channel_count);
                // Some channels convert better, so the fitted models have something to find.
                odds += 0.02 * (channel % 4) as f64;
                journeys.channels.push(channel as u16);
                journeys.ages.push(age);
                age = age.saturating_sub(random.random_range(0..3 * 86_400));
            }
            journeys.ends.push(journeys.channels.len());
            journeys
                .converted
                .push(random.random_bool(f64::min(odds, 0.9)));
            journeys
                .revenue
                .push(f64::from(random.random_range(500..50_000u32)) / 100.0);
        }
        journeys
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn load<'a>(&'a self, index: usize, channels: &mut Vec<&'a str>, times: &mut Vec<i64>) {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.ends[previous]);
        let range = start..self.ends[index];
        channels.clear();
        channels.extend(
            self.channels[range.clone()]
                .iter()
                .map(|&id| self.names[usize::from(id)].as_str()),
        );
        times.clear();
        times.extend(
            self.ages[range]
                .iter()
                .map(|&age| CONVERSION_TIME - i64::from(age) * MICROS_PER_SECOND),
        );
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map_or(3_000_000, |a| a.parse().expect("journeys"));
    let channel_count: usize = args.next().map_or(9, |a| a.parse().expect("channels"));
    assert!((1..=u16::MAX as usize).contains(&channel_count));
    let mut config = AttributionConfig::default();
    if let Some(states) = args.next() {
        config.markov.dense_max_states = states.parse().expect("dense-max-states");
    }

    let started = Instant::now();
    let journeys = Journeys::generate(count, channel_count);
    let touches = journeys.channels.len();
    println!(
        "{count} journeys, {touches} touchpoints, {channel_count} channels, generated in {}",
        seconds(started.elapsed())
    );

    let (mut channels, mut times) = (Vec::new(), Vec::new());
    let mut credits = Credits::default();
    for model in Model::NAMES.iter().filter_map(|name| {
        let model: Model = name.parse().ok()?;
        model.is_heuristic().then_some(model)
    }) {
        let attributor = Attributor::new(model, config.clone()).expect("valid config");
        let started = Instant::now();
        let mut credited = 0.0;
        for index in 0..journeys.len() {
            journeys.load(index, &mut channels, &mut times);
            let journey = Journey {
                channels: &channels,
                touch_times: &times,
                conversion_time: CONVERSION_TIME,
                revenue: journeys.revenue[index],
            };
            attributor
                .credit_journey(&journey, &mut credits)
                .expect("valid journey");
            credited += credits.revenue[0];
        }
        black_box(credited);
        println!(
            "{model:<16} {count} journeys credited in {}",
            seconds(started.elapsed())
        );
    }

    let started = Instant::now();
    let mut paths = PathSet::new();
    let mut conversions = 0usize;
    for index in 0..journeys.len() {
        journeys.load(index, &mut channels, &mut times);
        let converted = journeys.converted[index];
        conversions += usize::from(converted);
        let (revenue, outcome) = if converted {
            (journeys.revenue[index], 1.0)
        } else {
            (0.0, 0.0)
        };
        paths
            .push(&channels, outcome, 1.0 - outcome, revenue)
            .expect("valid path");
    }
    println!(
        "path set of {} paths ({conversions} conversions) built in {}",
        paths.len(),
        seconds(started.elapsed())
    );

    for name in ["markov", "markov_2", "markov_3", "shapley"] {
        let attributor = Attributor::from_name(name, config.clone()).expect("valid config");
        let started = Instant::now();
        let fitted = attributor.attribute_paths(&paths).expect("fits");
        let fit_time = started.elapsed();
        let started = Instant::now();
        let mut credited = 0.0;
        for index in (0..journeys.len()).filter(|&i| journeys.converted[i]) {
            journeys.load(index, &mut channels, &mut times);
            fitted
                .credit_path(&channels, journeys.revenue[index], &mut credits)
                .expect("valid path");
            credited += credits.shares[0];
        }
        black_box(credited);
        let chain = fitted.markov().map_or(String::new(), |summary| {
            format!(
                ", {} states, {} transitions, {:?}",
                summary.states, summary.transitions, summary.solver
            )
        });
        println!(
            "{name:<16} fitted in {}{chain}; {conversions} conversions spread in {}",
            seconds(fit_time),
            seconds(started.elapsed()),
        );
    }
}
