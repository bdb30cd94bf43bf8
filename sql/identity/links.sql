-- The identity graph's edges: every identifier of a record linked to that record's
-- strongest identifier ([identity] priority). A record with one identifier gives a link
-- from it to itself, which just declares it.
WITH anchored AS (
    SELECT
        id_type,
        id_value,
        observed_at,
        first_value(id_type) OVER by_strength AS anchor_type,
        first_value(id_value) OVER by_strength AS anchor_value
    FROM staging.identities
    WINDOW by_strength AS (
        PARTITION BY source, record_id
        ORDER BY id_priority(id_type), id_type, id_value
    )
)
SELECT
    anchor_type AS id_type,
    anchor_value AS id_value,
    id_type AS linked_type,
    id_value AS linked_value,
    count(*) AS records,
    min(observed_at) AS first_seen,
    max(observed_at) AS last_seen
FROM anchored
GROUP BY anchor_type, anchor_value, id_type, id_value
