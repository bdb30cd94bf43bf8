-- Each staged record's person: the unified_id of its strongest usable identifier. Records
-- whose only identifiers are junk or contested (a shared tablet) have no row.
SELECT
    i.source,
    i.record_id,
    first_value(m.unified_id ORDER BY id_priority(i.id_type), i.id_type, i.id_value) AS unified_id,
    first_value(i.id_type ORDER BY id_priority(i.id_type), i.id_type, i.id_value) AS matched_by
FROM staging.identities AS i
JOIN identity.id_map AS m ON m.id_type = i.id_type AND m.id_value = i.id_value
GROUP BY i.source, i.record_id
