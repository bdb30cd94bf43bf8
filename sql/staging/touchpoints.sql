-- Marketing touchpoints: one per web/app session (its landing event) and one per email open
-- or click. channel_group() applies the [attribution] channel rules of cdphub.toml to the
-- touchpoint kind, UTM source and medium and referrer.
WITH sessions AS (
    SELECT
        session_id,
        event_id,
        occurred_at,
        utm_source,
        utm_medium,
        utm_campaign,
        referrer,
        row_number() OVER (PARTITION BY session_id ORDER BY occurred_at, event_id) AS step
    FROM raw.web_events
),
landings AS (
    SELECT
        'web:' || session_id AS touchpoint_id,
        'web_events' AS source,
        event_id AS record_id,
        occurred_at,
        channel_group('visit', utm_source, utm_medium, referrer) AS channel,
        utm_campaign AS campaign_id
    FROM sessions
    WHERE step = 1
)
SELECT
    touchpoint_id,
    source,
    record_id,
    occurred_at,
    -- A visit from a paid channel is a click on an ad.
    CASE WHEN channel IN ('paid_search', 'paid_social', 'display', 'affiliate') THEN 'ad_click' ELSE 'visit' END AS kind,
    channel,
    campaign_id
FROM landings
UNION ALL
SELECT
    'email:' || event_id,
    'email_events',
    event_id,
    occurred_at,
    'email_' || event_type,
    channel_group('email_' || event_type, 'newsletter', 'email', NULL),
    campaign_id
FROM raw.email_events
WHERE event_type IN ('open', 'click')
