-- Completed revenue and orders per day (UTC) and channel, with returns and cancellations.
SELECT
    CAST(ordered_at AS DATE) AS day,
    channel,
    count(*) FILTER (WHERE status = 'completed') AS orders,
    coalesce(sum(revenue) FILTER (WHERE status = 'completed'), 0) AS revenue,
    count(*) FILTER (WHERE status = 'returned') AS returned_orders,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled_orders
FROM staging.orders
GROUP BY CAST(ordered_at AS DATE), channel
