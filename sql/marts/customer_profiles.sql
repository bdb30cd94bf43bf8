-- The golden record: one row per person (unified_id). Each field names its survivorship
-- rule in survive(value, observed_at, source, '<rule>'); change the word to change the rule:
--   most_frequent    the value seen most often, then the most recent;
--   most_recent      the latest observation;
--   source_priority  the most trusted source first ([identity] source-priority in
--                    cdphub.toml), then the most recent.
WITH persons AS (
    SELECT unified_id, min(unified_since) AS unified_since, count(*) AS identifiers
    FROM identity.id_map
    GROUP BY unified_id
),
crm AS (
    SELECT l.unified_id, c.*
    FROM staging.customers AS c
    JOIN identity.record_links AS l ON l.source = 'crm_customers' AND l.record_id = c.record_id
),
attributes AS (
    SELECT
        unified_id,
        survive(customer_id, updated_at, source, 'most_recent') AS customer_id,
        survive(first_name, updated_at, source, 'most_frequent') AS first_name,
        survive(last_name, updated_at, source, 'most_frequent') AS last_name,
        survive(birth_date, updated_at, source, 'most_frequent') AS birth_date,
        survive(city, updated_at, source, 'most_recent') AS city,
        survive(postal_code, updated_at, source, 'most_recent') AS postal_code,
        survive(preferred_store_id, updated_at, source, 'most_recent') AS preferred_store_id,
        min(created_at) AS customer_since,
        count(*) AS crm_records
    FROM crm
    GROUP BY unified_id
),
contacts AS (
    SELECT
        m.unified_id,
        survive(CASE WHEN i.id_type = 'email' THEN i.id_value END, i.observed_at, i.source, 'source_priority') AS email,
        survive(CASE WHEN i.id_type = 'phone' THEN i.id_value END, i.observed_at, i.source, 'source_priority') AS phone,
        survive(CASE WHEN i.id_type = 'loyalty_id' THEN i.id_value END, i.observed_at, i.source, 'source_priority') AS loyalty_id
    FROM staging.identities AS i
    JOIN identity.id_map AS m ON m.id_type = i.id_type AND m.id_value = i.id_value
    WHERE i.id_type IN ('email', 'phone', 'loyalty_id')
    GROUP BY m.unified_id
),
activity AS (
    SELECT unified_id, count(*) AS records, min(observed_at) AS first_seen_at, max(observed_at) AS last_seen_at
    FROM identity.record_links
    GROUP BY unified_id
)
SELECT
    p.unified_id,
    c.customer_id,
    c.first_name,
    c.last_name,
    k.email,
    k.phone,
    c.birth_date,
    c.city,
    c.postal_code,
    k.loyalty_id,
    c.preferred_store_id,
    c.customer_since,
    coalesce(c.crm_records, 0) AS crm_records,
    p.identifiers,
    coalesce(a.records, 0) AS records,
    a.first_seen_at,
    a.last_seen_at,
    p.unified_since,
    (c.customer_id IS NOT NULL OR k.email IS NOT NULL OR k.phone IS NOT NULL) AS is_known
FROM persons AS p
LEFT JOIN attributes AS c ON c.unified_id = p.unified_id
LEFT JOIN contacts AS k ON k.unified_id = p.unified_id
LEFT JOIN activity AS a ON a.unified_id = p.unified_id
