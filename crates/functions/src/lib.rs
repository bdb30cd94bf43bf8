//! The SQL functions cdphub adds to every DataFusion session (CLI, model runner, Flight
//! server): identifier cleaning, identity stitching, survivorship, run context, lifetime
//! value (BG/NBD and Gamma-Gamma), the analysis date and (through [`register_attribution`])
//! marketing attribution.

pub mod analytics;
pub mod attribution;
pub mod cleaning;
pub mod config;
pub mod error;
pub mod identity;
pub mod lists;
pub mod ltv;
pub mod ranking;
pub mod run_context;
pub mod survive;

use std::sync::Arc;

use datafusion::prelude::SessionContext;

pub use analytics::AnalyticsConfig;
pub use attribution::{AttributionSettings, register as register_attribution};
pub use config::{IdentityConfig, StitchRules};
pub use error::{FunctionError, Result};

use crate::cleaning::{CleaningFunction, parse_region};
use crate::identity::StitchFunction;
use crate::ranking::{IdentifierKey, RankFunction};

/// Registers every cdphub function in `ctx`, configured by the `[identity]` section.
/// `origin` names the config file for errors.
pub fn register_all(ctx: &SessionContext, config: &IdentityConfig, origin: &str) -> Result<()> {
    // Compiling the rules checks the whole section once, up front.
    StitchRules::compile(config, origin)?;
    let region = parse_region(&config.default_region).expect("checked by compile");
    ctx.register_udf(CleaningFunction::email(config.email.clone()));
    ctx.register_udf(CleaningFunction::phone(region));
    ctx.register_udf(CleaningFunction::name());
    ctx.register_udf(RankFunction::id_priority(config.priority.clone()));
    ctx.register_udf(IdentifierKey::udf(config.priority.clone()));
    ctx.register_udf(RankFunction::source_priority(
        config.source_priority.clone(),
    ));
    for udf in run_context::run_functions(None) {
        ctx.register_udf(udf);
    }
    ctx.register_udaf(survive::Survive::udaf(config.source_priority.clone()));
    ctx.register_udf(lists::ListField::udf());
    ctx.register_udtf("stitch", Arc::new(StitchFunction::new(config.clone())));
    // Lifetime value, and analysis_date() as NULL until analytics::register sets it.
    for udaf in ltv::aggregate_functions() {
        ctx.register_udaf(udaf);
    }
    for udf in ltv::scalar_functions() {
        ctx.register_udf(udf);
    }
    analytics::register(ctx, &AnalyticsConfig::default());
    Ok(())
}

/// The text of a string scalar; `None` for NULL or a scalar of another type.
pub(crate) fn scalar_text(value: &datafusion::common::ScalarValue) -> Option<String> {
    use datafusion::common::ScalarValue;
    match value {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => v.clone(),
        _ => None,
    }
}

/// `result`, computed row by row over `args`, in the shape DataFusion expects back: a scalar
/// when every argument was one (a constant expression), else the array.
pub(crate) fn shaped_like(
    args: &[datafusion::logical_expr::ColumnarValue],
    result: arrow::array::ArrayRef,
) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    Ok(
        if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&result, 0)?)
        } else {
            ColumnarValue::Array(result)
        },
    )
}
