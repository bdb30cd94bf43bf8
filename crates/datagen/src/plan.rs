//! Everything shared by all persons of one run: the calendar, catalogue, campaigns, keys.

use crate::calendar::Calendar;
use crate::catalog::{Campaigns, Catalog};
use crate::population::IdKeys;

#[derive(Debug)]
pub(crate) struct Plan {
    pub seed: u64,
    pub calendar: Calendar,
    pub catalog: Catalog,
    pub campaigns: Campaigns,
    pub keys: IdKeys,
}

impl Plan {
    pub(crate) fn new(seed: u64) -> Self {
        let calendar = Calendar::new();
        let campaigns = Campaigns::new(&calendar);
        Self {
            seed,
            catalog: Catalog::new(seed),
            campaigns,
            calendar,
            keys: IdKeys::new(seed),
        }
    }
}
