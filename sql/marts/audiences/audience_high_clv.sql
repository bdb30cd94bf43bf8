-- High value: the top 10% of buyers by predicted 365-day value (marts.customer_ltv), among
-- those who accept marketing text messages and have a mobile number; for VIP offers by SMS.
WITH ranked AS (
    SELECT
        unified_id,
        predicted_clv_365d,
        p_alive,
        percent_rank() OVER (ORDER BY predicted_clv_365d) AS clv_percentile
    FROM marts.customer_ltv
    WHERE predicted_clv_365d IS NOT NULL
)
SELECT
    r.unified_id,
    p.phone,
    r.predicted_clv_365d,
    r.p_alive,
    r.clv_percentile
FROM ranked AS r
JOIN marts.customer_profiles AS p ON p.unified_id = r.unified_id
JOIN marts.customer_consents AS c
    ON c.unified_id = r.unified_id AND c.purpose = 'sms_marketing' AND c.granted
WHERE r.clv_percentile >= 0.9 AND p.phone IS NOT NULL
