//! One person's two years: account, consents, emails, orders and web sessions, drawn from
//! the person's own random stream so every source tells a consistent story.

mod consents;
mod crm;
mod email;
mod orders;
mod profile;
mod web;

use rand_pcg::Pcg64;

use crate::plan::Plan;
use crate::population::Person;
use crate::rng::{Stream, stream_rng};
use crate::rows::ChunkRows;

pub(crate) use profile::{Devices, Profile};
pub(crate) use web::PlannedSession;

/// The state of one person's simulation.
pub(crate) struct PersonSim<'a> {
    plan: &'a Plan,
    person: &'a Person,
    index: u32,
    rng: Pcg64,
    profile: Profile,
    devices: Devices,
    /// Web and app sessions planned by the other activities, played back at the end.
    sessions: Vec<PlannedSession>,
    next_session: u32,
}

/// Generates all records of person `index` into `rows`.
pub(crate) fn simulate_person(plan: &Plan, person: &Person, index: u32, rows: &mut ChunkRows) {
    let mut rng = stream_rng(plan.seed, Stream::Life, u64::from(index));
    let profile = Profile::draw(&mut rng, plan, person);
    let devices = Devices::draw(&mut rng, plan, person, index, &profile);
    let mut sim = PersonSim {
        plan,
        person,
        index,
        rng,
        profile,
        devices,
        sessions: Vec::new(),
        next_session: 0,
    };
    sim.crm_records(rows);
    if let Some(subscription) = sim.consents(rows) {
        sim.email_events(subscription, rows);
    }
    sim.orders(rows);
    sim.plan_browsing(rows);
    sim.play_sessions(rows);
}
