-- What each conversion credits to each channel and campaign under every model of
-- [attribution] models: per conversion and model, credits sum to 1 and revenue credits to
-- the order's revenue. Rule models credit each journey on its own (attribute_journey).
-- markov and shapley spread each conversion over the channels of its own path in proportion
-- to their channel-level values in marts.channel_attribution (credit_path), so for those two
-- models the channel totals there are not the sums of these credits.
WITH models AS (
    SELECT model, fitted FROM attribution_models()
),
converted AS (
    SELECT conversion_id, unified_id, converted_at, revenue, channels, campaign_ids, touched_at
    FROM marts.journeys
    WHERE converted
),
fitted AS (
    SELECT a.model, array_agg(named_struct('channel', a.channel, 'value', a.conversions)) AS channel_values
    FROM marts.channel_attribution AS a
    JOIN models AS m ON m.model = a.model AND m.fitted
    GROUP BY a.model
),
steps AS (
    SELECT
        j.conversion_id,
        j.unified_id,
        j.converted_at,
        j.campaign_ids,
        m.model,
        unnest(attribute_journey(j.channels, j.touched_at, j.converted_at, j.revenue, m.model)) AS credit
    FROM converted AS j
    CROSS JOIN models AS m
    WHERE NOT m.fitted
    UNION ALL
    SELECT
        j.conversion_id,
        j.unified_id,
        j.converted_at,
        j.campaign_ids,
        f.model,
        unnest(credit_path(j.channels, j.revenue, f.channel_values))
    FROM converted AS j
    CROSS JOIN fitted AS f
)
SELECT
    conversion_id,
    unified_id,
    model,
    credit['channel'] AS channel,
    campaign_ids[credit['step']] AS campaign_id,
    sum(credit['credit']) AS credit,
    sum(credit['revenue_credit']) AS revenue_credit,
    converted_at
FROM steps
WHERE credit['credit'] > 0
GROUP BY conversion_id, unified_id, model, credit['channel'], campaign_ids[credit['step']], converted_at
