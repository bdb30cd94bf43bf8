-- Every identifier seen on every source record, normalised, one row each. Identifiers seen
-- on the same (source, record_id) belong to the same person. anchor_type and anchor_value
-- repeat, on each row of a record, its strongest identifier ([identity] priority, then
-- type, then value): identity.links links the record's identifiers to it, and finding it
-- here, one record at a time, spares a GROUP BY over every record of every source.
WITH records AS (
    SELECT 'crm_customers' AS source, crm_record_id AS record_id, updated_at AS observed_at,
        customer_id, email, phone, loyalty_id,
        CAST(NULL AS VARCHAR) AS anonymous_id, CAST(NULL AS VARCHAR) AS device_id
    FROM raw.crm_customers
    UNION ALL
    SELECT 'web_events', event_id, occurred_at,
        customer_id, email, NULL, NULL, anonymous_id, device_id
    FROM raw.web_events
    UNION ALL
    SELECT 'orders', order_id, ordered_at,
        customer_id, email, phone, loyalty_id, anonymous_id, device_id
    FROM raw.orders
    UNION ALL
    SELECT 'email_events', event_id, occurred_at,
        NULL, email, NULL, NULL, NULL, NULL
    FROM raw.email_events
    UNION ALL
    SELECT 'consents', consent_id, occurred_at,
        customer_id, email, phone, NULL, NULL, NULL
    FROM raw.consents
),
normalised AS (
    -- The cleaning functions follow [identity] in cdphub.toml (phone region, Gmail rules).
    SELECT
        source,
        record_id,
        observed_at,
        nullif(trim(customer_id), '') AS customer_id,
        nullif(normalize_email(email), '') AS email,
        nullif(normalize_phone(phone), '') AS phone,
        nullif(upper(trim(loyalty_id)), '') AS loyalty_id,
        nullif(trim(anonymous_id), '') AS anonymous_id,
        nullif(trim(device_id), '') AS device_id
    FROM records
),
keyed AS (
    SELECT
        *,
        least(
            identifier_key('customer_id', customer_id),
            identifier_key('email', email),
            identifier_key('phone', phone),
            identifier_key('loyalty_id', loyalty_id),
            identifier_key('anonymous_id', anonymous_id),
            identifier_key('device_id', device_id)
        ) AS anchor_key
    FROM normalised
),
anchored AS (
    -- identifier_key is NNN, chr(31), type, chr(31), value.
    SELECT
        *,
        split_part(anchor_key, chr(31), 2) AS anchor_type,
        substr(anchor_key, 6 + length(split_part(anchor_key, chr(31), 2))) AS anchor_value
    FROM keyed
    WHERE anchor_key IS NOT NULL
),
observed AS (
    SELECT source, record_id, observed_at, anchor_type, anchor_value,
        unnest(make_array(
            named_struct('id_type', 'customer_id', 'id_value', customer_id),
            named_struct('id_type', 'email', 'id_value', email),
            named_struct('id_type', 'phone', 'id_value', phone),
            named_struct('id_type', 'loyalty_id', 'id_value', loyalty_id),
            named_struct('id_type', 'anonymous_id', 'id_value', anonymous_id),
            named_struct('id_type', 'device_id', 'id_value', device_id)
        )) AS id
    FROM anchored
)
SELECT
    source,
    record_id,
    id['id_type'] AS id_type,
    id['id_value'] AS id_value,
    observed_at,
    anchor_type,
    anchor_value
FROM observed
WHERE id['id_value'] IS NOT NULL
