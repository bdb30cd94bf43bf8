-- One row per order from the tills, the web shop and the app, in EUR.
SELECT
    order_id,
    'orders' AS source,
    order_id AS record_id,
    ordered_at,
    total_amount AS revenue,
    currency,
    lower(trim(status)) AS status,
    lower(trim(channel)) AS channel,
    store_id,
    payment_method,
    utm_campaign AS campaign_id
FROM raw.orders
