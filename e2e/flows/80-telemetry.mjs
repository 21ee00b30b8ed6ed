// Telemetry end to end: one trace across the gateway and phi, D1 spans, the original metric names, the log
// lines at /v1/logs with their trace ids, batched POSTs, a collector that refuses or stalls changes nothing
// for clients, and no canary value leaks anywhere.
export const name = "telemetry: traces, metrics, logs, redaction, collector faults";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check, what, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = check();
    if (v) return v;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export default async function (ctx) {
  const { assert, receiver } = ctx;
  assert.ok(receiver, "the e2e runner provides an OTLP receiver");
  const marker = `Zqcanary${Date.now()}`;
  const card = "4000056655665556";
  const tok = await ctx.token("phi:read phi:write payment:write");

  const created = await ctx.json("/v1/phi/Patient", {
    method: "POST",
    token: tok,
    headers: { "content-type": "application/fhir+json" },
    body: { resourceType: "Patient", name: [{ family: marker, given: [marker] }], birthDate: "1970-01-01" },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const read = await ctx.json(`/v1/phi/Patient/${created.body.id}`, { token: tok });
  assert.equal(read.status, 200);
  await ctx.fetch("/v1/phi/Patient/_search", { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/x-www-form-urlencoded" }, body: `family=${marker}` });
  await ctx.json("/v1/payments/payment-methods", {
    method: "POST",
    token: tok,
    headers: { "idempotency-key": `e2e-${marker}` },
    body: { number: card, exp_month: 12, exp_year: 2030, cvc: "123" },
  });
  await ctx.json("/v1/phi/Patient/x", { token: "not-a-token" });

  // One trace: a phi span whose parent is a gateway span.
  const linked = await waitFor(() => {
    const authSpans = receiver.state.spans.filter((s) => s.service === "auth");
    const ids = new Set(authSpans.map((s) => s.spanId));
    return receiver.state.spans.find((s) => s.service === "phi" && ids.has(s.parentSpanId) && authSpans.some((a) => a.traceId === s.traceId));
  }, "a phi span parented by a gateway span");
  assert.equal(linked.resource["service.namespace"], "health-platform");
  assert.ok(linked.resource["deployment.environment"], "deployment.environment set");
  const services = new Set(receiver.state.spans.map((s) => s.service));
  for (const s of ["auth", "phi", "payments"]) assert.ok(services.has(s), `spans from ${s}: ${[...services]}`);
  const d1 = receiver.state.spans.filter((s) => s.attributes["db.system"] === "Cloudflare D1" || s.attributes["db.system.name"] === "Cloudflare D1");
  assert.ok(d1.length > 0, `D1 spans: none among ${[...new Set(receiver.state.spans.map((s) => s.name))].join(", ")}`);
  // Where the library stops: RPC calls are client spans of the request's trace, and each WebSocket
  // frame handled by a hibernated device session is a span linked to the request that opened the socket.
  // Each isolate exports its buffer from a later request of its own once the interval has passed: while
  // waiting, keep cheap requests coming to every worker rather than relying on traffic the run may not have.
  const nudgeTok = await ctx.token("payment:read device:read");
  const nudged = (check, what) =>
    waitFor(() => {
      for (const p of ["/health", "/v1/phi/metadata", "/v1/payments/pi_telemetry_nudge", "/v1/devices/dev_telemetry_nudge"]) {
        void ctx.fetch(p, { headers: { authorization: `Bearer ${nudgeTok}` } }).catch(() => {});
      }
      return check();
    }, what);
  const rpc = await nudged(() => receiver.state.spans.find((s) => s.service === "devices" && s.name === "ClientRegistry.createDeviceClient"), "an RPC client span from devices to auth");
  await nudged(() => receiver.state.spans.some((s) => s.service === "auth" && s.traceId === rpc.traceId), "the RPC span is in the gateway's trace");
  const frame = await nudged(() => receiver.state.spans.find((s) => s.service === "devices" && s.name === "DeviceSession message" && s.links.length === 1), "a device frame span");
  await nudged(() => receiver.state.spans.some((s) => s.traceId === frame.links[0].traceId), "the frame span links to the upgrade request's trace");
  await nudged(() => receiver.state.spans.some((s) => s.service === "devices" && s.name === "DeviceSession.status"), "a DO RPC client span");
  // A request rejected before any I/O still has its span.
  await nudged(() => receiver.state.spans.some((s) => s.service === "auth" && String(s.attributes["http.response.status_code"]) === "401"), "401 span");

  // Metrics leave on the first request after the export interval: keep one cheap request a beat coming
  // to each worker while waiting, instead of relying on other traffic (a fast run may have none left).
  const beat = setInterval(() => {
    for (const p of ["/health", "/v1/phi/Patient/x"]) void ctx.fetch(p, { headers: { authorization: `Bearer ${tok}` } }).then((r) => r.body?.cancel(), () => undefined);
  }, 400);
  let metrics;
  try {
    metrics = await waitFor(() => {
      const names = new Set(receiver.state.metrics.map((m) => m.name));
      const phiSize = receiver.state.metrics.some((m) => m.name === "d1_database_size_bytes" && m.service === "phi");
      return ["auth_tokens_validated_total", "auth_request_duration_seconds", "auth_active_requests", "auth_security_events_total", "http_server_request_duration_seconds"].every((n) => names.has(n)) && phiSize && receiver.state.metrics;
    }, "the original metric names and phi's database size");
  } finally {
    clearInterval(beat);
  }
  const validated = metrics.filter((m) => m.name === "auth_tokens_validated_total");
  assert.ok(validated.some((m) => m.labels.result === "valid" && m.labels.scope), "auth_tokens_validated_total{result,scope}");
  assert.ok(metrics.some((m) => m.name === "auth_security_events_total" && m.labels.event_type && m.labels.severity), "auth_security_events_total{event_type,severity}");
  assert.ok(metrics.some((m) => m.name === "auth_request_duration_seconds" && m.labels.endpoint && m.labels.method && m.labels.status && m.value >= 1), "auth_request_duration_seconds");
  assert.ok(metrics.some((m) => m.name === "http_server_request_duration_seconds" && m.service === "phi" && !/[0-9a-f]{8}-/.test(m.labels.route)), "route templates, not raw paths");
  // The beat's reads are audited: phi's sealer links their records and reports its database's size, a gauge by binding.
  const size = metrics.find((m) => m.name === "d1_database_size_bytes" && m.service === "phi");
  assert.ok(size && size.kind === "gauge" && size.value > 0 && /^DB(_\d+)?$/.test(size.labels.database), `d1_database_size_bytes{database} from phi: ${JSON.stringify(size)}`);
  assert.deepEqual(receiver.state.errors, []);

  // Logs over OTLP: each worker's request lines reach /v1/logs with the trace and span ids of their request.
  const logged = await waitFor(
    () => receiver.state.logs.find((l) => l.service === "phi" && l.body === "request" && receiver.state.spans.some((s) => s.service === "phi" && s.traceId === l.traceId)),
    "a phi request log record whose trace arrived too",
  );
  assert.match(logged.spanId, /^[0-9a-f]{16}$/);
  assert.ok(logged.attributes.request_id, "the log record keeps its request_id");
  assert.ok(!/[0-9a-f]{8}-[0-9a-f]{4}/.test(String(logged.attributes.route)), `a route template, not a raw path: ${logged.attributes.route}`);
  assert.ok(receiver.state.logs.some((l) => l.service === "auth" && l.body === "request" && /^[0-9a-f]{32}$/.test(l.traceId)), "the gateway's request lines");
  // Batched: reported, not asserted (a slow machine may see one request per isolate-second); the workerd test
  // (workers/auth/test/telemetry.test.ts) asserts the bound. Before batching, each (trace, worker) pair was a POST.
  const pairs = new Set(receiver.state.spans.map((s) => `${s.service} ${s.traceId}`)).size;
  ctx.log(`${receiver.state.posts.traces} trace POSTs for ${pairs} (worker, trace) pairs`);

  // Collector refusing, then stalling: same answers, no added latency beyond noise.
  const timeRead = async () => {
    const t0 = performance.now();
    const r = await ctx.json(`/v1/phi/Patient/${created.body.id}`, { token: tok });
    return { status: r.status, ms: performance.now() - t0 };
  };
  const baseline = [];
  for (let i = 0; i < 5; i++) baseline.push(await timeRead());
  for (const mode of ["refuse", "slow"]) {
    receiver.state.mode = mode;
    for (let i = 0; i < 5; i++) {
      const r = await timeRead();
      assert.equal(r.status, 200, `collector ${mode}`);
      assert.ok(r.ms < 2500, `collector ${mode} slowed a request to ${r.ms.toFixed(0)} ms`);
    }
  }
  receiver.state.mode = "ok";

  // Canary: neither the payloads nor the logs hold the name, the card number or the token.
  await sleep(1500);
  const exported = receiver.state.raw.join("\n");
  const logs = ctx.devLog();
  for (const [what, value] of [["patient name", marker], ["card number", card], ["bearer token", tok]]) {
    assert.ok(!exported.includes(value), `${what} found in OTLP payloads`);
    assert.ok(!logs.includes(value), `${what} found in logs`);
  }
  ctx.log(`${receiver.state.spans.length} spans, ${receiver.state.logs.length} log records, ${receiver.state.metrics.length} metric points received; POSTs ${JSON.stringify(receiver.state.posts)}`);
}
