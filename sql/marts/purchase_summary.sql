-- Each buyer's completed orders before the analysis date, summarised: the shared input of
-- marts.rfm_scores and the lifetime-value models. Returns and cancellations do not count.
-- Days are UTC days. The analysis date is [analytics] as-of in cdphub.toml, else the day
-- after the last order; the observation period ends the day before it.
--
-- BTYD inputs, in days, as the `lifetimes` library's summary_data_from_transaction_data
-- (freq 'D', observation_period_end = the day before the analysis date) computes them:
--   frequency       purchase days after the first one (repeat purchase periods);
--   recency         days from the first purchase day to the last one;
--   t               days from the first purchase day to the end of observation;
--   monetary_value  mean revenue of the repeat purchase days (0 without repeat purchases).
WITH as_of AS (
    SELECT coalesce(analysis_date(), CAST(max(ordered_at) + INTERVAL '1 day' AS DATE)) AS day
    FROM staging.orders
),
purchase_days AS (
    SELECT
        l.unified_id,
        CAST(o.ordered_at AS DATE) AS day,
        count(*) AS orders,
        sum(o.revenue) AS revenue
    FROM staging.orders AS o
    JOIN identity.record_links AS l ON l.source = 'orders' AND l.record_id = o.record_id
    WHERE o.status = 'completed' AND CAST(o.ordered_at AS DATE) < (SELECT day FROM as_of)
    GROUP BY l.unified_id, CAST(o.ordered_at AS DATE)
),
buyers AS (
    SELECT
        unified_id,
        min(day) AS first_order_date,
        max(day) AS last_order_date,
        sum(orders) AS orders,
        sum(revenue) AS revenue,
        count(*) AS purchase_days,
        sum(revenue) - coalesce(first(revenue ORDER BY day), 0) AS repeat_revenue
    FROM purchase_days
    GROUP BY unified_id
)
SELECT
    b.unified_id,
    a.day AS analysis_date,
    b.first_order_date,
    b.last_order_date,
    b.orders,
    b.revenue,
    b.purchase_days,
    b.purchase_days - 1 AS frequency,
    b.last_order_date - b.first_order_date AS recency,
    a.day - b.first_order_date - 1 AS t,
    coalesce(CAST(b.repeat_revenue AS DOUBLE) / nullif(b.purchase_days - 1, 0), 0.0) AS monetary_value
FROM buyers AS b
CROSS JOIN as_of AS a
