-- One row per web or app session: its landing event (the record that identity.record_links
-- links to a person), how many events it had and whether it reached the checkout.
WITH events AS (
    SELECT
        session_id,
        event_id,
        occurred_at,
        lower(trim(platform)) AS platform,
        event_type,
        row_number() OVER (PARTITION BY session_id ORDER BY occurred_at, event_id) AS step
    FROM raw.web_events
)
SELECT
    session_id,
    'web_events' AS source,
    first_value(event_id ORDER BY step) AS record_id,
    first_value(platform ORDER BY step) AS platform,
    min(occurred_at) AS started_at,
    max(occurred_at) AS ended_at,
    count(*) AS events,
    count(*) FILTER (WHERE event_type IN ('page_view', 'product_view')) AS page_views,
    bool_or(event_type = 'checkout') AS reached_checkout
FROM events
GROUP BY session_id
