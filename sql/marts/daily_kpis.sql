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
WITH orders AS (
    SELECT CAST(o.ordered_at AS DATE) AS day, o.channel, o.status, o.revenue, l.unified_id
    FROM staging.orders AS o
    LEFT JOIN identity.record_links AS l ON l.source = o.source AND l.record_id = o.record_id
),
first_orders AS (
    SELECT unified_id, min(day) AS first_day
    FROM orders
    WHERE status = 'completed' AND unified_id IS NOT NULL
    GROUP BY unified_id
),
-- Each order once under its channel and once under 'all', so one aggregation serves both.
order_facts AS (
    SELECT o.day, o.channel, o.status, o.revenue, o.unified_id, o.channel IN ('web', 'app') AS online, f.first_day
    FROM orders AS o
    LEFT JOIN first_orders AS f ON f.unified_id = o.unified_id
    UNION ALL
    SELECT o.day, 'all', o.status, o.revenue, o.unified_id, o.channel IN ('web', 'app'), f.first_day
    FROM orders AS o
    LEFT JOIN first_orders AS f ON f.unified_id = o.unified_id
),
sales AS (
    SELECT
        day,
        channel,
        count(*) FILTER (WHERE status = 'completed') AS orders,
        sum(revenue) FILTER (WHERE status = 'completed') AS revenue,
        count(*) FILTER (WHERE status = 'returned') AS returned_orders,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled_orders,
        count(DISTINCT unified_id) FILTER (WHERE status = 'completed') AS customers,
        count(DISTINCT unified_id) FILTER (WHERE status = 'completed' AND first_day = day) AS new_customers,
        count(DISTINCT unified_id) FILTER (WHERE status = 'completed' AND first_day < day) AS returning_customers,
        sum(revenue) FILTER (WHERE status = 'completed' AND online) AS online_revenue
    FROM order_facts
    GROUP BY day, channel
),
sessions AS (
    SELECT
        CAST(s.started_at AS DATE) AS day,
        s.platform AS channel,
        s.events,
        s.reached_checkout,
        coalesce(l.unified_id, 'session:' || s.session_id) AS visitor
    FROM staging.web_sessions AS s
    LEFT JOIN identity.record_links AS l ON l.source = s.source AND l.record_id = s.record_id
),
traffic AS (
    SELECT
        day,
        channel,
        count(*) AS sessions,
        count(DISTINCT visitor) AS visitors,
        count(*) FILTER (WHERE events = 1) AS bounces,
        count(*) FILTER (WHERE reached_checkout) AS converted_sessions
    FROM (
        SELECT day, channel, events, reached_checkout, visitor FROM sessions
        UNION ALL
        SELECT day, 'all', events, reached_checkout, visitor FROM sessions
    ) AS both_levels
    GROUP BY day, channel
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
),
days AS (
    SELECT day, channel FROM sales
    UNION
    SELECT day, channel FROM traffic
    UNION
    SELECT day, channel FROM email
)
SELECT
    d.day,
    d.channel,
    coalesce(s.orders, 0) AS orders,
    coalesce(s.revenue, 0) AS revenue,
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
FROM days AS d
LEFT JOIN sales AS s ON s.day = d.day AND s.channel = d.channel
LEFT JOIN traffic AS t ON t.day = d.day AND t.channel = d.channel
LEFT JOIN email AS e ON e.day = d.day AND e.channel = d.channel
