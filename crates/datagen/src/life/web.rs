//! Web and app sessions: where visits come from, what happens in them, and when the
//! visitor is logged in.
//!
//! Other activities (orders, email clicks, newsletter sign-ups) plan sessions with fixed
//! steps; browsing adds free visits. Playback then walks all sessions in time order and
//! tracks on which browsers and apps the person stays logged in.

use crate::calendar::{Activity, Micros, SECOND};
use crate::catalog::AdChannel;
use crate::identifiers::{ScrambledKind, scrambled_id, typed_email};
use crate::life::PersonSim;
use crate::life::profile::DeviceSpan;
use crate::reference::{AFFILIATE_SITES, DISPLAY_SITES, REFERRAL_SITES};
use crate::rng::{between, chance, geometric, pick, pick_weighted, unit};
use crate::rows::{CampaignRef, ChunkRows, Page, Platform, Utm, WebEventRow, WebEventType};

/// One event of a planned session.
#[derive(Debug)]
pub(crate) struct Step {
    pub at: Micros,
    pub event: WebEventType,
    pub page: Page,
    pub product: Option<u32>,
    pub email: Option<String>,
}

impl Step {
    pub(crate) fn new(at: Micros, event: WebEventType, page: Page, product: Option<u32>) -> Self {
        Self {
            at,
            event,
            page,
            product,
            email: None,
        }
    }
}

/// The browser or app a session runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DeviceRef {
    Cookie {
        id: u64,
        logs_in: bool,
    },
    App(u64),
    /// The household's family tablet: never stays logged in, both members use it.
    Shared(u64),
}

impl DeviceRef {
    pub(crate) fn cookie(span: DeviceSpan) -> Self {
        Self::Cookie {
            id: span.id,
            logs_in: span.logs_in,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionKind {
    /// Free browsing: the visitor may log in.
    Browse,
    /// Ends with the checkout of an order placed logged in (`logged: true`) or as a guest.
    Checkout { logged: bool },
    /// Newsletter sign-up or email landing: no spontaneous login.
    Other,
}

/// Where a visit came from: set on the session's landing event only.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Source {
    pub referrer: Option<&'static str>,
    pub utm: Option<Utm>,
}

#[derive(Debug)]
pub(crate) struct PlannedSession {
    device: DeviceRef,
    source: Source,
    kind: SessionKind,
    steps: Vec<Step>,
}

#[derive(Clone, Copy)]
enum Traffic {
    Direct,
    OrganicSearch,
    OrganicSocial,
    Referral,
    Paid(AdChannel),
}

/// How web visits arrive (email visits come only from email clicks).
const WEB_TRAFFIC: [(Traffic, f64); 8] = [
    (Traffic::Direct, 0.28),
    (Traffic::OrganicSearch, 0.24),
    (Traffic::OrganicSocial, 0.06),
    (Traffic::Referral, 0.03),
    (Traffic::Paid(AdChannel::PaidSearch), 0.17),
    (Traffic::Paid(AdChannel::PaidSocial), 0.10),
    (Traffic::Paid(AdChannel::Display), 0.07),
    (Traffic::Paid(AdChannel::Affiliate), 0.05),
];

impl PersonSim<'_> {
    pub(super) fn plan_session(
        &mut self,
        device: DeviceRef,
        source: Source,
        kind: SessionKind,
        steps: Vec<Step>,
    ) {
        debug_assert!(!steps.is_empty());
        self.sessions.push(PlannedSession {
            device,
            source,
            kind,
            steps,
        });
    }

    /// The first event of a web visit starting at `at`, with its traffic source. Paid visits
    /// are counted per campaign and UTC day for ad_spend.
    pub(super) fn web_landing(&mut self, at: Micros, rows: &mut ChunkRows) -> (Source, Step) {
        let (source, page) = match *pick_weighted(&mut self.rng, &WEB_TRAFFIC) {
            Traffic::Direct => (Source::default(), self.browse_page(0.6)),
            Traffic::OrganicSearch => (
                Source {
                    referrer: Some("google.com"),
                    utm: None,
                },
                self.browse_page(0.3),
            ),
            Traffic::OrganicSocial => {
                let site = if chance(&mut self.rng, 0.5) {
                    "instagram.com"
                } else {
                    "facebook.com"
                };
                (
                    Source {
                        referrer: Some(site),
                        utm: None,
                    },
                    self.browse_page(0.1),
                )
            }
            Traffic::Referral => {
                let site = *pick(&mut self.rng, REFERRAL_SITES);
                (
                    Source {
                        referrer: Some(site),
                        utm: None,
                    },
                    self.browse_page(0.1),
                )
            }
            Traffic::Paid(channel) => self.paid_landing(channel, at, rows),
        };
        (source, Step::new(at, WebEventType::PageView, page, None))
    }

    fn paid_landing(
        &mut self,
        channel: AdChannel,
        at: Micros,
        rows: &mut ChunkRows,
    ) -> (Source, Page) {
        let day = self.plan.calendar.day_of(at);
        let Some(campaign) = self.plan.campaigns.active_ad(&mut self.rng, channel, day) else {
            return (Source::default(), Page::Home);
        };
        rows.ad_visits.push((campaign, day));
        let (utm_source, referrer) = match channel {
            AdChannel::PaidSearch => ("google", "google.com"),
            AdChannel::PaidSocial if chance(&mut self.rng, 0.6) => ("facebook", "facebook.com"),
            AdChannel::PaidSocial => ("instagram", "instagram.com"),
            AdChannel::Display => ("criteo", *pick(&mut self.rng, DISPLAY_SITES)),
            AdChannel::Affiliate => ("awin", *pick(&mut self.rng, AFFILIATE_SITES)),
        };
        let utm = Utm {
            source: utm_source,
            medium: channel.utm_medium(),
            campaign: CampaignRef::Ad(campaign),
        };
        let landing = self.plan.campaigns.ads[campaign as usize].landing;
        (
            Source {
                referrer: Some(referrer),
                utm: Some(utm),
            },
            Page::Path(landing),
        )
    }

    /// A first page for an unpaid visit: home with probability `home`, else a listing or product.
    fn browse_page(&mut self, home: f64) -> Page {
        let r = unit(&mut self.rng);
        if r < home {
            Page::Home
        } else if r < home + (1.0 - home) * 0.5 {
            Page::Category(self.favourite_category())
        } else {
            Page::Product(self.favourite_product())
        }
    }

    pub(super) fn favourite_category(&mut self) -> usize {
        let weights: [(usize, f64); 7] =
            std::array::from_fn(|i| (i, self.profile.category_weights[i]));
        *pick_weighted(&mut self.rng, &weights)
    }

    pub(super) fn favourite_product(&mut self) -> u32 {
        let category = self.favourite_category();
        self.plan.catalog.sample(&mut self.rng, category)
    }

    /// Free browsing sessions spread over the person's active days.
    pub(super) fn plan_browsing(&mut self, rows: &mut ChunkRows) {
        for _ in 0..self.profile.browse_sessions {
            if self.profile.app_user && chance(&mut self.rng, 0.5) {
                let on_tablet = self.devices.shared.is_some() && chance(&mut self.rng, 0.4);
                self.plan_app_visit(on_tablet);
            } else {
                self.plan_web_visit(rows);
            }
        }
        // Both household members really use the family tablet.
        if self.devices.shared.is_some() {
            for _ in 0..2 {
                self.plan_app_visit(true);
            }
        }
    }

    fn plan_web_visit(&mut self, rows: &mut ChunkRows) {
        let plan = self.plan;
        let day = plan.calendar.sample_day(
            &mut self.rng,
            Activity::Web,
            self.profile.first_day,
            self.profile.last_day,
        );
        let at = plan.calendar.instant_on(&mut self.rng, Activity::Web, day);
        let device = DeviceRef::cookie(self.devices.cookie_at(day));
        let (source, landing) = self.web_landing(at, rows);
        let mut steps = vec![landing];
        self.wander(&mut steps, 0.28);
        self.plan_session(device, source, SessionKind::Browse, steps);
    }

    fn plan_app_visit(&mut self, on_tablet: bool) {
        let plan = self.plan;
        let day = plan.calendar.sample_day(
            &mut self.rng,
            Activity::App,
            self.profile.first_day,
            self.profile.last_day,
        );
        let at = plan.calendar.instant_on(&mut self.rng, Activity::App, day);
        let device = match (self.devices.shared, self.devices.app_at(day)) {
            (Some(tablet), _) if on_tablet => DeviceRef::Shared(tablet),
            (_, Some(app)) => DeviceRef::App(app.id),
            (Some(tablet), None) => DeviceRef::Shared(tablet),
            (None, None) => DeviceRef::cookie(self.devices.cookie_at(day)),
        };
        let mut steps = vec![Step::new(at, WebEventType::PageView, Page::Home, None)];
        self.wander(&mut steps, 0.28);
        self.plan_session(device, Source::default(), SessionKind::Browse, steps);
    }

    /// Appends a geometric number of browsing events after the last step.
    fn wander(&mut self, steps: &mut Vec<Step>, stop_probability: f64) {
        let extra = geometric(&mut self.rng, stop_probability, 40);
        let mut at = steps[steps.len() - 1].at;
        let mut last_product = match steps[0].page {
            Page::Product(p) => Some(p),
            _ => None,
        };
        for _ in 0..extra {
            at += between(&mut self.rng, 8, 150) as Micros * SECOND;
            let r = unit(&mut self.rng);
            let step = if r < 0.55 {
                let product = self.favourite_product();
                last_product = Some(product);
                Step::new(
                    at,
                    WebEventType::ProductView,
                    Page::Product(product),
                    Some(product),
                )
            } else if r < 0.88 {
                Step::new(
                    at,
                    WebEventType::PageView,
                    Page::Category(self.favourite_category()),
                    None,
                )
            } else if let (true, Some(product)) = (r < 0.985, last_product) {
                Step::new(
                    at,
                    WebEventType::AddToCart,
                    Page::Product(product),
                    Some(product),
                )
            } else if r < 0.985 {
                Step::new(at, WebEventType::PageView, Page::Home, None)
            } else {
                // Contact form or back-in-stock alert: the visitor types an email.
                let email = typed_email(&mut self.rng, &self.person.email);
                Step {
                    email: Some(email),
                    ..Step::new(at, WebEventType::FormSubmit, Page::Contact, None)
                }
            };
            steps.push(step);
        }
    }

    /// Plans the session that ends with an order's checkout at `at`; returns the campaign
    /// the visit came from, for the order's utm_campaign.
    pub(super) fn plan_checkout(
        &mut self,
        device: DeviceRef,
        at: Micros,
        products: &[u32],
        logged: bool,
        rows: &mut ChunkRows,
    ) -> Option<CampaignRef> {
        // Walk back from the checkout: landing, view + add each product, cart, checkout.
        let gaps: Vec<Micros> = (0..2 * products.len() + 2)
            .map(|_| between(&mut self.rng, 10, 120) as Micros * SECOND)
            .collect();
        let start = at - gaps.iter().sum::<Micros>();
        let (source, landing) = match device {
            DeviceRef::Cookie { .. } => self.web_landing(start, rows),
            DeviceRef::App(_) | DeviceRef::Shared(_) => (
                Source::default(),
                Step::new(start, WebEventType::PageView, Page::Home, None),
            ),
        };
        let mut steps = vec![landing];
        let mut gap = gaps.iter();
        let mut t = start;
        let mut next = |t: &mut Micros| {
            *t += gap.next().copied().unwrap_or(SECOND);
            *t
        };
        for &product in products {
            steps.push(Step::new(
                next(&mut t),
                WebEventType::ProductView,
                Page::Product(product),
                Some(product),
            ));
            steps.push(Step::new(
                next(&mut t),
                WebEventType::AddToCart,
                Page::Product(product),
                Some(product),
            ));
        }
        steps.push(Step::new(
            next(&mut t),
            WebEventType::PageView,
            Page::Cart,
            None,
        ));
        steps.push(Step::new(at, WebEventType::Checkout, Page::Checkout, None));
        let campaign = source.utm.map(|u| u.campaign);
        self.plan_session(device, source, SessionKind::Checkout { logged }, steps);
        campaign
    }

    /// The visit after a click in a marketing email.
    pub(super) fn plan_email_landing(&mut self, at: Micros, campaign: u16) {
        let day = self.plan.calendar.day_of(at);
        let cookie = self.devices.cookie_at(day);
        let landing = self.plan.campaigns.emails[campaign as usize].landing;
        let source = Source {
            referrer: None,
            utm: Some(Utm {
                source: "newsletter",
                medium: "email",
                campaign: CampaignRef::Email(campaign),
            }),
        };
        let mut steps = vec![Step::new(
            at,
            WebEventType::PageView,
            Page::Path(landing),
            None,
        )];
        self.wander(&mut steps, 0.45);
        self.plan_session(DeviceRef::cookie(cookie), source, SessionKind::Other, steps);
    }

    /// Plays all planned sessions in time order into web_events rows.
    pub(super) fn play_sessions(&mut self, rows: &mut ChunkRows) {
        let mut sessions = std::mem::take(&mut self.sessions);
        sessions.sort_by_key(|s| s.steps[0].at);
        // Browsers and app installs on which the person is still logged in.
        let mut remembered: Vec<u64> = Vec::new();
        for session in sessions {
            self.play_session(session, &mut remembered, rows);
        }
    }

    fn play_session(
        &mut self,
        session: PlannedSession,
        remembered: &mut Vec<u64>,
        rows: &mut ChunkRows,
    ) {
        let customer = self.profile.customer_at(session.steps[0].at);
        let session_id = scrambled_id(
            self.plan.keys.scramble,
            ScrambledKind::Session,
            self.index,
            self.next_session,
        );
        self.next_session += 1;
        let (platform, anonymous_id, device_id, persistent) = match session.device {
            DeviceRef::Cookie { id, .. } => (Platform::Web, Some(id), None, Some(id)),
            DeviceRef::App(id) => (Platform::App, None, Some(id), Some(id)),
            DeviceRef::Shared(id) => (Platform::App, None, Some(id), None),
        };
        let mut logged_in = persistent.is_some_and(|id| remembered.contains(&id));
        if logged_in && chance(&mut self.rng, 0.08) {
            // Logged out (session expired, cookie consent reset...).
            logged_in = false;
            remembered.retain(|d| Some(*d) != persistent);
        }
        let login_before = match customer {
            Some(_) if !logged_in => self.login_position(&session),
            _ => None,
        };
        let calendar = &self.plan.calendar;
        let step_count = session.steps.len();
        let mut previous_at = session.steps[0].at;
        for (i, step) in session.steps.into_iter().enumerate() {
            if login_before == Some(i) {
                logged_in = true;
                let at = previous_at + (step.at - previous_at) / 2;
                rows.web.push(WebEventRow {
                    person: self.index,
                    occurred_at: calendar.clamp(at),
                    session: session_id,
                    platform,
                    anonymous_id,
                    device_id,
                    customer,
                    email: None,
                    event_type: WebEventType::Login,
                    page: Page::Login,
                    referrer: None,
                    utm: None,
                    product: None,
                });
            }
            previous_at = step.at;
            let landing = i == 0;
            rows.web.push(WebEventRow {
                person: self.index,
                occurred_at: calendar.clamp(step.at),
                session: session_id,
                platform,
                anonymous_id,
                device_id,
                customer: customer.filter(|_| logged_in),
                email: step.email,
                event_type: step.event,
                page: step.page,
                referrer: session.source.referrer.filter(|_| landing),
                utm: session.source.utm.filter(|_| landing),
                product: step.product,
            });
        }
        debug_assert!(login_before.is_none_or(|i| i < step_count));
        if let (true, Some(id)) = (logged_in, persistent)
            && !remembered.contains(&id)
        {
            remembered.push(id);
        }
    }

    /// Before which step (never the landing) an account holder logs in, if at all.
    fn login_position(&mut self, session: &PlannedSession) -> Option<usize> {
        let n = session.steps.len();
        if n < 2 {
            return None;
        }
        match (session.kind, session.device) {
            (SessionKind::Checkout { logged: true }, _) => Some(n - 1),
            (SessionKind::Checkout { logged: false }, _) | (SessionKind::Other, _) => None,
            (SessionKind::Browse, DeviceRef::Shared(_)) => chance(&mut self.rng, 0.5).then_some(1),
            (SessionKind::Browse, DeviceRef::App(_)) => chance(&mut self.rng, 0.85).then_some(1),
            (SessionKind::Browse, DeviceRef::Cookie { logs_in, .. }) => (logs_in
                && chance(&mut self.rng, 0.25))
            .then(|| between(&mut self.rng, 1, n as u64 - 1) as usize),
        }
    }
}
