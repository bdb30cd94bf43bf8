-- Each staged record's person: the unified_id of its strongest usable identifier, and the
-- record's time (observed_at), so per-person activity needs no second pass over
-- staging.identities. Records whose only identifiers are junk or contested (a shared
-- tablet) have no row.
--
-- Almost every record's anchor (its strongest identifier) is usable, and is then the
-- answer: one join on the anchor row of each record. Only the records whose anchor is not
-- in identity.id_map choose among their other identifiers, with a GROUP BY over those few.
WITH by_anchor AS (
    SELECT i.source, i.record_id, m.unified_id, i.anchor_type AS matched_by, i.observed_at
    FROM staging.identities AS i
    JOIN identity.id_map AS m ON m.id_type = i.anchor_type AND m.id_value = i.anchor_value
    WHERE i.id_type = i.anchor_type AND i.id_value = i.anchor_value
),
unusable_anchor AS (
    SELECT i.source, i.record_id, i.id_type, i.id_value, i.observed_at
    FROM staging.identities AS i
    LEFT ANTI JOIN identity.id_map AS m ON m.id_type = i.anchor_type AND m.id_value = i.anchor_value
),
fallback AS (
    -- identifier_key sorts the strongest first; the person rides at the end of the key.
    SELECT r.source, r.record_id, min(identifier_key(r.id_type, r.id_value) || chr(31) || m.unified_id) AS best,
        max(r.observed_at) AS observed_at
    FROM unusable_anchor AS r
    JOIN identity.id_map AS m ON m.id_type = r.id_type AND m.id_value = r.id_value
    GROUP BY r.source, r.record_id
)
SELECT source, record_id, unified_id, matched_by, observed_at
FROM by_anchor
UNION ALL
SELECT source, record_id, split_part(best, chr(31), -1), split_part(best, chr(31), 2), observed_at
FROM fallback
