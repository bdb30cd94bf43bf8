//! The exact Arrow schemas of the raw sources and of the ground truth table.
//!
//! Staging SQL is written against these names and types: do not rename.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// `Timestamp(Microsecond, Some("UTC"))`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// EUR amounts: `Decimal128(12, 2)`.
pub fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

pub(crate) const MONEY_PRECISION: u8 = 12;
pub(crate) const MONEY_SCALE: i8 = 2;

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

pub fn crm_customers() -> SchemaRef {
    schema(vec![
        utf8("crm_record_id", false),
        utf8("customer_id", false),
        utf8("first_name", true),
        utf8("last_name", true),
        utf8("email", true),
        utf8("phone", true),
        Field::new("birth_date", DataType::Date32, true),
        utf8("city", true),
        utf8("postal_code", true),
        utf8("loyalty_id", true),
        Field::new("created_at", timestamp_type(), false),
        Field::new("updated_at", timestamp_type(), false),
        utf8("preferred_store_id", true),
    ])
}

/// web_events; files are partitioned by `event_month=YYYY-MM`, which is not a file column.
pub fn web_events() -> SchemaRef {
    schema(vec![
        utf8("event_id", false),
        Field::new("occurred_at", timestamp_type(), false),
        utf8("session_id", false),
        utf8("platform", false),
        utf8("anonymous_id", true),
        utf8("device_id", true),
        utf8("customer_id", true),
        utf8("email", true),
        utf8("event_type", false),
        utf8("page_url", false),
        utf8("referrer", true),
        utf8("utm_source", true),
        utf8("utm_medium", true),
        utf8("utm_campaign", true),
        utf8("product_id", true),
    ])
}

pub fn orders() -> SchemaRef {
    schema(vec![
        utf8("order_id", false),
        Field::new("ordered_at", timestamp_type(), false),
        utf8("channel", false),
        utf8("store_id", true),
        utf8("customer_id", true),
        utf8("email", true),
        utf8("phone", true),
        utf8("loyalty_id", true),
        utf8("anonymous_id", true),
        utf8("device_id", true),
        utf8("status", false),
        Field::new("total_amount", money_type(), false),
        utf8("currency", false),
        utf8("payment_method", false),
        utf8("utm_campaign", true),
    ])
}

pub fn order_lines() -> SchemaRef {
    schema(vec![
        utf8("order_id", false),
        Field::new("line_number", DataType::Int32, false),
        utf8("product_id", false),
        utf8("product_name", false),
        utf8("category", false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("unit_price", money_type(), false),
    ])
}

/// email_events; files are partitioned by `event_month=YYYY-MM`, which is not a file column.
pub fn email_events() -> SchemaRef {
    schema(vec![
        utf8("event_id", false),
        Field::new("occurred_at", timestamp_type(), false),
        utf8("email", false),
        utf8("campaign_id", false),
        utf8("event_type", false),
        utf8("link_url", true),
    ])
}

pub fn ad_spend() -> SchemaRef {
    schema(vec![
        Field::new("date", DataType::Date32, false),
        utf8("platform", false),
        utf8("channel", false),
        utf8("campaign_id", false),
        utf8("campaign_name", false),
        Field::new("impressions", DataType::Int64, false),
        Field::new("clicks", DataType::Int64, false),
        Field::new("cost", money_type(), false),
    ])
}

pub fn consents() -> SchemaRef {
    schema(vec![
        utf8("consent_id", false),
        Field::new("occurred_at", timestamp_type(), false),
        utf8("customer_id", true),
        utf8("email", true),
        utf8("phone", true),
        utf8("purpose", false),
        Field::new("granted", DataType::Boolean, false),
        utf8("collection_point", false),
    ])
}

/// `_truth/record_persons`: one row per person-bearing raw record.
pub fn truth_record_persons() -> SchemaRef {
    schema(vec![
        utf8("source", false),
        utf8("record_id", false),
        utf8("person_id", false),
        Field::new("resolvable", DataType::Boolean, false),
    ])
}

/// The schema of a raw source by name (one of [`crate::SOURCES`]).
pub fn source_schema(source: &str) -> Option<SchemaRef> {
    Some(match source {
        "crm_customers" => crm_customers(),
        "web_events" => web_events(),
        "orders" => orders(),
        "order_lines" => order_lines(),
        "email_events" => email_events(),
        "ad_spend" => ad_spend(),
        "consents" => consents(),
        _ => return None,
    })
}

/// The hive partition column of a source, if it is partitioned.
pub fn partition_column(source: &str) -> Option<&'static str> {
    matches!(source, "web_events" | "email_events").then_some("event_month")
}
