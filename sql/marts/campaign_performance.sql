-- Campaign performance per campaign, day and attribution model: spend, impressions, clicks
-- and CTR from the ad platforms; conversions and revenue credited to the campaign by the
-- model (on the day of the conversion), ROAS (revenue / spend), CPA (spend / conversions);
-- visitors (persons the campaign touched that day) and revenue per visitor.
WITH spend AS (
    SELECT
        campaign_id,
        day,
        min(channel) AS channel,
        sum(CAST(spend AS DOUBLE)) AS spend,
        sum(impressions) AS impressions,
        sum(clicks) AS clicks
    FROM staging.ad_spend
    GROUP BY campaign_id, day
),
credited AS (
    SELECT
        campaign_id,
        CAST(converted_at AS DATE) AS day,
        model,
        min(channel) AS channel,
        sum(credit) AS conversions,
        sum(revenue_credit) AS revenue
    FROM marts.attribution_credits
    WHERE campaign_id IS NOT NULL
    GROUP BY campaign_id, CAST(converted_at AS DATE), model
),
visitors AS (
    SELECT t.campaign_id, CAST(t.occurred_at AS DATE) AS day, count(DISTINCT l.unified_id) AS visitors
    FROM staging.touchpoints AS t
    JOIN identity.record_links AS l ON l.source = t.source AND l.record_id = t.record_id
    WHERE t.campaign_id IS NOT NULL
    GROUP BY t.campaign_id, CAST(t.occurred_at AS DATE)
),
grid AS (
    SELECT s.campaign_id, s.day, m.model FROM spend AS s CROSS JOIN attribution_models() AS m
    UNION
    SELECT campaign_id, day, model FROM credited
)
SELECT
    g.campaign_id,
    g.day,
    g.model,
    coalesce(s.channel, c.channel) AS channel,
    coalesce(s.spend, 0.0) AS spend,
    coalesce(s.impressions, 0) AS impressions,
    coalesce(s.clicks, 0) AS clicks,
    CAST(s.clicks AS DOUBLE) / nullif(s.impressions, 0) AS ctr,
    coalesce(c.conversions, 0.0) AS conversions,
    coalesce(c.revenue, 0.0) AS revenue,
    c.revenue / nullif(s.spend, 0.0) AS roas,
    s.spend / nullif(c.conversions, 0.0) AS cpa,
    coalesce(v.visitors, 0) AS visitors,
    coalesce(c.revenue, 0.0) / nullif(v.visitors, 0) AS revenue_per_visitor
FROM grid AS g
LEFT JOIN spend AS s ON s.campaign_id = g.campaign_id AND s.day = g.day
LEFT JOIN credited AS c ON c.campaign_id = g.campaign_id AND c.day = g.day AND c.model = g.model
LEFT JOIN visitors AS v ON v.campaign_id = g.campaign_id AND v.day = g.day
