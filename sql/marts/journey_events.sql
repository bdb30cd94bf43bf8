-- Every touchpoint and conversion of each person, in order, numbered by conversion: the
-- input of marts.journeys, kept as a table so that it is computed once (journeys reads it
-- twice) and so that analysts can cut journeys their own way.
-- [attribution] in cdphub.toml sets what a conversion is (is_conversion).
WITH events AS (
    SELECT
        l.unified_id,
        t.touchpoint_id AS event_id,
        t.occurred_at,
        0 AS is_conversion,
        t.channel,
        t.campaign_id,
        CAST(NULL AS DOUBLE) AS revenue
    FROM staging.touchpoints AS t
    JOIN identity.record_links AS l ON l.source = t.source AND l.record_id = t.record_id
    UNION ALL
    SELECT l.unified_id, o.order_id, o.ordered_at, 1, NULL, NULL, CAST(o.revenue AS DOUBLE)
    FROM staging.orders AS o
    JOIN identity.record_links AS l ON l.source = 'orders' AND l.record_id = o.record_id
    WHERE is_conversion(o.status, o.channel, o.revenue)
)
-- n: the person's conversions up to and including this event. A touchpoint sorts before a
-- conversion at the same instant, so the conversion it can lead to is number n + 1. Equal
-- timestamps are ordered by id, so journeys are the same on every run.
SELECT
    *,
    sum(is_conversion) OVER (
        PARTITION BY unified_id ORDER BY occurred_at, is_conversion, event_id
        ROWS UNBOUNDED PRECEDING
    ) AS n
FROM events
