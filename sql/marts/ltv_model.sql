-- The lifetime-value models fitted by maximum likelihood on every buyer's history in days
-- (marts.purchase_summary): BG/NBD for the number of purchases and Gamma-Gamma for the
-- spend per purchase (fitted on repeat buyers with a positive mean spend, as the model
-- requires). One row: the parameters, the log-likelihood and whether each fit converged.
WITH fits AS (
    SELECT
        max(analysis_date) AS analysis_date,
        count(*) AS buyers,
        bgnbd_fit(frequency, recency, t) AS bgnbd,
        gamma_gamma_fit(frequency, monetary_value) FILTER (WHERE frequency > 0 AND monetary_value > 0) AS gamma_gamma
    FROM marts.purchase_summary
)
SELECT
    analysis_date,
    'day' AS time_unit,
    buyers,
    bgnbd['r'] AS bgnbd_r,
    bgnbd['alpha'] AS bgnbd_alpha,
    bgnbd['a'] AS bgnbd_a,
    bgnbd['b'] AS bgnbd_b,
    bgnbd['log_likelihood'] AS bgnbd_log_likelihood,
    bgnbd['distinct_histories'] AS bgnbd_distinct_histories,
    bgnbd['iterations'] AS bgnbd_iterations,
    bgnbd['converged'] AS bgnbd_converged,
    gamma_gamma['p'] AS gamma_gamma_p,
    gamma_gamma['q'] AS gamma_gamma_q,
    gamma_gamma['v'] AS gamma_gamma_v,
    gamma_gamma['log_likelihood'] AS gamma_gamma_log_likelihood,
    gamma_gamma['customers'] AS gamma_gamma_customers,
    gamma_gamma['iterations'] AS gamma_gamma_iterations,
    gamma_gamma['converged'] AS gamma_gamma_converged
FROM fits
