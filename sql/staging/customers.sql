-- CRM accounts, cleaned: the attributes the golden record chooses from.
SELECT
    'crm_customers' AS source,
    crm_record_id AS record_id,
    trim(customer_id) AS customer_id,
    regexp_replace(trim(first_name), '\s+', ' ', 'g') AS first_name,
    regexp_replace(trim(last_name), '\s+', ' ', 'g') AS last_name,
    normalize_name(first_name) AS first_name_key,
    normalize_name(last_name) AS last_name_key,
    normalize_email(email) AS email,
    normalize_phone(phone) AS phone,
    birth_date,
    regexp_replace(trim(city), '\s+', ' ', 'g') AS city,
    trim(postal_code) AS postal_code,
    upper(trim(loyalty_id)) AS loyalty_id,
    preferred_store_id,
    created_at,
    updated_at
FROM raw.crm_customers
