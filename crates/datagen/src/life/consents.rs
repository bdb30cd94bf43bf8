//! Marketing consents collected at sign-up, newsletter sign-ups and later changes.

use crate::calendar::{Activity, Micros, SECOND};
use crate::identifiers::{format_phone, typed_email};
use crate::life::PersonSim;
use crate::life::profile::Signup;
use crate::life::web::{DeviceRef, SessionKind, Step};
use crate::rng::{between, chance};
use crate::rows::{ChunkRows, CollectionPoint, ConsentRow, Page, Purpose, WebEventType};

/// An email_marketing opt-in: who the ESP mails, from when, until when.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The address as the ESP exports it.
    pub esp_email: String,
    pub start: Micros,
    /// When the person revokes the consent in the preference center (window end if never).
    pub revoked_at: Option<Micros>,
    pub customer: Option<u32>,
    /// The address hard-bounces: the first send bounces and the ESP suppresses it.
    pub bounces: bool,
}

/// Share of account holders granting email marketing at sign-up.
const EMAIL_OPT_IN: f64 = 0.42;
/// Share of persons without an account who sign up to the newsletter on the site.
const NEWSLETTER_ONLY: f64 = 0.08;

impl PersonSim<'_> {
    /// Writes the consent rows and returns the email subscription, if any.
    pub(super) fn consents(&mut self, rows: &mut ChunkRows) -> Option<Subscription> {
        if self.profile.account.is_some() {
            self.account_consents(rows)
        } else if chance(&mut self.rng, NEWSLETTER_ONLY) {
            Some(self.newsletter_signup(rows))
        } else {
            None
        }
    }

    fn account_consents(&mut self, rows: &mut ChunkRows) -> Option<Subscription> {
        let account = self.profile.account.as_ref()?;
        let customer = account.account.customer;
        let at = self
            .plan
            .calendar
            .clamp(account.created_at + between(&mut self.rng, 2, 90) as Micros * SECOND);
        let point = match account.signup {
            Signup::Migrated | Signup::Store => CollectionPoint::Store,
            Signup::Web => CollectionPoint::WebForm,
            Signup::App => CollectionPoint::App,
        };
        let crm_email = account.crm_email.clone();
        let crm_phone = account.crm_phone;
        let created_day = account.created_day;
        let mut subscription = None;
        if let Some(email) = crm_email {
            let granted = chance(&mut self.rng, EMAIL_OPT_IN);
            rows.consents.push(ConsentRow {
                customer: Some(customer),
                email: Some(email.clone()),
                ..self.consent(at, Purpose::EmailMarketing, granted, point)
            });
            if granted {
                subscription = Some(self.subscription(&email, at, Some(customer)));
            } else if chance(&mut self.rng, 0.07) {
                // Changed their mind later, in the preference center.
                let later = self.random_instant_after(created_day + 1);
                rows.consents.push(ConsentRow {
                    customer: Some(customer),
                    email: Some(email.clone()),
                    ..self.consent(
                        later,
                        Purpose::EmailMarketing,
                        true,
                        CollectionPoint::PreferenceCenter,
                    )
                });
                subscription = Some(self.subscription(&email, later, Some(customer)));
            }
        }
        if let Some(format) = crm_phone.filter(|_| chance(&mut self.rng, 0.2)) {
            let phone = format_phone(self.person.phone, format);
            let granted = chance(&mut self.rng, 0.5);
            rows.consents.push(ConsentRow {
                customer: Some(customer),
                phone: Some(phone),
                ..self.consent(at, Purpose::SmsMarketing, granted, point)
            });
        }
        if chance(&mut self.rng, 0.10) {
            let granted = chance(&mut self.rng, 0.7);
            rows.consents.push(ConsentRow {
                customer: Some(customer),
                ..self.consent(at, Purpose::Personalization, granted, point)
            });
        }
        if chance(&mut self.rng, 0.05) {
            let granted = chance(&mut self.rng, 0.6);
            rows.consents.push(ConsentRow {
                customer: Some(customer),
                ..self.consent(at, Purpose::Analytics, granted, point)
            });
        }
        subscription
    }

    /// A visitor without an account leaves their email in the site's newsletter box.
    fn newsletter_signup(&mut self, rows: &mut ChunkRows) -> Subscription {
        let calendar = &self.plan.calendar;
        let day = calendar.sample_day(
            &mut self.rng,
            Activity::Web,
            self.profile.first_day,
            self.profile.last_day,
        );
        let landing_at = calendar.instant_on(&mut self.rng, Activity::Web, day);
        let signed_at =
            calendar.clamp(landing_at + between(&mut self.rng, 20, 180) as Micros * SECOND);
        let typed = typed_email(&mut self.rng, &self.person.email);
        let cookie = self.devices.cookie_at(day);
        let (source, landing) = self.web_landing(landing_at, rows);
        let signup = Step {
            at: signed_at,
            event: WebEventType::NewsletterSignup,
            page: Page::Newsletter,
            product: None,
            email: Some(typed.clone()),
        };
        self.plan_session(
            DeviceRef::cookie(cookie),
            source,
            SessionKind::Other,
            vec![landing, signup],
        );
        rows.consents.push(ConsentRow {
            email: Some(typed.clone()),
            ..self.consent(
                signed_at,
                Purpose::EmailMarketing,
                true,
                CollectionPoint::WebForm,
            )
        });
        self.subscription(&typed, signed_at, None)
    }

    fn subscription(&mut self, typed: &str, start: Micros, customer: Option<u32>) -> Subscription {
        // Most ESPs store addresses lower-cased; some keep what was typed.
        let esp_email = if chance(&mut self.rng, 0.88) {
            typed.trim().to_lowercase()
        } else {
            typed.trim().to_owned()
        };
        let revoked_at = chance(&mut self.rng, 0.06)
            .then(|| self.random_instant_after(self.plan.calendar.day_of(start) + 7))
            .filter(|t| *t > start);
        Subscription {
            esp_email,
            start,
            revoked_at,
            customer,
            bounces: chance(&mut self.rng, 0.02),
        }
    }

    /// A web-hours instant on a day from `first_day` to the person's last active day.
    pub(super) fn random_instant_after(&mut self, first_day: u32) -> Micros {
        let calendar = &self.plan.calendar;
        let last = self
            .profile
            .last_day
            .max(first_day)
            .min(crate::calendar::WINDOW_DAYS - 1);
        let first = first_day.min(last);
        let day = calendar.sample_day(&mut self.rng, Activity::Web, first, last);
        calendar.instant_on(&mut self.rng, Activity::Web, day)
    }

    /// A consent row of this person without identifiers; callers fill those in.
    pub(super) fn consent(
        &self,
        at: Micros,
        purpose: Purpose,
        granted: bool,
        point: CollectionPoint,
    ) -> ConsentRow {
        ConsentRow {
            person: self.index,
            occurred_at: at,
            customer: None,
            email: None,
            phone: None,
            purpose,
            granted,
            collection_point: point,
        }
    }
}
