-- Each person's consent per purpose: the latest decision wins. Decisions are the consent
-- events of staging.consents and the unsubscribe links clicked in emails (a revocation of
-- email_marketing even when the email platform never synced it back). On the same instant
-- a revocation beats a grant. A person without any decision for a purpose has no row:
-- no consent. Identical decisions need no DISTINCT: row_number() keeps one of them.
WITH decisions AS (
    SELECT l.unified_id, c.purpose, c.granted, c.occurred_at, 'consent' AS decided_by
    FROM staging.consents AS c
    JOIN identity.record_links AS l ON l.source = 'consents' AND l.record_id = c.consent_id
    UNION ALL
    SELECT l.unified_id, 'email_marketing', false, e.occurred_at, 'email_unsubscribe'
    FROM staging.email_events AS e
    JOIN identity.record_links AS l ON l.source = 'email_events' AND l.record_id = e.record_id
    WHERE e.event_type = 'unsubscribe'
),
ranked AS (
    SELECT
        unified_id,
        purpose,
        granted,
        occurred_at,
        decided_by,
        row_number() OVER (
            PARTITION BY unified_id, purpose
            ORDER BY occurred_at DESC, granted ASC, decided_by
        ) AS latest
    FROM decisions
)
SELECT unified_id, purpose, granted, occurred_at AS decided_at, decided_by
FROM ranked
WHERE latest = 1
