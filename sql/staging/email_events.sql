-- Email service provider events: sends, opens, clicks, bounces and unsubscribes.
SELECT
    event_id,
    'email_events' AS source,
    event_id AS record_id,
    occurred_at,
    campaign_id,
    lower(trim(event_type)) AS event_type
FROM raw.email_events
