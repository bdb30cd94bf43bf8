-- The identity graph's edges: every identifier of a record linked to that record's
-- strongest identifier, its anchor (found by staging.identities). A record with one
-- identifier gives a link from it to itself, which just declares it.
SELECT
    anchor_type AS id_type,
    anchor_value AS id_value,
    id_type AS linked_type,
    id_value AS linked_value,
    count(*) AS records,
    min(observed_at) AS first_seen,
    max(observed_at) AS last_seen
FROM staging.identities
GROUP BY 1, 2, 3, 4
