-- Every identifier, stitched into persons by the Rust stitch function under the
-- [identity] rules (limits, priority, blocklists). Naming this model as the second
-- argument reads its previous version, so people keep their unified_id across runs.
SELECT
    id_type,
    id_value,
    unified_id,
    unified_since,
    previous_unified_id,
    status,
    reason,
    cluster_size
FROM stitch('identity.links', 'identity.identifiers')
