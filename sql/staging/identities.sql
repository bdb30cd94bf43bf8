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
        CASE id['id_type']
            WHEN 'email' THEN lower(trim(id['raw_value']))
            -- French numbers to E.164: 06 12 34 56 78, 0033 6..., +33 6... all become +336...
            WHEN 'phone' THEN CASE
                WHEN regexp_replace(id['raw_value'], '[^0-9+]', '', 'g') LIKE '+%'
                    THEN regexp_replace(id['raw_value'], '[^0-9+]', '', 'g')
                WHEN regexp_replace(id['raw_value'], '[^0-9]', '', 'g') LIKE '00%'
                    THEN '+' || substr(regexp_replace(id['raw_value'], '[^0-9]', '', 'g'), 3)
                WHEN regexp_replace(id['raw_value'], '[^0-9]', '', 'g') LIKE '0_________'
                    THEN '+33' || substr(regexp_replace(id['raw_value'], '[^0-9]', '', 'g'), 2)
                END
            WHEN 'loyalty_id' THEN upper(trim(id['raw_value']))
            ELSE trim(id['raw_value'])
        END AS id_value,
        observed_at
    FROM observed
)
SELECT source, record_id, id_type, id_value, observed_at
FROM normalised
WHERE id_value IS NOT NULL AND id_value <> ''
