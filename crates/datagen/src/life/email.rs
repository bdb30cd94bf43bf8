//! What the email service provider (ESP) logs for a subscriber: sends, opens, clicks,
//! bounces and unsubscribes. Clicks lead to a web visit minutes later.

use crate::calendar::{HOUR, MINUTE, Micros, SECOND};
use crate::life::PersonSim;
use crate::life::consents::Subscription;
use crate::rng::{between, chance, exponential};
use crate::rows::{ChunkRows, CollectionPoint, ConsentRow, EmailEventRow, EmailEventType, Purpose};

/// Share of subscribers each campaign targets (segmentation, pressure rules).
const TARGETED: f64 = 0.6;
/// Probability of a click once the email is opened (gives ~3% of sends).
const CLICK_GIVEN_OPEN: f64 = 0.13;
/// Probability of unsubscribing once the email is opened.
const UNSUBSCRIBE_GIVEN_OPEN: f64 = 0.004;

impl PersonSim<'_> {
    pub(super) fn email_events(&mut self, subscription: Subscription, rows: &mut ChunkRows) {
        let calendar = &self.plan.calendar;
        let campaigns = &self.plan.campaigns.emails;
        let stop = subscription.revoked_at.unwrap_or(calendar.end());
        let first = campaigns.partition_point(|c| c.send_at < subscription.start);
        for (index, campaign) in campaigns.iter().enumerate().skip(first) {
            if campaign.send_at >= stop {
                break;
            }
            if !chance(&mut self.rng, TARGETED) {
                continue;
            }
            // Sends go out in batches over the 90 minutes after the campaign time.
            let sent_at = campaign.send_at + between(&mut self.rng, 0, 90 * 60) as Micros * SECOND;
            self.push_email(rows, &subscription, sent_at, index, EmailEventType::Send);
            if subscription.bounces {
                let bounced_at = sent_at + between(&mut self.rng, 1, 120) as Micros * SECOND;
                self.push_email(
                    rows,
                    &subscription,
                    bounced_at,
                    index,
                    EmailEventType::Bounce,
                );
                return; // hard bounce: the ESP suppresses the address
            }
            if !chance(&mut self.rng, self.profile.open_rate) {
                continue;
            }
            let opened_at = sent_at
                + (exponential(&mut self.rng, 4.0 * HOUR as f64) as Micros).max(30 * SECOND);
            if opened_at >= stop {
                continue;
            }
            self.push_email(rows, &subscription, opened_at, index, EmailEventType::Open);
            if chance(&mut self.rng, CLICK_GIVEN_OPEN) {
                let clicked_at = opened_at + between(&mut self.rng, 5, 600) as Micros * SECOND;
                if clicked_at < calendar.end() {
                    self.push_email(
                        rows,
                        &subscription,
                        clicked_at,
                        index,
                        EmailEventType::Click,
                    );
                    let landed_at = clicked_at + between(&mut self.rng, 2, 40) as Micros * SECOND;
                    if landed_at < calendar.end() {
                        self.plan_email_landing(landed_at, index as u16);
                    }
                }
            }
            if chance(&mut self.rng, UNSUBSCRIBE_GIVEN_OPEN) {
                let at = opened_at + between(&mut self.rng, 1, 5) as Micros * MINUTE;
                if at < calendar.end() {
                    self.unsubscribe(rows, &subscription, at, index);
                    return;
                }
            }
        }
        if let Some(revoked_at) = subscription.revoked_at {
            // Opted out in the preference center, logged in or from the email footer.
            rows.consents.push(ConsentRow {
                customer: subscription.customer,
                email: Some(subscription.esp_email.clone()),
                ..self.consent(
                    revoked_at,
                    Purpose::EmailMarketing,
                    false,
                    CollectionPoint::PreferenceCenter,
                )
            });
        }
    }

    fn unsubscribe(
        &mut self,
        rows: &mut ChunkRows,
        subscription: &Subscription,
        at: Micros,
        campaign: usize,
    ) {
        self.push_email(
            rows,
            subscription,
            at,
            campaign,
            EmailEventType::Unsubscribe,
        );
        // The ESP syncs the unsubscribe back as a revoked consent, known by email only.
        rows.consents.push(ConsentRow {
            email: Some(subscription.esp_email.clone()),
            ..self.consent(
                at,
                Purpose::EmailMarketing,
                false,
                CollectionPoint::PreferenceCenter,
            )
        });
    }

    fn push_email(
        &self,
        rows: &mut ChunkRows,
        subscription: &Subscription,
        at: Micros,
        campaign: usize,
        event_type: EmailEventType,
    ) {
        rows.email.push(EmailEventRow {
            person: self.index,
            occurred_at: self.plan.calendar.clamp(at),
            email: subscription.esp_email.clone(),
            campaign: campaign as u16,
            event_type,
        });
    }
}
