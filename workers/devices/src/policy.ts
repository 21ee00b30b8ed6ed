/**
 * Security and state decisions of the devices service, as pure functions of
 * plain data and `now`, so each can be tested exhaustively on its own.
 */
import type { Limit } from "./schemas/thresholds";

export type Decision = { ok: true } | { ok: false; status: 403 | 404 | 410; code: string; detail: string };

export interface Caller {
  scopes: readonly string[];
  deviceId?: string | undefined;
}

export interface DeviceState {
  status: string;
}

const DENY_NOT_THIS_DEVICE: Decision = {
  ok: false,
  status: 403,
  code: "device_mismatch",
  detail: "These credentials may act only as the device they are bound to.",
};

/**
 * A device session or reading upload: only the device's own credentials
 * (a token whose `device_id` is this device). The binding is checked before
 * existence, so a device token learns nothing about other device ids.
 */
export function deviceAccess(caller: Caller, deviceId: string, device: DeviceState | undefined): Decision {
  if (caller.deviceId === undefined || caller.deviceId !== deviceId) return DENY_NOT_THIS_DEVICE;
  if (!device) return { ok: false, status: 404, code: "device_not_found", detail: "No device has this id." };
  if (device.status !== "active") {
    return { ok: false, status: 410, code: "device_decommissioned", detail: "This device is decommissioned." };
  }
  return { ok: true };
}

/** A clinician's live feed: the device must exist and be in service. */
export function liveAccess(device: DeviceState | undefined): Decision {
  if (!device) return { ok: false, status: 404, code: "device_not_found", detail: "No device has this id." };
  if (device.status !== "active") {
    return { ok: false, status: 410, code: "device_decommissioned", detail: "This device is decommissioned." };
  }
  return { ok: true };
}

export type PreconditionResult = { ok: true } | { ok: false; status: 412 | 428; code: string; detail: string };

/** The ETag of a thresholds version (a strong validator). */
export function versionEtag(version: number): string {
  return `"${version}"`;
}

/**
 * `If-Match` for a versioned update (RFC 9110 13.1.1, RFC 6585 3): missing -> 428,
 * no listed entity tag equal to the current one -> 412. Comparison is strong, so a
 * weak tag never matches; `*` names no version and is refused like a missing header,
 * since it would let a change through without the client having seen the current value.
 */
export function checkIfMatch(header: string | undefined | null, currentVersion: number): PreconditionResult {
  const value = header?.trim();
  if (!value || value === "*") {
    return { ok: false, status: 428, code: "precondition_required", detail: "Send If-Match with the current version's ETag." };
  }
  const current = versionEtag(currentVersion);
  const tags = value.split(",").map((t) => t.trim());
  if (tags.includes(current)) return { ok: true };
  return { ok: false, status: 412, code: "version_mismatch", detail: "The thresholds changed since this version; read them again." };
}

export interface Breach {
  kind: "low" | "high";
  limit: number;
}

/** A reading outside its limits (the bounds themselves are in range, IEC 60601-1-8 style limits). */
export function breach(value: number, limit: Limit | undefined): Breach | null {
  if (!limit) return null;
  if (limit.low !== undefined && value < limit.low) return { kind: "low", limit: limit.low };
  if (limit.high !== undefined && value > limit.high) return { kind: "high", limit: limit.high };
  return null;
}

export type PresenceStep = { kind: "mark_offline" } | { kind: "rearm"; at: number } | { kind: "idle" };

/**
 * What the offline alarm does when it fires: a device silent for `offlineAfterMs`
 * is marked offline; one heard from since is checked again when its silence
 * would reach the limit; an offline device needs nothing until it is heard from.
 */
export function presenceStep(online: boolean, lastSeenMs: number | null, now: number, offlineAfterMs: number): PresenceStep {
  if (!online || lastSeenMs === null) return { kind: "idle" };
  const due = lastSeenMs + offlineAfterMs;
  if (now >= due) return { kind: "mark_offline" };
  return { kind: "rearm", at: due };
}

export interface FrameBudget {
  bad: number;
  windowStart: number;
}

/**
 * Counts bad frames per socket in a fixed window; past `limit` the socket is closed
 * with 1008 (RFC 6455 7.4.1, policy violation) so a broken or hostile client cannot
 * keep the object busy.
 */
export function spendBadFrame(b: FrameBudget, now: number, limit: number, windowMs: number): { budget: FrameBudget; close: boolean } {
  const fresh = now - b.windowStart >= windowMs;
  const budget = { bad: (fresh ? 0 : b.bad) + 1, windowStart: fresh ? now : b.windowStart };
  return { budget, close: budget.bad > limit };
}
