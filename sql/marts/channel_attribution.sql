-- Conversions and revenue credited to each channel by every model of [attribution] models.
-- Rule models sum the per-conversion credits of the converted journeys. markov and shapley
-- are fitted on every journey, converted or not, and split the total conversions and revenue
-- in proportion to the removal effects (markov: total x RE(channel) / sum of RE) or to the
-- Shapley values over coalition conversion rates.
WITH models AS (
    SELECT model, fitted FROM attribution_models()
),
rule_credits AS (
    SELECT
        m.model,
        unnest(attribute_journey(j.channels, j.touched_at, j.converted_at, j.revenue, m.model)) AS credit
    FROM marts.journeys AS j
    CROSS JOIN models AS m
    WHERE j.converted AND NOT m.fitted
),
fits AS (
    SELECT
        m.model,
        attribute(
            j.channels,
            CASE WHEN j.converted THEN 1 ELSE 0 END,
            CASE WHEN j.converted THEN 0 ELSE 1 END,
            j.revenue,
            m.model
        ) AS channels
    FROM marts.journeys AS j
    CROSS JOIN models AS m
    WHERE m.fitted
    GROUP BY m.model
),
fitted_credits AS (
    SELECT model, unnest(channels) AS credit FROM fits
)
SELECT
    model,
    credit['channel'] AS channel,
    sum(credit['credit']) AS conversions,
    sum(credit['revenue_credit']) AS revenue,
    CAST(NULL AS DOUBLE) AS removal_effect
FROM rule_credits
GROUP BY model, credit['channel']
UNION ALL
SELECT
    model,
    credit['channel'],
    credit['conversions'],
    credit['revenue'],
    credit['removal_effect']
FROM fitted_credits
