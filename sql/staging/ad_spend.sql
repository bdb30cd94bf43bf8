-- Daily spend per campaign from the ad platforms.
SELECT
    "date" AS day,
    platform,
    channel,
    campaign_id,
    campaign_name,
    impressions,
    clicks,
    cost AS spend
FROM raw.ad_spend
