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
WITH scored AS (
    SELECT
        unified_id,
        analysis_date,
        last_order_date,
        analysis_date - last_order_date AS recency_days,
        orders AS frequency,
        revenue AS monetary,
        1 + CAST(floor(5.0 * (rank() OVER (ORDER BY analysis_date - last_order_date DESC) - 1) / count(*) OVER ()) AS INT) AS r_score,
        1 + CAST(floor(5.0 * (rank() OVER (ORDER BY orders) - 1) / count(*) OVER ()) AS INT) AS f_score,
        1 + CAST(floor(5.0 * (rank() OVER (ORDER BY revenue) - 1) / count(*) OVER ()) AS INT) AS m_score
    FROM marts.purchase_summary
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
