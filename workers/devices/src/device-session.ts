import { DurableObject } from "cloudflare:workers";

/** One SQLite-backed Durable Object per device session (filled in by the devices issue). */
export class DeviceSession extends DurableObject<Env> {
  ping(): string {
    return "ok";
  }
}
