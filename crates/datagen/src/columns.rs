//! Turns a chunk's rows into Arrow columns. The first (sequence-numbered id) column of
//! each source is left out: it is added when the chunk is written.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, Int64Array, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::error::ArrowError;

use crate::calendar::Micros;
use crate::plan::Plan;
use crate::reference::{APP_BASE, CATEGORIES, WEB_BASE};
use crate::rows::{
    CampaignRef, ConsentRow, CrmRow, EmailEventRow, EmailEventType, OrderRow, Page, Platform, Utm,
    WebEventRow,
};
use crate::schema::{MONEY_PRECISION, MONEY_SCALE};

pub(crate) type Columns = Vec<ArrayRef>;

/// A string column built with `write!`-style formatting.
pub(crate) struct Text(StringBuilder);

impl Text {
    pub(crate) fn new(rows: usize) -> Self {
        Self(StringBuilder::with_capacity(rows, rows * 16))
    }

    pub(crate) fn str(&mut self, value: &str) {
        self.0.append_value(value);
    }

    pub(crate) fn opt_str(&mut self, value: Option<&str>) {
        self.0.append_option(value);
    }

    pub(crate) fn fmt(&mut self, args: std::fmt::Arguments<'_>) {
        // Writing into a StringBuilder cannot fail.
        let _ = self.0.write_fmt(args);
        self.0.append_value("");
    }

    /// Appends `prefix` then `n` zero-padded to `width` digits (a hot path: no fmt).
    pub(crate) fn padded(&mut self, prefix: &str, n: u64, width: usize) {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        let mut rest = n;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let start = start.min(digits.len() - width.min(digits.len()));
        self.ascii(prefix, &digits[start..]);
    }

    /// Appends `prefix` then `value` as 16 lower-case hex digits.
    pub(crate) fn hex(&mut self, prefix: &str, value: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digits: [u8; 16] =
            std::array::from_fn(|i| HEX[((value >> (60 - 4 * i)) & 0xf) as usize]);
        self.ascii(prefix, &digits);
    }

    fn ascii(&mut self, prefix: &str, tail: &[u8]) {
        let _ = self.0.write_str(prefix);
        let _ = self
            .0
            .write_str(std::str::from_utf8(tail).unwrap_or_default());
        self.0.append_value("");
    }

    pub(crate) fn null(&mut self) {
        self.0.append_null();
    }

    pub(crate) fn finish(mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }

    fn customer(&mut self, value: Option<u32>) {
        match value {
            Some(n) => self.padded("C", u64::from(n), 8),
            None => self.null(),
        }
    }

    fn loyalty(&mut self, value: Option<u64>) {
        match value {
            Some(n) => self.padded("LOY-", n, 9),
            None => self.null(),
        }
    }

    fn anonymous(&mut self, value: Option<u64>) {
        match value {
            Some(id) => self.hex("anon-", id),
            None => self.null(),
        }
    }

    fn device(&mut self, value: Option<u64>) {
        match value {
            Some(id) => self.hex("dev-", id),
            None => self.null(),
        }
    }

    fn store(&mut self, value: Option<usize>) {
        match value {
            Some(index) => self.padded("S", index as u64 + 1, 3),
            None => self.null(),
        }
    }
}

pub(crate) fn timestamps(values: impl Iterator<Item = Micros>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

pub(crate) fn money(values: impl Iterator<Item = i64>) -> Result<ArrayRef, ArrowError> {
    let array = Decimal128Array::from_iter_values(values.map(i128::from))
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)?;
    Ok(Arc::new(array))
}

/// The `person_id` text of a person index.
pub(crate) fn write_person_id(text: &mut Text, person: u32) {
    text.padded("P", u64::from(person) + 1, 7);
}

fn campaign_id(plan: &Plan, campaign: CampaignRef) -> &str {
    match campaign {
        CampaignRef::Ad(i) => &plan.campaigns.ads[i as usize].id,
        CampaignRef::Email(i) => &plan.campaigns.emails[i as usize].id,
    }
}

pub(crate) fn crm(rows: &[CrmRow]) -> Columns {
    let n = rows.len();
    let mut customer = Text::new(n);
    let (mut first, mut last, mut email, mut phone) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    let (mut city, mut postal, mut loyalty, mut store) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    for r in rows {
        customer.customer(Some(r.customer));
        first.opt_str(r.first_name.as_deref());
        last.opt_str(r.last_name.as_deref());
        email.opt_str(r.email.as_deref());
        phone.opt_str(r.phone.as_deref());
        city.opt_str(r.city.as_deref());
        postal.opt_str(r.postal_code);
        loyalty.loyalty(r.loyalty);
        store.store(r.preferred_store);
    }
    vec![
        customer.finish(),
        first.finish(),
        last.finish(),
        email.finish(),
        phone.finish(),
        Arc::new(rows.iter().map(|r| r.birth_date).collect::<Date32Array>()),
        city.finish(),
        postal.finish(),
        loyalty.finish(),
        timestamps(rows.iter().map(|r| r.created_at)),
        timestamps(rows.iter().map(|r| r.updated_at)),
        store.finish(),
    ]
}

pub(crate) fn web(plan: &Plan, rows: &[WebEventRow]) -> Columns {
    let n = rows.len();
    let (mut session, mut platform, mut anonymous, mut device) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    let (mut customer, mut email, mut event_type, mut page_url) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    let (mut referrer, mut utm_source, mut utm_medium, mut utm_campaign) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    let mut product = Text::new(n);
    for r in rows {
        session.hex("sess-", r.session);
        platform.str(r.platform.as_str());
        anonymous.anonymous(r.anonymous_id);
        device.device(r.device_id);
        customer.customer(r.customer);
        email.opt_str(r.email.as_deref());
        event_type.str(r.event_type.as_str());
        write_page_url(&mut page_url, plan, r.platform, r.page, r.utm);
        referrer.opt_str(r.referrer);
        utm_source.opt_str(r.utm.map(|u| u.source));
        utm_medium.opt_str(r.utm.map(|u| u.medium));
        utm_campaign.opt_str(r.utm.map(|u| campaign_id(plan, u.campaign)));
        product.opt_str(
            r.product
                .map(|p| plan.catalog.products[p as usize].id.as_str()),
        );
    }
    vec![
        timestamps(rows.iter().map(|r| r.occurred_at)),
        session.finish(),
        platform.finish(),
        anonymous.finish(),
        device.finish(),
        customer.finish(),
        email.finish(),
        event_type.finish(),
        page_url.finish(),
        referrer.finish(),
        utm_source.finish(),
        utm_medium.finish(),
        utm_campaign.finish(),
        product.finish(),
    ]
}

fn write_page_url(out: &mut Text, plan: &Plan, platform: Platform, page: Page, utm: Option<Utm>) {
    let base = match platform {
        Platform::Web => WEB_BASE,
        Platform::App => APP_BASE,
    };
    let product_id;
    let path = match page {
        Page::Home => "/",
        Page::Path(path) => path,
        Page::Category(c) => CATEGORIES[c].1,
        Page::Product(p) => {
            product_id = format!("/p/{}", plan.catalog.products[p as usize].id);
            &product_id
        }
        Page::Cart => "/panier",
        Page::Checkout => "/commande",
        Page::Login => "/compte/connexion",
        Page::Newsletter => "/newsletter",
        Page::Contact => "/contact",
    };
    match utm {
        Some(u) => out.fmt(format_args!(
            "{base}{path}?utm_source={}&utm_medium={}&utm_campaign={}",
            u.source,
            u.medium,
            campaign_id(plan, u.campaign)
        )),
        None => out.fmt(format_args!("{base}{path}")),
    }
}

pub(crate) fn orders(plan: &Plan, rows: &[OrderRow]) -> Result<Columns, ArrowError> {
    let n = rows.len();
    let (mut channel, mut store, mut customer, mut email) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    let (mut phone, mut loyalty, mut anonymous, mut device) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    let (mut status, mut currency, mut payment, mut utm_campaign) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    for r in rows {
        channel.str(r.channel.as_str());
        store.store(r.store);
        customer.customer(r.customer);
        email.opt_str(r.email.as_deref());
        phone.opt_str(r.phone.as_deref());
        loyalty.loyalty(r.loyalty);
        anonymous.anonymous(r.anonymous_id);
        device.device(r.device_id);
        status.str(r.status.as_str());
        currency.str("EUR");
        payment.str(r.payment);
        utm_campaign.opt_str(r.utm_campaign.map(|c| campaign_id(plan, c)));
    }
    Ok(vec![
        timestamps(rows.iter().map(|r| r.ordered_at)),
        channel.finish(),
        store.finish(),
        customer.finish(),
        email.finish(),
        phone.finish(),
        loyalty.finish(),
        anonymous.finish(),
        device.finish(),
        status.finish(),
        money(rows.iter().map(OrderRow::total_cents))?,
        currency.finish(),
        payment.finish(),
        utm_campaign.finish(),
    ])
}

/// order_lines columns after order_id, and for each line the chunk-local order number.
pub(crate) fn order_lines(
    plan: &Plan,
    rows: &[OrderRow],
) -> Result<(Vec<u32>, Columns), ArrowError> {
    let n: usize = rows.iter().map(|r| r.lines.len()).sum();
    let mut order_local = Vec::with_capacity(n);
    let (mut line_number, mut quantity, mut price) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut product_id, mut product_name, mut category) =
        (Text::new(n), Text::new(n), Text::new(n));
    for (local, order) in rows.iter().enumerate() {
        for (i, line) in order.lines.iter().enumerate() {
            let product = &plan.catalog.products[line.product as usize];
            order_local.push(local as u32);
            line_number.push(i as i32 + 1);
            product_id.str(&product.id);
            product_name.str(&product.name);
            category.str(CATEGORIES[product.category].0);
            quantity.push(line.quantity);
            price.push(line.unit_price_cents);
        }
    }
    let columns = vec![
        Arc::new(Int32Array::from(line_number)) as ArrayRef,
        product_id.finish(),
        product_name.finish(),
        category.finish(),
        Arc::new(Int32Array::from(quantity)),
        money(price.into_iter())?,
    ];
    Ok((order_local, columns))
}

pub(crate) fn email(plan: &Plan, rows: &[EmailEventRow]) -> Columns {
    let n = rows.len();
    let (mut email, mut campaign, mut event_type, mut link) =
        (Text::new(n), Text::new(n), Text::new(n), Text::new(n));
    for r in rows {
        let c = &plan.campaigns.emails[r.campaign as usize];
        email.str(&r.email);
        campaign.str(&c.id);
        event_type.str(r.event_type.as_str());
        if r.event_type == EmailEventType::Click {
            link.fmt(format_args!(
                "{WEB_BASE}{}?utm_source=newsletter&utm_medium=email&utm_campaign={}",
                c.landing, c.id
            ));
        } else {
            link.null();
        }
    }
    vec![
        timestamps(rows.iter().map(|r| r.occurred_at)),
        email.finish(),
        campaign.finish(),
        event_type.finish(),
        link.finish(),
    ]
}

pub(crate) fn consents(rows: &[ConsentRow]) -> Columns {
    let n = rows.len();
    let (mut customer, mut email, mut phone) = (Text::new(n), Text::new(n), Text::new(n));
    let (mut purpose, mut point) = (Text::new(n), Text::new(n));
    for r in rows {
        customer.customer(r.customer);
        email.opt_str(r.email.as_deref());
        phone.opt_str(r.phone.as_deref());
        purpose.str(r.purpose.as_str());
        point.str(r.collection_point.as_str());
    }
    vec![
        timestamps(rows.iter().map(|r| r.occurred_at)),
        customer.finish(),
        email.finish(),
        phone.finish(),
        purpose.finish(),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.granted))
                .collect::<BooleanArray>(),
        ),
        point.finish(),
    ]
}

pub(crate) fn int64(values: Vec<i64>) -> ArrayRef {
    Arc::new(Int64Array::from(values))
}
