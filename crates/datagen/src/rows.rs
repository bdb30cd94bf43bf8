//! In-memory records of one chunk of persons, before they become Arrow columns.
//!
//! Identifier columns that need a global sequence number (event_id, order_id, ...) are not
//! stored here: they are assigned when the chunk is written, in chunk order.

use crate::calendar::Micros;

#[derive(Debug)]
pub(crate) struct CrmRow {
    pub person: u32,
    pub customer: u32,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub birth_date: Option<i32>,
    pub city: Option<String>,
    pub postal_code: Option<&'static str>,
    pub loyalty: Option<u64>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub preferred_store: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Platform {
    Web,
    App,
}

impl Platform {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::App => "app",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WebEventType {
    PageView,
    ProductView,
    AddToCart,
    Login,
    NewsletterSignup,
    FormSubmit,
    Checkout,
}

impl WebEventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::PageView => "page_view",
            Self::ProductView => "product_view",
            Self::AddToCart => "add_to_cart",
            Self::Login => "login",
            Self::NewsletterSignup => "newsletter_signup",
            Self::FormSubmit => "form_submit",
            Self::Checkout => "checkout",
        }
    }
}

/// The page an event happened on; rendered to a URL when written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Page {
    Home,
    /// A campaign or section landing path like "/soldes".
    Path(&'static str),
    Category(usize),
    Product(u32),
    Cart,
    Checkout,
    Login,
    Newsletter,
    Contact,
}

/// Which campaign a tracked visit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CampaignRef {
    Ad(u16),
    Email(u16),
}

/// The utm_* parameters of a landing page view.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Utm {
    pub source: &'static str,
    pub medium: &'static str,
    pub campaign: CampaignRef,
}

#[derive(Debug)]
pub(crate) struct WebEventRow {
    pub person: u32,
    pub occurred_at: Micros,
    pub session: u64,
    pub platform: Platform,
    pub anonymous_id: Option<u64>,
    pub device_id: Option<u64>,
    pub customer: Option<u32>,
    pub email: Option<String>,
    pub event_type: WebEventType,
    pub page: Page,
    pub referrer: Option<&'static str>,
    pub utm: Option<Utm>,
    pub product: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    Store,
    Web,
    App,
}

impl Channel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Web => "web",
            Self::App => "app",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderStatus {
    Completed,
    Returned,
    Cancelled,
}

impl OrderStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Returned => "returned",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderLine {
    pub product: u32,
    pub quantity: i32,
    pub unit_price_cents: i64,
}

#[derive(Debug)]
pub(crate) struct OrderRow {
    pub person: u32,
    pub ordered_at: Micros,
    pub channel: Channel,
    pub store: Option<usize>,
    pub customer: Option<u32>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub loyalty: Option<u64>,
    pub anonymous_id: Option<u64>,
    pub device_id: Option<u64>,
    pub status: OrderStatus,
    pub payment: &'static str,
    pub utm_campaign: Option<CampaignRef>,
    pub lines: Vec<OrderLine>,
}

impl OrderRow {
    /// total_amount: the sum of quantity x unit_price over the lines.
    pub(crate) fn total_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| i64::from(l.quantity) * l.unit_price_cents)
            .sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EmailEventType {
    Send,
    Open,
    Click,
    Bounce,
    Unsubscribe,
}

impl EmailEventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Open => "open",
            Self::Click => "click",
            Self::Bounce => "bounce",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

#[derive(Debug)]
pub(crate) struct EmailEventRow {
    pub person: u32,
    pub occurred_at: Micros,
    pub email: String,
    pub campaign: u16,
    pub event_type: EmailEventType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    EmailMarketing,
    SmsMarketing,
    Personalization,
    Analytics,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::EmailMarketing => "email_marketing",
            Self::SmsMarketing => "sms_marketing",
            Self::Personalization => "personalization",
            Self::Analytics => "analytics",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CollectionPoint {
    WebForm,
    Store,
    PreferenceCenter,
    App,
}

impl CollectionPoint {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::WebForm => "web_form",
            Self::Store => "store",
            Self::PreferenceCenter => "preference_center",
            Self::App => "app",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ConsentRow {
    pub person: u32,
    pub occurred_at: Micros,
    pub customer: Option<u32>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub purpose: Purpose,
    pub granted: bool,
    pub collection_point: CollectionPoint,
}

/// Everything generated for one chunk of persons.
#[derive(Debug, Default)]
pub(crate) struct ChunkRows {
    pub crm: Vec<CrmRow>,
    pub web: Vec<WebEventRow>,
    pub orders: Vec<OrderRow>,
    pub email: Vec<EmailEventRow>,
    pub consents: Vec<ConsentRow>,
    /// One entry per tracked paid visit: (ad campaign index, UTC window day).
    pub ad_visits: Vec<(u16, u32)>,
}
