"""The sync service between missions: a case goes to the missions of its source and
destination countries, as far as consent and each link's allow-list let it.

`registry` (the missions, `config/missions.json`) · `keys` (this mission's Ed25519 key) ·
`routing` (who gets what; plain functions) · `outbox` (rows written with the case change) ·
`signing` (canonical JSON, signatures) · `delivery` (the RQ job that sends batches) ·
`scheduler` (the sync process: queues due deliveries) · `inbox` and `views` (POST
/sync/v1/inbox: check, then apply once) · `apply` (a change becomes a case: copies,
version order, tombstones) · `cli` · `linkage` (is an incoming person one we have? keyed
encodings, never names; plain functions, not yet called by the inbox).
Merging concurrent edits (HLC, review queue), ownership transfers and referrals are
still to come.
"""
