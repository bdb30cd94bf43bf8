//! Store, web and app orders with the identifiers each channel really captures.

use crate::calendar::{Activity, Sale};
use crate::identifiers::{
    EmailStyle, HAND_TYPED_PHONES, JUNK_EMAILS, JUNK_PHONES, email_variant, typed_email,
    typed_phone,
};
use crate::life::PersonSim;
use crate::life::profile::{Buyer, ChannelMix};
use crate::life::web::DeviceRef;
use crate::reference::STORE_CITIES;
use crate::rng::{between, chance, geometric, pareto, pick, pick_weighted};
use crate::rows::{Channel, ChunkRows, OrderLine, OrderRow, OrderStatus};

/// Share of store orders where the cashier typed a placeholder email or phone.
const JUNK_SHARE: f64 = 0.03;

/// What a till captured about the buyer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TillCapture {
    LoyaltyOnly,
    LoyaltyAndPhone,
    CustomerAccount,
    PhoneOnly,
    EmailOnly,
    Nothing,
}

impl PersonSim<'_> {
    pub(super) fn orders(&mut self, rows: &mut ChunkRows) {
        for _ in 0..self.order_count() {
            self.one_order(rows);
        }
    }

    /// Mostly one-time buyers, with a Pareto tail of loyal customers.
    fn order_count(&mut self) -> u32 {
        let lifetime = match self.profile.buyer {
            Buyer::Never => return 0,
            Buyer::Occasional => 1 + geometric(&mut self.rng, 0.42, 20),
            Buyer::Loyal => pareto(&mut self.rng, 5.5, 1.7).round().min(150.0) as u32,
        };
        // People active for part of the window buy less often in total.
        let share = 0.35 + 0.65 * self.profile.span_share();
        ((f64::from(lifetime) * share).round() as u32).max(1)
    }

    fn order_channel(&mut self) -> Channel {
        let can_use_app = self.profile.app_user
            && !self.devices.apps.is_empty()
            && self.profile.account.is_some();
        let channel = match self.profile.channels {
            ChannelMix::StoreOnly => Channel::Store,
            ChannelMix::WebFirst => *pick_weighted(
                &mut self.rng,
                &[
                    (Channel::Web, 0.70),
                    (Channel::Store, 0.20),
                    (Channel::App, 0.10),
                ],
            ),
            ChannelMix::Omni => *pick_weighted(
                &mut self.rng,
                &[
                    (Channel::Store, 0.50),
                    (Channel::Web, 0.35),
                    (Channel::App, 0.15),
                ],
            ),
        };
        if channel == Channel::App && !can_use_app {
            Channel::Web
        } else {
            channel
        }
    }

    fn one_order(&mut self, rows: &mut ChunkRows) {
        let plan = self.plan;
        let channel = self.order_channel();
        let activity = match channel {
            Channel::Store => Activity::Store,
            Channel::Web => Activity::Web,
            Channel::App => Activity::App,
        };
        let day = plan.calendar.sample_day(
            &mut self.rng,
            activity,
            self.profile.first_day,
            self.profile.last_day,
        );
        let ordered_at = plan.calendar.instant_on(&mut self.rng, activity, day);
        // The app needs an account: before signing up, the person orders on the web.
        let channel = if channel == Channel::App && self.profile.account_at(ordered_at).is_none() {
            Channel::Web
        } else {
            channel
        };
        let lines = self.order_lines(day);
        let status = self.order_status(channel);
        let mut order = OrderRow {
            person: self.index,
            ordered_at,
            channel,
            store: None,
            customer: None,
            email: None,
            phone: None,
            loyalty: None,
            anonymous_id: None,
            device_id: None,
            status,
            payment: "card",
            utm_campaign: None,
            lines,
        };
        match channel {
            Channel::Store => self.identify_at_till(&mut order),
            Channel::Web => self.web_checkout(&mut order, day, rows),
            Channel::App => self.app_checkout(&mut order, day, rows),
        }
        rows.orders.push(order);
    }

    fn order_status(&mut self, channel: Channel) -> OrderStatus {
        let weights = if channel == Channel::Store {
            [
                (OrderStatus::Completed, 0.91),
                (OrderStatus::Returned, 0.08),
                (OrderStatus::Cancelled, 0.01),
            ]
        } else {
            [
                (OrderStatus::Completed, 0.84),
                (OrderStatus::Returned, 0.09),
                (OrderStatus::Cancelled, 0.07),
            ]
        };
        *pick_weighted(&mut self.rng, &weights)
    }

    /// 1-5 distinct products, discounted during the sales.
    fn order_lines(&mut self, day: u32) -> Vec<OrderLine> {
        let count = *pick_weighted(
            &mut self.rng,
            &[(1usize, 0.30), (2, 0.27), (3, 0.21), (4, 0.13), (5, 0.09)],
        );
        let sale = self.plan.calendar.sale(day);
        let mut lines: Vec<OrderLine> = Vec::with_capacity(count);
        for _ in 0..count {
            let product = self.favourite_product();
            if lines.iter().any(|l| l.product == product) {
                continue;
            }
            let price = self.plan.catalog.products[product as usize].price_cents;
            lines.push(OrderLine {
                product,
                quantity: *pick_weighted(&mut self.rng, &[(1, 0.85), (2, 0.11), (3, 0.04)]),
                unit_price_cents: self.sale_price(price, sale),
            });
        }
        lines
    }

    fn sale_price(&mut self, price: i64, sale: Sale) -> i64 {
        let discount = match sale {
            Sale::Soldes if chance(&mut self.rng, 0.65) => *pick(&mut self.rng, &[30, 40, 50]),
            Sale::BlackFriday if chance(&mut self.rng, 0.5) => 20,
            _ => 0,
        };
        price * (100 - discount) / 100
    }

    /// Store orders: the till knows the buyer only by what they handed over.
    fn identify_at_till(&mut self, order: &mut OrderRow) {
        let person = self.person;
        order.store = Some(if chance(&mut self.rng, 0.85) {
            person.home_store
        } else {
            between(&mut self.rng, 0, STORE_CITIES.len() as u64 - 1) as usize
        });
        order.payment = *pick_weighted(
            &mut self.rng,
            &[
                ("card", 0.70),
                ("cash", 0.14),
                ("apple_pay", 0.10),
                ("gift_card", 0.06),
            ],
        );
        let loyalty = self.profile.loyalty_at(order.ordered_at);
        let customer = self.profile.customer_at(order.ordered_at);
        let capture = match (customer, loyalty) {
            (Some(_), Some(_)) => &[
                (TillCapture::LoyaltyOnly, 0.50),
                (TillCapture::LoyaltyAndPhone, 0.12),
                (TillCapture::CustomerAccount, 0.10),
                (TillCapture::PhoneOnly, 0.08),
                (TillCapture::EmailOnly, 0.05),
                (TillCapture::Nothing, 0.15),
            ][..],
            (Some(_), None) => &[
                (TillCapture::PhoneOnly, 0.30),
                (TillCapture::EmailOnly, 0.20),
                (TillCapture::CustomerAccount, 0.15),
                (TillCapture::Nothing, 0.35),
            ][..],
            (None, _) => &[
                (TillCapture::Nothing, 0.60),
                (TillCapture::PhoneOnly, 0.20),
                (TillCapture::EmailOnly, 0.20),
            ][..],
        };
        match *pick_weighted(&mut self.rng, capture) {
            TillCapture::LoyaltyOnly => order.loyalty = loyalty,
            TillCapture::LoyaltyAndPhone => {
                order.loyalty = loyalty;
                order.phone = Some(typed_phone(&mut self.rng, person.phone, &HAND_TYPED_PHONES));
            }
            TillCapture::CustomerAccount => {
                order.customer = customer;
                order.loyalty = loyalty;
            }
            TillCapture::PhoneOnly => {
                order.phone = Some(typed_phone(&mut self.rng, person.phone, &HAND_TYPED_PHONES))
            }
            TillCapture::EmailOnly => order.email = Some(typed_email(&mut self.rng, &person.email)),
            TillCapture::Nothing => {}
        }
        if chance(&mut self.rng, JUNK_SHARE) {
            self.junk_capture(order, loyalty);
        }
    }

    /// The cashier typed a placeholder; sometimes the loyalty card was scanned too.
    fn junk_capture(&mut self, order: &mut OrderRow, loyalty: Option<u64>) {
        order.customer = None;
        order.email = None;
        order.phone = None;
        order.loyalty = loyalty.filter(|_| chance(&mut self.rng, 0.4));
        match between(&mut self.rng, 0, 9) {
            0..=4 => order.email = Some((*pick(&mut self.rng, &JUNK_EMAILS)).to_owned()),
            5..=8 => order.phone = Some((*pick(&mut self.rng, &JUNK_PHONES)).to_owned()),
            _ => {
                order.email = Some((*pick(&mut self.rng, &JUNK_EMAILS)).to_owned());
                order.phone = Some((*pick(&mut self.rng, &JUNK_PHONES)).to_owned());
            }
        }
    }

    /// Web orders: logged-in account checkouts, or guest checkouts known by email + cookie.
    fn web_checkout(&mut self, order: &mut OrderRow, day: u32, rows: &mut ChunkRows) {
        let person = self.person;
        let cookie = self.devices.cookie_at(day);
        let account_email = self
            .profile
            .account_at(order.ordered_at)
            .is_some_and(|a| a.crm_email.is_some());
        let logged = account_email && chance(&mut self.rng, 0.92);
        order.anonymous_id = Some(cookie.id);
        if logged {
            order.customer = self.profile.customer_at(order.ordered_at);
            order.email = Some(self.account_email_copy());
        } else {
            order.email = Some(typed_email(&mut self.rng, &person.email));
        }
        if chance(&mut self.rng, 0.45) {
            order.phone = Some(typed_phone(&mut self.rng, person.phone, &HAND_TYPED_PHONES));
        }
        order.payment = *pick_weighted(
            &mut self.rng,
            &[
                ("card", 0.68),
                ("paypal", 0.18),
                ("apple_pay", 0.08),
                ("gift_card", 0.03),
                ("klarna", 0.03),
            ],
        );
        let products: Vec<u32> = order.lines.iter().map(|l| l.product).collect();
        order.utm_campaign = self.plan_checkout(
            DeviceRef::cookie(cookie),
            order.ordered_at,
            &products,
            logged,
            rows,
        );
    }

    /// App orders always come from a logged-in account on the person's own phone.
    fn app_checkout(&mut self, order: &mut OrderRow, day: u32, rows: &mut ChunkRows) {
        let Some(app) = self.devices.app_at(day) else {
            return self.web_checkout(order, day, rows);
        };
        order.device_id = Some(app.id);
        order.customer = self.profile.customer_at(order.ordered_at);
        if self
            .profile
            .account_at(order.ordered_at)
            .is_some_and(|a| a.crm_email.is_some())
        {
            order.email = Some(self.account_email_copy());
        }
        if chance(&mut self.rng, 0.3) {
            order.phone = Some(typed_phone(
                &mut self.rng,
                self.person.phone,
                &HAND_TYPED_PHONES,
            ));
        }
        order.payment = *pick_weighted(
            &mut self.rng,
            &[("card", 0.55), ("apple_pay", 0.35), ("paypal", 0.10)],
        );
        let products: Vec<u32> = order.lines.iter().map(|l| l.product).collect();
        order.utm_campaign = self.plan_checkout(
            DeviceRef::App(app.id),
            order.ordered_at,
            &products,
            true,
            rows,
        );
    }

    /// The account email as the e-commerce platform exports it (mostly as registered).
    fn account_email_copy(&mut self) -> String {
        let style = if chance(&mut self.rng, 0.9) {
            EmailStyle::Exact
        } else {
            EmailStyle::Capitalized
        };
        email_variant(&mut self.rng, &self.person.email, style)
    }
}
