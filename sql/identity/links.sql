-- The identity graph's edges: every identifier of a record linked to that record's
-- strongest identifier ([identity] priority, then type, then value). A record with one
-- identifier gives a link from it to itself, which just declares it.
--
-- The anchor is the minimum of a sortable text key per record: a hash aggregate, far
-- cheaper than a window sorted over every identifier of every record.
WITH anchors AS (
    SELECT
        source,
        record_id,
        min(lpad(CAST(id_priority(id_type) AS VARCHAR), 3, '0') || chr(31) || id_type || chr(31) || id_value) AS anchor_key
    FROM staging.identities
    GROUP BY source, record_id
),
anchored AS (
    SELECT
        a.source,
        a.record_id,
        split_part(a.anchor_key, chr(31), 2) AS anchor_type,
        a.anchor_key
    FROM anchors AS a
)
SELECT
    a.anchor_type AS id_type,
    -- The value is everything after the second separator (3 digits, separator, type, separator).
    substr(a.anchor_key, 6 + length(a.anchor_type)) AS id_value,
    i.id_type AS linked_type,
    i.id_value AS linked_value,
    count(*) AS records,
    min(i.observed_at) AS first_seen,
    max(i.observed_at) AS last_seen
FROM staging.identities AS i
JOIN anchored AS a ON a.source = i.source AND a.record_id = i.record_id
GROUP BY 1, 2, 3, 4
