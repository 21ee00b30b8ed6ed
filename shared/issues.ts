/**
 * Validation issues as a client may see them: zod's issues carry the client's own keys (in paths and in
 * the unknown-key message), and a client may put anything in a key. Used by every worker's validation
 * answers (HTTP and the devices' WebSocket frames).
 */

/**
 * A name a client chose (an object key) that may be repeated in an error: an identifier-like key with no long
 * run of digits. Anything else (a card number, a name or an identifier typed as a key) is never echoed back.
 */
export function echoableKey(key: string): boolean {
  return /^[A-Za-z_$][A-Za-z0-9_$-]{0,63}$/.test(key) && !/\d{4}/.test(key);
}

/** zod issue codes whose messages state the rule and never repeat the input. */
const RULE_MESSAGES = new Set(["custom", "invalid_format", "invalid_type", "invalid_value", "too_big", "too_small", "not_multiple_of"]);

export interface ZodIssueLike {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: unknown[];
}

/**
 * One zod issue as the client sees it: the path with each key a client chose masked (`*`) unless echoable, and
 * zod's message only where it states the rule; an unknown key is named only when its name is echoable. A card
 * number or a patient's name sent as a JSON key never comes back in an error.
 */
export function issueForClient(issue: ZodIssueLike, target: string | undefined) {
  const path = issue.path.map((seg) => (typeof seg === "number" ? String(seg) : typeof seg === "string" && echoableKey(seg) ? seg : "*")).join(".");
  let message: string;
  if (issue.code && RULE_MESSAGES.has(issue.code)) message = issue.message;
  else if (issue.code === "unrecognized_keys") {
    const keys = (issue.keys ?? []).map(String);
    message = keys.length > 0 && keys.every(echoableKey) ? `Unrecognized key${keys.length > 1 ? "s" : ""}: ${keys.join(", ")}` : "Unrecognized key (its name is not repeated).";
  } else if (issue.code === "invalid_key") message = "Invalid key.";
  else if (issue.code === "invalid_union") message = "Matches none of the allowed shapes.";
  else message = "Invalid value.";
  return { location: target, path, code: issue.code, message };
}
