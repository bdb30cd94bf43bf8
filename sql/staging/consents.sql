-- Consent events per identifier and purpose; identifiers come normalised from staging.identities.
SELECT
    ids.id_type,
    ids.id_value,
    lower(trim(c.purpose)) AS purpose,
    c.granted,
    c.occurred_at,
    c.consent_id,
    c.collection_point
FROM raw.consents AS c
JOIN staging.identities AS ids
    ON ids.source = 'consents' AND ids.record_id = c.consent_id
