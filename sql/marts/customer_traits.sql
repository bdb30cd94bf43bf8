-- Customer 360 traits, one row per person of marts.customer_profiles, from everything known
-- (not cut at the analysis date). Orders count when completed; returns and cancellations
-- are counted apart. Favourites: the channel and store with the most completed orders and
-- the category with the most items bought; ties go to the most recent, then the name.
-- Email CTR is clicks / sends. Consent flags are the latest decision per purpose
-- (marts.customer_consents); never asked is false.
WITH orders AS (
    SELECT l.unified_id, o.order_id, o.ordered_at, o.status, o.revenue, o.channel, o.store_id
    FROM staging.orders AS o
    JOIN identity.record_links AS l ON l.source = 'orders' AND l.record_id = o.record_id
),
order_stats AS (
    SELECT
        unified_id,
        min(ordered_at) FILTER (WHERE status = 'completed') AS first_order_at,
        max(ordered_at) FILTER (WHERE status = 'completed') AS last_order_at,
        count(*) FILTER (WHERE status = 'completed') AS orders,
        sum(revenue) FILTER (WHERE status = 'completed') AS revenue,
        count(*) FILTER (WHERE status = 'returned') AS returned_orders,
        sum(revenue) FILTER (WHERE status = 'returned') AS returned_revenue,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled_orders
    FROM orders
    GROUP BY unified_id
),
-- Favourites: per person and value, its count and latest order; then the best value.
channels AS (
    SELECT unified_id, first(channel ORDER BY orders DESC, last_order_at DESC, channel) AS channel
    FROM (
        SELECT unified_id, channel, count(*) AS orders, max(ordered_at) AS last_order_at
        FROM orders
        WHERE status = 'completed'
        GROUP BY unified_id, channel
    ) AS by_channel
    GROUP BY unified_id
),
stores AS (
    SELECT unified_id, first(store_id ORDER BY orders DESC, last_order_at DESC, store_id) AS store_id
    FROM (
        SELECT unified_id, store_id, count(*) AS orders, max(ordered_at) AS last_order_at
        FROM orders
        WHERE status = 'completed' AND store_id IS NOT NULL
        GROUP BY unified_id, store_id
    ) AS by_store
    GROUP BY unified_id
),
categories AS (
    SELECT unified_id, first(category ORDER BY items DESC, last_order_at DESC, category) AS category
    FROM (
        SELECT o.unified_id, ol.category, sum(ol.quantity) AS items, max(o.ordered_at) AS last_order_at
        FROM orders AS o
        JOIN staging.order_lines AS ol ON ol.order_id = o.order_id
        WHERE o.status = 'completed'
        GROUP BY o.unified_id, ol.category
    ) AS by_category
    GROUP BY unified_id
),
visits AS (
    SELECT l.unified_id, count(*) AS web_visits, max(s.started_at) AS last_visit_at
    FROM staging.web_sessions AS s
    JOIN identity.record_links AS l ON l.source = 'web_events' AND l.record_id = s.record_id
    GROUP BY l.unified_id
),
email AS (
    SELECT
        l.unified_id,
        count(*) FILTER (WHERE e.event_type = 'send') AS email_sends,
        count(*) FILTER (WHERE e.event_type = 'open') AS email_opens,
        count(*) FILTER (WHERE e.event_type = 'click') AS email_clicks,
        max(e.occurred_at) FILTER (WHERE e.event_type = 'unsubscribe') AS email_unsubscribed_at
    FROM staging.email_events AS e
    JOIN identity.record_links AS l ON l.source = 'email_events' AND l.record_id = e.record_id
    GROUP BY l.unified_id
),
consents AS (
    SELECT
        unified_id,
        bool_or(granted) FILTER (WHERE purpose = 'email_marketing') AS email_marketing,
        bool_or(granted) FILTER (WHERE purpose = 'sms_marketing') AS sms_marketing,
        bool_or(granted) FILTER (WHERE purpose = 'personalization') AS personalization,
        bool_or(granted) FILTER (WHERE purpose = 'analytics') AS analytics
    FROM marts.customer_consents
    GROUP BY unified_id
)
SELECT
    p.unified_id,
    os.first_order_at,
    os.last_order_at,
    coalesce(os.orders, 0) AS orders,
    coalesce(os.revenue, 0) AS revenue,
    CAST(os.revenue AS DOUBLE) / nullif(os.orders, 0) AS average_order_value,
    coalesce(os.returned_orders, 0) AS returned_orders,
    coalesce(os.returned_revenue, 0) AS returned_revenue,
    coalesce(os.cancelled_orders, 0) AS cancelled_orders,
    ch.channel AS favourite_channel,
    st.store_id AS favourite_store_id,
    ca.category AS favourite_category,
    coalesce(v.web_visits, 0) AS web_visits,
    v.last_visit_at,
    coalesce(e.email_sends, 0) AS email_sends,
    coalesce(e.email_opens, 0) AS email_opens,
    coalesce(e.email_clicks, 0) AS email_clicks,
    CAST(e.email_clicks AS DOUBLE) / nullif(e.email_sends, 0) AS email_ctr,
    e.email_unsubscribed_at,
    -- Unsubscribed by an email link and not opted in again since.
    (e.email_unsubscribed_at IS NOT NULL AND NOT coalesce(c.email_marketing, false)) AS email_unsubscribed,
    coalesce(c.email_marketing, false) AS consent_email_marketing,
    coalesce(c.sms_marketing, false) AS consent_sms_marketing,
    coalesce(c.personalization, false) AS consent_personalization,
    coalesce(c.analytics, false) AS consent_analytics
FROM marts.customer_profiles AS p
LEFT JOIN order_stats AS os ON os.unified_id = p.unified_id
LEFT JOIN channels AS ch ON ch.unified_id = p.unified_id
LEFT JOIN stores AS st ON st.unified_id = p.unified_id
LEFT JOIN categories AS ca ON ca.unified_id = p.unified_id
LEFT JOIN visits AS v ON v.unified_id = p.unified_id
LEFT JOIN email AS e ON e.unified_id = p.unified_id
LEFT JOIN consents AS c ON c.unified_id = p.unified_id
