/** The Durable Object of one device (named by its id: one object per device, worldwide). */
export function sessionStub(env: Env, deviceId: string) {
  return env.SESSIONS.get(env.SESSIONS.idFromName(deviceId));
}
