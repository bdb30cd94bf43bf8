//! Marketing attribution as SQL, configured by the `[attribution]` section:
//! - [`settings`]: `channel_group`, `is_conversion`, `attribution_lookback()`,
//!   `attribution_max_steps()`, `attribution_collapse_repeats()`, `attribution_models()`;
//! - [`aggregate`]: `attribute(path, conversions, non_conversions [, revenue], model)`, channel
//!   credits over aggregated paths (every model but `time_decay`);
//! - [`journey`]: `attribute_journey(...)` (rule models, per conversion) and
//!   `credit_path(...)` (a conversion spread over its path by channel-level values).

pub mod aggregate;
pub mod config;
pub mod journey;
pub mod settings;

use std::sync::Arc;

use datafusion::prelude::SessionContext;

pub use config::{AttributionSettings, ChannelRule, CompiledAttribution, ConversionRule};

use crate::error::Result;

/// Checks `settings` and registers every attribution function in `ctx`. `origin` names the
/// config file for errors.
pub fn register(ctx: &SessionContext, settings: &AttributionSettings, origin: &str) -> Result<()> {
    let compiled = Arc::new(settings.compile(origin)?);
    settings::register(ctx, &compiled);
    for udf in journey::functions(&compiled.model_config) {
        ctx.register_udf(udf);
    }
    ctx.register_udaf(aggregate::Attribute::udaf(&compiled.model_config));
    Ok(())
}
