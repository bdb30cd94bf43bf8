-- Marketing touchpoints: one per web/app session (its landing event) and one per email open
-- or click. The channel grouping follows UTM medium, then the referrer.
WITH sessions AS (
    SELECT
        session_id,
        event_id,
        occurred_at,
        lower(utm_medium) AS medium,
        utm_campaign,
        lower(referrer) AS referrer,
        row_number() OVER (PARTITION BY session_id ORDER BY occurred_at, event_id) AS step
    FROM raw.web_events
)
SELECT
    'web:' || session_id AS touchpoint_id,
    'web_events' AS source,
    event_id AS record_id,
    occurred_at,
    CASE WHEN medium IN ('cpc', 'paid_social', 'display', 'affiliate') THEN 'ad_click' ELSE 'visit' END AS kind,
    CASE
        WHEN medium = 'cpc' THEN 'paid_search'
        WHEN medium IN ('paid_social', 'display', 'affiliate', 'email') THEN medium
        WHEN referrer IS NULL OR referrer = '' THEN 'direct'
        WHEN referrer LIKE '%google.%' OR referrer LIKE '%bing.%' OR referrer LIKE '%qwant.%' THEN 'organic_search'
        WHEN referrer LIKE '%facebook.%' OR referrer LIKE '%instagram.%' OR referrer LIKE '%tiktok.%' THEN 'organic_social'
        ELSE 'referral'
    END AS channel,
    utm_campaign AS campaign_id
FROM sessions
WHERE step = 1
UNION ALL
SELECT
    'email:' || event_id,
    'email_events',
    event_id,
    occurred_at,
    'email_' || event_type,
    'email',
    campaign_id
FROM raw.email_events
WHERE event_type IN ('open', 'click')
