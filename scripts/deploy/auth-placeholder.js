// Uploaded only by `npm run deploy -- --env <env> --first`, on the very first deploy of an environment:
// devices binds to auth's ClientRegistry and auth binds to devices, and Cloudflare refuses a service
// binding to a worker that does not exist yet. This placeholder takes auth's name so devices can be
// uploaded; the real auth replaces it a few steps later in the same run. It serves nothing.
/* global Response */
import { WorkerEntrypoint } from "cloudflare:workers";

export class ClientRegistry extends WorkerEntrypoint {
  createDeviceClient() {
    return Promise.reject(new Error("auth is not deployed yet"));
  }
  disableDeviceClients() {
    return Promise.reject(new Error("auth is not deployed yet"));
  }
}

export default {
  fetch() {
    return new Response(JSON.stringify({ type: "urn:health-platform:problem:not_deployed", title: "Service Unavailable", status: 503, code: "not_deployed" }), {
      status: 503,
      headers: { "content-type": "application/problem+json", "retry-after": "30" },
    });
  },
};
