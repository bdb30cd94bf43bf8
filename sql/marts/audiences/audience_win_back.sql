-- Win-back: buyers in the RFM segment At Risk (they bought often or a lot, but not lately)
-- who consent to email marketing and have an email address.
SELECT
    r.unified_id,
    p.email,
    r.recency_days,
    r.frequency,
    r.monetary
FROM marts.rfm_scores AS r
JOIN marts.customer_profiles AS p ON p.unified_id = r.unified_id
JOIN marts.customer_consents AS c
    ON c.unified_id = r.unified_id AND c.purpose = 'email_marketing' AND c.granted
WHERE r.segment = 'At Risk' AND p.email IS NOT NULL
