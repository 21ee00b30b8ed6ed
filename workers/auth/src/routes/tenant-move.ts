import { Hono } from "hono";
import { ApiError } from "../../../../shared/errors";
import type { AppVariables } from "../../../../shared/http";
import { TENANT_ID_PATTERN } from "../../../../shared/tenants";
import { securityEvent } from "../bearer";
import { authConfig } from "../config";
import { requirePlatformAdmin } from "../tenant-access";
import { moveTenant, MoveTenant } from "../tenant-move";
import { tenantView } from "../tenants";
import { jsonBody, parse } from "./admin";

const app = new Hono<{ Bindings: Env; Variables: AppVariables }>();

/**
 * Moves a tenant's PHI to another shard (README "Tenants, shards and scale"): platform admins only.
 * The answer comes when the move is done: the tenant's new placement and what was copied and removed.
 */
app.post("/admin/tenants/:id/move", async (c) => {
  const caller = await requirePlatformAdmin(c);
  const input = parse(MoveTenant, await jsonBody(c));
  const id = c.req.param("id");
  if (!TENANT_ID_PATTERN.test(id)) throw new ApiError(404, "tenant_not_found", "No tenant has this id.");
  try {
    const m = await moveTenant(c, caller, id, input.shard);
    securityEvent(c, "tenant_moved", { clientId: caller.clientId, reason: `tenant ${id} shard ${m.from} -> ${m.tenant.shard}: ${input.reason}` });
    return c.json({
      tenant: tenantView(m.tenant),
      from_shard: m.from,
      copied: m.copied,
      source_removed: m.sourceRemoved,
      source_purged: m.sourcePurged,
      frozen_ms: m.frozenMs,
      tokens_refused_within_ms: authConfig(c.env).REVOCATION_REFRESH_MS,
    });
  } catch (err) {
    if (err instanceof ApiError && err.code === "tenant_move_failed") {
      securityEvent(c, "tenant_move_failed", { clientId: caller.clientId, reason: `tenant ${id} -> shard ${input.shard}: ${input.reason}` });
    }
    throw err;
  }
});

export default app;
