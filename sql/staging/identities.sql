-- Every identifier seen on every source record, normalised. Identifiers seen on the same
-- (source, record_id) belong to the same person.
WITH observed AS (
    SELECT 'crm_customers' AS source, crm_record_id AS record_id, updated_at AS observed_at,
        unnest(make_array(
            named_struct('id_type', 'customer_id', 'raw_value', customer_id),
            named_struct('id_type', 'email', 'raw_value', email),
            named_struct('id_type', 'phone', 'raw_value', phone),
            named_struct('id_type', 'loyalty_id', 'raw_value', loyalty_id)
        )) AS id
    FROM raw.crm_customers
    UNION ALL
    SELECT 'web_events', event_id, occurred_at,
        unnest(make_array(
            named_struct('id_type', 'customer_id', 'raw_value', customer_id),
            named_struct('id_type', 'email', 'raw_value', email),
            named_struct('id_type', 'anonymous_id', 'raw_value', anonymous_id),
            named_struct('id_type', 'device_id', 'raw_value', device_id)
        ))
    FROM raw.web_events
    UNION ALL
    SELECT 'orders', order_id, ordered_at,
        unnest(make_array(
            named_struct('id_type', 'customer_id', 'raw_value', customer_id),
            named_struct('id_type', 'email', 'raw_value', email),
            named_struct('id_type', 'phone', 'raw_value', phone),
            named_struct('id_type', 'loyalty_id', 'raw_value', loyalty_id),
            named_struct('id_type', 'anonymous_id', 'raw_value', anonymous_id),
            named_struct('id_type', 'device_id', 'raw_value', device_id)
        ))
    FROM raw.orders
    UNION ALL
    SELECT 'email_events', event_id, occurred_at,
        unnest(make_array(named_struct('id_type', 'email', 'raw_value', email)))
    FROM raw.email_events
    UNION ALL
    SELECT 'consents', consent_id, occurred_at,
        unnest(make_array(
            named_struct('id_type', 'customer_id', 'raw_value', customer_id),
            named_struct('id_type', 'email', 'raw_value', email),
            named_struct('id_type', 'phone', 'raw_value', phone)
        ))
    FROM raw.consents
),
normalised AS (
    SELECT
        source,
        record_id,
        id['id_type'] AS id_type,
        -- The cleaning functions follow [identity] in cdphub.toml (phone region, Gmail rules).
        CASE id['id_type']
            WHEN 'email' THEN normalize_email(id['raw_value'])
            WHEN 'phone' THEN normalize_phone(id['raw_value'])
            WHEN 'loyalty_id' THEN upper(trim(id['raw_value']))
            ELSE trim(id['raw_value'])
        END AS id_value,
        observed_at
    FROM observed
)
SELECT source, record_id, id_type, id_value, observed_at
FROM normalised
WHERE id_value IS NOT NULL AND id_value <> ''
