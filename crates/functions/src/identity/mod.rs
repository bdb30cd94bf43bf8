//! Identity resolution: the stitch and the helpers identity models use.

pub mod interner;
pub(crate) mod parallel;
pub mod stitch;
pub mod table_function;

pub use stitch::{
    IdentifierStatus, IdentityGraph, PreviousId, StitchStats, Stitched, StitchedIdentifier,
};
pub use table_function::{LINK_COLUMNS, StitchFunction, stitch_schema};
