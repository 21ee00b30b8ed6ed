/**
 * Waiting for work another request of this isolate is doing, without touching its promise (the runtime cancels a
 * continuation that one request hangs on another's): `look` reads the isolate's plain state every `stepMs` on this
 * request's own timer and returns a value once there is one. Used where a burst of requests would otherwise each
 * load the same thing (auth's revocation view, shared/keys' tenant keys): the first loads, the others wait for it.
 */
export const WAIT_FOR_MS = 1000;
const STEP_MS = 5;

/** The first value `look(waitedMs)` returns, or undefined once `maxMs` passed. */
export async function waitFor<T>(look: (waitedMs: number) => T | undefined, maxMs = WAIT_FOR_MS): Promise<T | undefined> {
  const start = Date.now();
  while (Date.now() - start < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, STEP_MS));
    const found = look(Date.now() - start);
    if (found !== undefined) return found;
  }
  return undefined;
}
