-- Journeys: each person's touchpoints before each conversion, inside the lookback window,
-- and the touchpoints that led to no conversion (the Markov and Shapley models need them).
-- The events come numbered by conversion from marts.journey_events. [attribution] in
-- cdphub.toml sets the window (attribution_lookback), the steps kept (attribution_max_steps,
-- the latest) and whether consecutive repeats of a channel count once
-- (attribution_collapse_repeats).
WITH conversions AS (
    SELECT unified_id, n, event_id AS conversion_id, occurred_at AS converted_at, revenue
    FROM marts.journey_events
    WHERE is_conversion = 1
),
-- A touchpoint joins the journey of the next conversion if it falls inside its lookback
-- window; the others between two conversions (or after the last) make a journey that did
-- not convert: <unified_id>/<n + 1>/none.
touches AS (
    SELECT
        t.unified_id || '/' || CAST(t.n + 1 AS VARCHAR)
            || CASE WHEN c.conversion_id IS NULL THEN '/none' ELSE '' END AS journey_id,
        t.unified_id,
        t.event_id AS touchpoint_id,
        t.occurred_at,
        t.channel,
        t.campaign_id,
        c.conversion_id,
        c.converted_at,
        c.revenue
    FROM marts.journey_events AS t
    LEFT JOIN conversions AS c
        ON c.unified_id = t.unified_id
        AND c.n = t.n + 1
        AND t.occurred_at >= c.converted_at - attribution_lookback()
    WHERE t.is_conversion = 0
),
-- Of a run of touchpoints on one channel, the latest stays when repeats collapse.
collapsed AS (
    SELECT
        *,
        lead(channel) OVER (PARTITION BY journey_id ORDER BY occurred_at, touchpoint_id) AS next_channel
    FROM touches
),
kept AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY journey_id ORDER BY occurred_at DESC, touchpoint_id DESC
        ) AS steps_before_end
    FROM collapsed
    WHERE NOT (attribution_collapse_repeats() AND next_channel IS NOT NULL AND next_channel = channel)
),
-- Steps sorted once, as structs (occurred_at, then touchpoint_id, decide the order), then
-- split into the lists: one ordered array_agg per list is ten times slower.
steps AS (
    SELECT
        journey_id,
        unified_id,
        conversion_id,
        revenue,
        converted_at,
        array_sort(array_agg(named_struct(
            'occurred_at', occurred_at,
            'touchpoint_id', touchpoint_id,
            'channel', channel,
            'campaign_id', campaign_id
        ))) AS steps
    FROM kept
    WHERE steps_before_end <= attribution_max_steps()
    GROUP BY journey_id, unified_id, conversion_id, revenue, converted_at
)
SELECT
    journey_id,
    unified_id,
    conversion_id,
    conversion_id IS NOT NULL AS converted,
    coalesce(revenue, 0.0) AS revenue,
    converted_at,
    list_field(steps, 'channel') AS channels,
    list_field(steps, 'campaign_id') AS campaign_ids,
    list_field(steps, 'occurred_at') AS touched_at,
    list_field(steps, 'touchpoint_id') AS touchpoint_ids
FROM steps
