-- RFM per buyer, from the completed orders before the analysis date (marts.purchase_summary).
--   recency_days  days from the last completed order's (UTC) day to the analysis date;
--   frequency     completed orders;   monetary  their total revenue.
-- Scores are quintiles from 1 to 5, 5 best (most recent, most orders, most revenue):
-- score = 1 + floor(5 * (rank - 1) / buyers), where rank orders the buyers from worst to
-- best and ties share the lowest rank, so equal values always get equal scores.
-- fm_score = (f_score + m_score) / 2 rounded half up. Segments, by r_score and fm_score:
--   r \ fm   1                2                3                4                5
--   5        New              Potential Loy.   Potential Loy.   Champions        Champions
--   4        Promising        Potential Loy.   Potential Loy.   Loyal            Loyal
--   3        About to Sleep   About to Sleep   Need Attention   Loyal            Loyal
--   2        Hibernating      Hibernating      At Risk          At Risk          Can't Lose Them
--   1        Lost             Hibernating      At Risk          At Risk          Can't Lose Them
-- A value's rank is 1 + the buyers with a worse value: counted per distinct value, then
-- summed over the values in order, so the sorts are of distinct values, not of every buyer.
WITH summary AS (
    SELECT
        unified_id,
        analysis_date,
        last_order_date,
        analysis_date - last_order_date AS recency_days,
        orders AS frequency,
        revenue AS monetary
    FROM marts.purchase_summary
),
buyers AS (
    SELECT count(*) AS n FROM summary
),
recency_ranks AS (
    SELECT recency_days, sum(buyers) OVER (ORDER BY recency_days DESC) - buyers + 1 AS rank
    FROM (SELECT recency_days, count(*) AS buyers FROM summary GROUP BY recency_days) AS by_value
),
frequency_ranks AS (
    SELECT frequency, sum(buyers) OVER (ORDER BY frequency) - buyers + 1 AS rank
    FROM (SELECT frequency, count(*) AS buyers FROM summary GROUP BY frequency) AS by_value
),
monetary_ranks AS (
    SELECT monetary, sum(buyers) OVER (ORDER BY monetary) - buyers + 1 AS rank
    FROM (SELECT monetary, count(*) AS buyers FROM summary GROUP BY monetary) AS by_value
),
scored AS (
    SELECT
        s.*,
        1 + CAST(floor(5.0 * (r.rank - 1) / b.n) AS INT) AS r_score,
        1 + CAST(floor(5.0 * (f.rank - 1) / b.n) AS INT) AS f_score,
        1 + CAST(floor(5.0 * (m.rank - 1) / b.n) AS INT) AS m_score
    FROM summary AS s
    CROSS JOIN buyers AS b
    JOIN recency_ranks AS r ON r.recency_days IS NOT DISTINCT FROM s.recency_days
    JOIN frequency_ranks AS f ON f.frequency IS NOT DISTINCT FROM s.frequency
    JOIN monetary_ranks AS m ON m.monetary IS NOT DISTINCT FROM s.monetary
),
combined AS (
    SELECT *, CAST(floor((f_score + m_score) / 2.0 + 0.5) AS INT) AS fm_score
    FROM scored
)
SELECT
    unified_id,
    analysis_date,
    last_order_date,
    recency_days,
    frequency,
    monetary,
    r_score,
    f_score,
    m_score,
    fm_score,
    CASE
        WHEN r_score = 5 AND fm_score = 1 THEN 'New'
        WHEN r_score = 5 AND fm_score >= 4 THEN 'Champions'
        WHEN r_score = 4 AND fm_score = 1 THEN 'Promising'
        WHEN r_score >= 4 AND fm_score <= 3 THEN 'Potential Loyalists'
        WHEN r_score >= 3 AND fm_score >= 4 THEN 'Loyal'
        WHEN r_score = 3 AND fm_score = 3 THEN 'Need Attention'
        WHEN r_score = 3 THEN 'About to Sleep'
        WHEN fm_score = 5 THEN 'Can''t Lose Them'
        WHEN fm_score >= 3 THEN 'At Risk'
        WHEN r_score = 1 AND fm_score = 1 THEN 'Lost'
        ELSE 'Hibernating'
    END AS segment
FROM combined
