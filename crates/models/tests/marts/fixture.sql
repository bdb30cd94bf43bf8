-- A small, hand-made customer base for the mart tests (tests/marts/*.slt say what each
-- person is for). Times are UTC unless an offset is written; amounts in EUR.
--   u_a  four completed orders on three days (two on 1 January), one return, two visits,
--        email engagement, sms consent, email consent granted then revoked
--   u_b  one app order at 01:30 Paris time on 1 April, which is 31 March in UTC; email
--        consent granted and revoked at the same instant
--   u_c  two orders on one day and a cancelled one
--   u_d  three store orders over five weeks, long ago; email consent: the win-back target
--   u_k  the same orders as u_d on the web; consented, then unsubscribed by email link
--   u_e  a return only, a visit and an email; email consent
--   u_g  two large recent web orders; sms consent and a phone: the high-value target
--   u_h  one small order long ago
--   (guest) one completed web order that links to no person
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS identity;
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE staging.orders AS
SELECT
    order_id,
    'orders' AS source,
    order_id AS record_id,
    arrow_cast(to_timestamp_micros(ordered_at), 'Timestamp(Microsecond, Some("UTC"))') AS ordered_at,
    CAST(revenue AS DECIMAL(12, 2)) AS revenue,
    status,
    channel,
    store_id
FROM (VALUES
    ('OA1', '2025-01-01T10:00:00Z', 100.00, 'completed', 'web', NULL),
    ('OA2', '2025-01-01T15:00:00Z', 50.00, 'completed', 'store', 'S1'),
    ('OA3', '2025-01-11T09:00:00Z', 30.00, 'completed', 'store', 'S1'),
    ('OA4', '2025-03-01T12:00:00Z', 70.00, 'completed', 'store', 'S2'),
    ('OA5', '2025-02-01T12:00:00Z', 40.00, 'returned', 'web', NULL),
    ('OB1', '2025-04-01T01:30:00+02:00', 80.00, 'completed', 'app', NULL),
    ('OC1', '2025-02-10T08:00:00Z', 20.00, 'completed', 'web', NULL),
    ('OC2', '2025-02-10T20:00:00Z', 10.00, 'completed', 'web', NULL),
    ('OC3', '2025-03-15T10:00:00Z', 999.00, 'cancelled', 'web', NULL),
    ('OD1', '2024-12-01T11:00:00Z', 200.00, 'completed', 'store', 'S2'),
    ('OD2', '2024-12-15T11:00:00Z', 100.00, 'completed', 'store', 'S2'),
    ('OD3', '2025-01-05T11:00:00Z', 300.00, 'completed', 'store', 'S2'),
    ('OK1', '2024-12-01T11:00:00Z', 200.00, 'completed', 'web', NULL),
    ('OK2', '2024-12-15T11:00:00Z', 100.00, 'completed', 'web', NULL),
    ('OK3', '2025-01-05T11:00:00Z', 300.00, 'completed', 'web', NULL),
    ('OE1', '2025-01-20T10:00:00Z', 60.00, 'returned', 'web', NULL),
    ('OF1', '2025-03-15T11:00:00Z', 45.00, 'completed', 'web', NULL),
    ('OG1', '2025-03-20T10:00:00Z', 500.00, 'completed', 'web', NULL),
    ('OG2', '2025-03-25T10:00:00Z', 500.00, 'completed', 'web', NULL),
    ('OH1', '2024-11-15T10:00:00Z', 15.00, 'completed', 'store', 'S1')
) AS v(order_id, ordered_at, revenue, status, channel, store_id);

CREATE TABLE staging.order_lines AS
SELECT order_id, line_number, product_id, category, quantity, CAST(unit_price AS DECIMAL(12, 2)) AS unit_price
FROM (VALUES
    ('OA1', 1, 'P1', 'Femme', 1, 100.00),
    ('OA2', 1, 'P2', 'Homme', 2, 25.00),
    ('OA3', 1, 'P3', 'Homme', 1, 30.00),
    ('OA4', 1, 'P4', 'Femme', 1, 70.00),
    ('OA5', 1, 'P5', 'Maison', 5, 8.00),
    ('OB1', 1, 'P6', 'Enfant', 1, 80.00),
    ('OC1', 1, 'P7', 'Femme', 1, 20.00),
    ('OC2', 1, 'P8', 'Accessoires', 1, 10.00),
    ('OC3', 1, 'P9', 'Maison', 1, 999.00),
    ('OD1', 1, 'P5', 'Maison', 2, 100.00),
    ('OD2', 1, 'P10', 'Beauté', 1, 100.00),
    ('OD3', 1, 'P10', 'Beauté', 1, 300.00),
    ('OK1', 1, 'P5', 'Maison', 2, 100.00),
    ('OK2', 1, 'P10', 'Beauté', 1, 100.00),
    ('OK3', 1, 'P10', 'Beauté', 1, 300.00),
    ('OE1', 1, 'P1', 'Femme', 1, 60.00),
    ('OF1', 1, 'P7', 'Femme', 1, 45.00),
    ('OG1', 1, 'P11', 'Chaussures', 1, 500.00),
    ('OG2', 1, 'P11', 'Chaussures', 1, 500.00),
    ('OH1', 1, 'P7', 'Femme', 1, 15.00)
) AS v(order_id, line_number, product_id, category, quantity, unit_price);

CREATE TABLE staging.web_sessions AS
SELECT
    session_id,
    'web_events' AS source,
    record_id,
    platform,
    arrow_cast(to_timestamp_micros(started_at), 'Timestamp(Microsecond, Some("UTC"))') AS started_at,
    arrow_cast(to_timestamp_micros(started_at), 'Timestamp(Microsecond, Some("UTC"))') AS ended_at,
    CAST(events AS BIGINT) AS events,
    CAST(events AS BIGINT) AS page_views,
    reached_checkout
FROM (VALUES
    ('SA1', 'WA1', 'web', '2025-01-01T09:50:00Z', 2, true),
    ('SA2', 'WA2', 'web', '2025-02-15T18:00:00Z', 1, false),
    ('SE1', 'WE1', 'web', '2025-01-01T11:00:00Z', 1, false),
    ('SX1', 'WX1', 'app', '2025-01-01T12:00:00Z', 3, false)
) AS v(session_id, record_id, platform, started_at, events, reached_checkout);

CREATE TABLE staging.email_events AS
SELECT
    event_id,
    'email_events' AS source,
    event_id AS record_id,
    arrow_cast(to_timestamp_micros(occurred_at), 'Timestamp(Microsecond, Some("UTC"))') AS occurred_at,
    campaign_id,
    event_type
FROM (VALUES
    ('EA1', '2025-01-01T08:00:00Z', 'EM1', 'send'),
    ('EA2', '2025-01-01T09:00:00Z', 'EM1', 'open'),
    ('EA3', '2025-01-01T09:05:00Z', 'EM1', 'click'),
    ('EA4', '2025-01-08T08:00:00Z', 'EM2', 'send'),
    ('EA5', '2025-01-15T08:00:00Z', 'EM3', 'send'),
    ('EA6', '2025-01-15T12:00:00Z', 'EM3', 'open'),
    ('EE1', '2025-01-01T08:00:00Z', 'EM1', 'send'),
    ('EX1', '2025-01-01T08:00:00Z', 'EM1', 'send'),
    ('EK1', '2025-01-01T08:00:00Z', 'EM1', 'send'),
    ('EK2', '2025-01-01T20:00:00Z', 'EM1', 'open'),
    ('EK3', '2025-01-29T08:00:00Z', 'EM4', 'send'),
    ('EK4', '2025-02-01T09:00:00Z', 'EM4', 'unsubscribe')
) AS v(event_id, occurred_at, campaign_id, event_type);

-- One row per identifier of a consent record, as staging.consents has them.
CREATE TABLE staging.consents AS
SELECT
    id_type,
    id_value,
    purpose,
    granted,
    arrow_cast(to_timestamp_micros(occurred_at), 'Timestamp(Microsecond, Some("UTC"))') AS occurred_at,
    consent_id,
    'web_form' AS collection_point
FROM (VALUES
    ('phone', '+33611111111', 'sms_marketing', true, '2025-01-01T10:00:00Z', 'CA1'),
    ('email', 'a@example.fr', 'email_marketing', true, '2025-01-01T10:00:00Z', 'CA2'),
    ('email', 'a@example.fr', 'email_marketing', false, '2025-02-01T10:00:00Z', 'CA3'),
    ('email', 'b@example.fr', 'email_marketing', true, '2025-03-01T10:00:00Z', 'CB1'),
    ('email', 'b@example.fr', 'email_marketing', false, '2025-03-01T10:00:00Z', 'CB2'),
    ('email', 'd@example.fr', 'email_marketing', true, '2024-12-01T11:00:00Z', 'CD1'),
    ('customer_id', 'C4', 'email_marketing', true, '2024-12-01T11:00:00Z', 'CD1'),
    ('email', 'e@example.fr', 'email_marketing', true, '2025-01-01T11:00:00Z', 'CE1'),
    ('phone', '+33677777777', 'sms_marketing', true, '2025-03-20T10:00:00Z', 'CG1'),
    ('customer_id', 'C7', 'personalization', true, '2025-03-20T10:00:00Z', 'CG2'),
    ('email', 'k@example.fr', 'email_marketing', true, '2024-12-01T11:00:00Z', 'CK1')
) AS v(id_type, id_value, purpose, granted, occurred_at, consent_id);

CREATE TABLE identity.record_links AS
SELECT source, record_id, unified_id, 'customer_id' AS matched_by
FROM (VALUES
    ('orders', 'OA1', 'u_a'), ('orders', 'OA2', 'u_a'), ('orders', 'OA3', 'u_a'),
    ('orders', 'OA4', 'u_a'), ('orders', 'OA5', 'u_a'), ('orders', 'OB1', 'u_b'),
    ('orders', 'OC1', 'u_c'), ('orders', 'OC2', 'u_c'), ('orders', 'OC3', 'u_c'),
    ('orders', 'OD1', 'u_d'), ('orders', 'OD2', 'u_d'), ('orders', 'OD3', 'u_d'),
    ('orders', 'OK1', 'u_k'), ('orders', 'OK2', 'u_k'), ('orders', 'OK3', 'u_k'),
    ('orders', 'OE1', 'u_e'), ('orders', 'OG1', 'u_g'), ('orders', 'OG2', 'u_g'),
    ('orders', 'OH1', 'u_h'),
    ('web_events', 'WA1', 'u_a'), ('web_events', 'WA2', 'u_a'), ('web_events', 'WE1', 'u_e'),
    ('email_events', 'EA1', 'u_a'), ('email_events', 'EA2', 'u_a'), ('email_events', 'EA3', 'u_a'),
    ('email_events', 'EA4', 'u_a'), ('email_events', 'EA5', 'u_a'), ('email_events', 'EA6', 'u_a'),
    ('email_events', 'EE1', 'u_e'), ('email_events', 'EK1', 'u_k'), ('email_events', 'EK2', 'u_k'),
    ('email_events', 'EK3', 'u_k'), ('email_events', 'EK4', 'u_k'),
    ('consents', 'CA1', 'u_a'), ('consents', 'CA2', 'u_a'), ('consents', 'CA3', 'u_a'),
    ('consents', 'CB1', 'u_b'), ('consents', 'CB2', 'u_b'), ('consents', 'CD1', 'u_d'),
    ('consents', 'CE1', 'u_e'), ('consents', 'CG1', 'u_g'), ('consents', 'CG2', 'u_g'),
    ('consents', 'CK1', 'u_k')
) AS v(source, record_id, unified_id);

-- The golden record, reduced to the columns the marts read.
CREATE TABLE marts.customer_profiles AS
SELECT unified_id, email, phone
FROM (VALUES
    ('u_a', 'a@example.fr', '+33611111111'),
    ('u_b', 'b@example.fr', NULL),
    ('u_c', NULL, NULL),
    ('u_d', 'd@example.fr', NULL),
    ('u_e', 'e@example.fr', NULL),
    ('u_g', 'g@example.fr', '+33677777777'),
    ('u_h', NULL, NULL),
    ('u_k', 'k@example.fr', NULL)
) AS v(unified_id, email, phone);
