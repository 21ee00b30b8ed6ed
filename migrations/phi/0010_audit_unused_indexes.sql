-- Two indexes from before tenants that no statement uses: every listing of the trail is one tenant's in seq order
-- (phi_audit_tenant), with actor (actor_sub OR actor_client) and time filters applied along it, and nothing else
-- reads the trail by `at` or `actor_sub` alone. Each cost every audited access an index entry (CPU and bytes).
DROP INDEX `phi_audit_at`;--> statement-breakpoint
DROP INDEX `phi_audit_actor`;