-- Lifetime value per buyer from the fitted models (marts.ltv_model), time unit days:
-- P(alive), expected purchases in the next 30, 90 and 365 days, expected spend per purchase
-- and the predicted value of the next 365 days (expected purchases x expected spend,
-- undiscounted; predicted_clv takes a discount rate and period as two more arguments).
-- A BG/NBD fit that did not converge predicts nothing: its buyers get NULL predictions and
-- model_converged = false (too few buyers or repeat purchases to identify the model). A
-- Gamma-Gamma fit that runs off to the edge (q and v towards infinity with v / q fixed: the
-- buyers do not differ in typical spend) is still used: its expected spend then tends to the
-- population mean, which the formula gives.
-- Buyers whose repeat purchases are worth nothing carry no spend information: their
-- expected spend is the population mean (frequency 0 for the spend model).
WITH model AS (
    SELECT
        named_struct('r', bgnbd_r, 'alpha', bgnbd_alpha, 'a', bgnbd_a, 'b', bgnbd_b) AS bgnbd,
        named_struct('p', gamma_gamma_p, 'q', gamma_gamma_q, 'v', gamma_gamma_v) AS gamma_gamma,
        coalesce(bgnbd_converged, false) AND gamma_gamma_p IS NOT NULL AS converged
    FROM marts.ltv_model
),
buyers AS (
    SELECT
        *,
        CASE WHEN monetary_value > 0 THEN frequency ELSE 0 END AS spend_frequency
    FROM marts.purchase_summary
)
SELECT
    b.unified_id,
    b.analysis_date,
    b.frequency,
    b.recency,
    b.t,
    b.monetary_value,
    m.converged AS model_converged,
    CASE WHEN m.converged THEN bgnbd_p_alive(m.bgnbd, b.frequency, b.recency, b.t) END AS p_alive,
    CASE WHEN m.converged THEN bgnbd_expected_purchases(m.bgnbd, 30, b.frequency, b.recency, b.t) END AS expected_purchases_30d,
    CASE WHEN m.converged THEN bgnbd_expected_purchases(m.bgnbd, 90, b.frequency, b.recency, b.t) END AS expected_purchases_90d,
    CASE WHEN m.converged THEN bgnbd_expected_purchases(m.bgnbd, 365, b.frequency, b.recency, b.t) END AS expected_purchases_365d,
    CASE WHEN m.converged THEN gamma_gamma_expected_spend(m.gamma_gamma, b.spend_frequency, b.monetary_value) END AS expected_average_spend,
    CASE
        WHEN NOT m.converged THEN NULL
        WHEN b.spend_frequency = b.frequency
        THEN predicted_clv(m.bgnbd, m.gamma_gamma, 365, b.frequency, b.recency, b.t, b.monetary_value)
        ELSE bgnbd_expected_purchases(m.bgnbd, 365, b.frequency, b.recency, b.t)
            * gamma_gamma_expected_spend(m.gamma_gamma, 0, 0)
    END AS predicted_clv_365d
FROM buyers AS b
CROSS JOIN model AS m
