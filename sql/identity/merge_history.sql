-- What changed since the previous stitch, one row per (from, to) move:
--   merge: the old id is gone, its identifiers now belong to an older person;
--   split: the old id lives on, some of its identifiers left it (to_unified_id is NULL
--          when they were set aside as junk or contested).
WITH moved AS (
    SELECT
        previous_unified_id,
        unified_id,
        min(reason) AS reason,
        count(*) AS identifiers
    FROM identity.identifiers
    WHERE previous_unified_id IS NOT NULL
        AND unified_id IS DISTINCT FROM previous_unified_id
    GROUP BY previous_unified_id, unified_id
),
in_use AS (
    SELECT DISTINCT unified_id FROM identity.identifiers WHERE unified_id IS NOT NULL
)
SELECT
    run_id() AS run_id,
    run_started_at() AS recorded_at,
    CASE WHEN in_use.unified_id IS NULL AND moved.unified_id IS NOT NULL THEN 'merge' ELSE 'split' END AS event,
    moved.previous_unified_id AS from_unified_id,
    moved.unified_id AS to_unified_id,
    moved.identifiers,
    moved.reason
FROM moved
LEFT JOIN in_use ON in_use.unified_id = moved.previous_unified_id
