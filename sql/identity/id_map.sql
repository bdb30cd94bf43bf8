-- The identifier -> person map that everything downstream joins on.
SELECT id_type, id_value, unified_id, unified_since
FROM identity.identifiers
WHERE status = 'linked'
