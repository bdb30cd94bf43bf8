-- Daily KPIs per sales channel (store, web, app) and for all channels together
-- (channel = 'all'). Days are UTC days.
--   orders, revenue, aov          completed orders; returns and cancellations counted apart
--   customers                     distinct persons with a completed order that day
--   new_customers                 ... whose first completed order ever was that day
--   returning_customers           ... who had bought on an earlier day; repeat_rate is
--                                 returning_customers / customers
--   sessions, visitors            web and app sessions, distinct persons visiting
--   bounce_rate                   sessions with a single event / sessions
--   conversion_rate               sessions that reached the checkout / sessions
--   revenue_per_visitor           online (web and app) revenue / visitors
--   email_sends, email_clicks,    email events of the day, on the 'all' row only: email is
--   email_ctr                     not a sales channel; CTR is clicks / sends
-- Store rows have no sessions, so their traffic ratios are NULL.
-- Distinct customers and visitors are counted in two steps: one row per person (or visitor),
-- day and channel first, then plain counts of those rows; the 'all' rows are folded from the
-- per-channel rows. Plain GROUP BYs, not GROUPING SETS: DataFusion skips the partial
-- aggregation of a plain grouping when it barely reduces the rows (one row per visitor-day
-- here), never of grouping sets. Each input is read and joined to its links once. A person's
-- first completed order comes from the same orders, so this mart does not wait for
-- marts.customer_traits.
WITH orders AS (
    SELECT CAST(o.ordered_at AS DATE) AS day, o.channel, o.status, o.revenue, l.unified_id
    FROM staging.orders AS o
    LEFT JOIN identity.record_links AS l ON l.source = 'orders' AND l.record_id = o.record_id
),
buyer_channel_days AS (
    SELECT
        day,
        channel,
        unified_id,
        count(*) FILTER (WHERE status = 'completed') AS orders,
        sum(revenue) FILTER (WHERE status = 'completed') AS revenue,
        count(*) FILTER (WHERE status = 'returned') AS returned_orders,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled_orders,
        sum(revenue) FILTER (WHERE status = 'completed' AND channel IN ('web', 'app')) AS online_revenue
    FROM orders
    GROUP BY day, channel, unified_id
),
buyer_days AS (
    SELECT day, channel, unified_id, orders, revenue, returned_orders, cancelled_orders, online_revenue
    FROM buyer_channel_days
    UNION ALL
    SELECT day, 'all', unified_id, sum(orders), sum(revenue), sum(returned_orders),
        sum(cancelled_orders), sum(online_revenue)
    FROM buyer_channel_days
    GROUP BY day, unified_id
),
first_order_days AS (
    SELECT unified_id, min(day) AS first_order_day
    FROM buyer_channel_days
    WHERE orders > 0 AND unified_id IS NOT NULL
    GROUP BY unified_id
),
sales AS (
    SELECT
        b.day,
        b.channel,
        sum(b.orders) AS orders,
        sum(b.revenue) AS revenue,
        sum(b.returned_orders) AS returned_orders,
        sum(b.cancelled_orders) AS cancelled_orders,
        count(*) FILTER (WHERE b.orders > 0 AND b.unified_id IS NOT NULL) AS customers,
        count(*) FILTER (WHERE b.orders > 0 AND b.unified_id IS NOT NULL AND f.first_order_day = b.day) AS new_customers,
        count(*) FILTER (WHERE b.orders > 0 AND b.unified_id IS NOT NULL AND f.first_order_day < b.day) AS returning_customers,
        sum(b.online_revenue) AS online_revenue
    FROM buyer_days AS b
    LEFT JOIN first_order_days AS f ON f.unified_id = b.unified_id
    GROUP BY b.day, b.channel
),
sessions AS (
    SELECT
        CAST(s.started_at AS DATE) AS day,
        s.platform AS channel,
        s.events,
        s.reached_checkout,
        coalesce(l.unified_id, 'session:' || s.session_id) AS visitor
    FROM staging.web_sessions AS s
    LEFT JOIN identity.record_links AS l ON l.source = 'web_events' AND l.record_id = s.record_id
),
visitor_days AS (
    SELECT
        day,
        channel,
        visitor,
        count(*) AS sessions,
        count(*) FILTER (WHERE events = 1) AS bounces,
        count(*) FILTER (WHERE reached_checkout) AS converted_sessions
    FROM sessions
    GROUP BY day, channel, visitor
),
traffic AS (
    SELECT
        day,
        channel,
        sum(sessions) AS sessions,
        count(*) AS visitors,
        sum(bounces) AS bounces,
        sum(converted_sessions) AS converted_sessions
    FROM visitor_days
    GROUP BY day, channel
    UNION ALL
    SELECT day, 'all', sum(sessions), count(DISTINCT visitor), sum(bounces), sum(converted_sessions)
    FROM visitor_days
    GROUP BY day
),
email AS (
    SELECT
        CAST(occurred_at AS DATE) AS day,
        'all' AS channel,
        count(*) FILTER (WHERE event_type = 'send') AS email_sends,
        count(*) FILTER (WHERE event_type = 'open') AS email_opens,
        count(*) FILTER (WHERE event_type = 'click') AS email_clicks
    FROM staging.email_events
    GROUP BY CAST(occurred_at AS DATE)
)
SELECT
    coalesce(s.day, t.day, e.day) AS day,
    coalesce(s.channel, t.channel, e.channel) AS channel,
    coalesce(s.orders, 0) AS orders,
    CAST(coalesce(s.revenue, 0) AS DECIMAL(22, 2)) AS revenue,
    CAST(s.revenue AS DOUBLE) / nullif(s.orders, 0) AS aov,
    coalesce(s.returned_orders, 0) AS returned_orders,
    coalesce(s.cancelled_orders, 0) AS cancelled_orders,
    coalesce(s.customers, 0) AS customers,
    coalesce(s.new_customers, 0) AS new_customers,
    coalesce(s.returning_customers, 0) AS returning_customers,
    CAST(s.returning_customers AS DOUBLE) / nullif(s.customers, 0) AS repeat_rate,
    t.sessions,
    t.visitors,
    CAST(t.bounces AS DOUBLE) / nullif(t.sessions, 0) AS bounce_rate,
    CAST(t.converted_sessions AS DOUBLE) / nullif(t.sessions, 0) AS conversion_rate,
    CAST(coalesce(s.online_revenue, 0) AS DOUBLE) / nullif(t.visitors, 0) AS revenue_per_visitor,
    e.email_sends,
    e.email_opens,
    e.email_clicks,
    CAST(e.email_clicks AS DOUBLE) / nullif(e.email_sends, 0) AS email_ctr
FROM sales AS s
FULL JOIN traffic AS t ON t.day = s.day AND t.channel = s.channel
FULL JOIN email AS e ON e.day = coalesce(s.day, t.day) AND e.channel = coalesce(s.channel, t.channel)
