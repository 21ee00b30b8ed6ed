// Edits to @microlabs/otel-cf-workers 1.0.0-rc.52 (dist/index.js), applied after every install by
// scripts/apply-patches.mjs (package.json `postinstall`). Why: the library redoes per request work whose
// result never changes within an isolate, which made telemetry cost far more CPU than the spans themselves
// (issue 17, "telemetry on costs at most 5 % more CPU"). Each edit caches plain, isolate-wide results keyed
// by objects that live as long as the isolate (the env, its bindings, our config object); none holds a
// request's state, promise or I/O. Each `find` must occur exactly once in the pristine file.
export const PACKAGE = "@microlabs/otel-cf-workers";
export const VERSION = "1.0.0-rc.52";
export const FILE = "dist/index.js";
export const MARKER = "/* health-platform patch: otel-cf-workers isolate caches v1 */";

export const EDITS = [
  {
    why: "The env proxy probed every object binding on every access (isJSRPC builds a random property name and touches the binding: an RPC stub for a service binding), then wrapped it in a new proxy. The env and its bindings are the same objects for the isolate's life: classify and wrap each binding once, and reuse the env's proxy.",
    find: `var instrumentEnv = (env) => {
  const envHandler = {
    get: (target, prop, receiver) => {
      const item = Reflect.get(target, prop, receiver);
      if (!isProxyable(item)) {
        return item;
      }
      if (isJSRPC(item)) {
        return instrumentServiceBinding(item, String(prop));
      } else if (isKVNamespace(item)) {
        return instrumentKV(item, String(prop));
      } else if (isQueue(item)) {
        return instrumentQueueSender(item, String(prop));
      } else if (isDurableObject(item)) {
        return instrumentDOBinding(item, String(prop));
      } else if (isVersionMetadata(item)) {
        return item;
      } else if (isAnalyticsEngineDataset(item)) {
        return instrumentAnalyticsEngineDataset(item, String(prop));
      } else if (isD1Database(item)) {
        return instrumentD1(item, String(prop));
      } else {
        return item;
      }
    }
  };
  return wrap(env, envHandler);
};`,
    replace: `var instrumentBinding = (item, prop) => {
  if (isJSRPC(item)) {
    return instrumentServiceBinding(item, String(prop));
  } else if (isKVNamespace(item)) {
    return instrumentKV(item, String(prop));
  } else if (isQueue(item)) {
    return instrumentQueueSender(item, String(prop));
  } else if (isDurableObject(item)) {
    return instrumentDOBinding(item, String(prop));
  } else if (isVersionMetadata(item)) {
    return item;
  } else if (isAnalyticsEngineDataset(item)) {
    return instrumentAnalyticsEngineDataset(item, String(prop));
  } else if (isD1Database(item)) {
    return instrumentD1(item, String(prop));
  } else {
    return item;
  }
};
var instrumentedBindings = /* @__PURE__ */ new WeakMap();
var instrumentedEnvs = /* @__PURE__ */ new WeakMap();
var instrumentEnv = (env) => {
  const knownEnv = instrumentedEnvs.get(env);
  if (knownEnv) {
    return knownEnv;
  }
  const envHandler = {
    get: (target, prop, receiver) => {
      const item = Reflect.get(target, prop, receiver);
      if (!isProxyable(item)) {
        return item;
      }
      const known = instrumentedBindings.get(item);
      if (known && known.prop === prop) {
        return known.value;
      }
      const value = instrumentBinding(item, prop);
      instrumentedBindings.set(item, { prop, value });
      return value;
    }
  };
  const proxied = wrap(env, envHandler);
  instrumentedEnvs.set(env, proxied);
  return proxied;
};`,
  },
  {
    why: "versionAttributes walked Object.entries(env) (probing each binding as above) on every request; the env does not change within an isolate.",
    find: `function versionAttributes(env) {
  const attributes = {};`,
    replace: `var versionAttributesOf = /* @__PURE__ */ new WeakMap();
function versionAttributes(env) {
  if (typeof env !== "object" || env === null) {
    return {};
  }
  let attributes = versionAttributesOf.get(env);
  if (!attributes) {
    attributes = versionAttributesOnce(env);
    versionAttributesOf.set(env, attributes);
  }
  return attributes;
}
function versionAttributesOnce(env) {
  const attributes = {};`,
  },
  {
    why: "A config function was parsed again on every request (a new propagator, samplers, arrays); it returns the same object for the same settings, so parse each object once.",
    find: `    return (env, trigger) => {
      const conf = parseConfig(config(env, trigger));
      init(conf);
      return conf;
    };`,
    replace: `    const parsed = /* @__PURE__ */ new WeakMap();
    return (env, trigger) => {
      const supplied = config(env, trigger);
      let conf = parsed.get(supplied);
      if (!conf) {
        conf = parseConfig(supplied);
        parsed.set(supplied, conf);
      }
      init(conf);
      return conf;
    };`,
  },
  {
    why: "startSpan sanitized a span's attributes twice before the span's constructor sanitizes them a third time.",
    find: `      attributes: sanitizeAttributes2(attributes),
      name,`,
    replace: `      attributes,
      name,`,
  },
  {
    why: "Request attributes: the URL was parsed again (new URL) for every server and client span only to repeat its parts (scheme, host, path, query) beside url.full, with the constant protocol name and the client's accepted encodings; shared/telemetry/otlp.ts does not export those (SPAN_NOISE), so they are no longer gathered. request.url is the runtime's normalized URL already; the export redacts it (shared/redact.ts).",
    find: `function gatherRequestAttributes(request) {
  const attrs = {};
  const headers = request.headers;
  attrs["http.request.method"] = request.method.toUpperCase();
  attrs["network.protocol.name"] = "http";
  attrs["network.protocol.version"] = request.cf?.httpProtocol;
  attrs["http.request.body.size"] = headers.get("content-length");
  attrs["user_agent.original"] = headers.get("user-agent");
  attrs["http.mime_type"] = headers.get("content-type");
  attrs["http.accepts"] = request.cf?.clientAcceptEncoding;
  const u = new URL(request.url);
  attrs["url.full"] = \`\${u.protocol}//\${u.host}\${u.pathname}\${u.search}\`;
  attrs["server.address"] = u.host;
  attrs["url.scheme"] = u.protocol;
  attrs["url.path"] = u.pathname;
  attrs["url.query"] = u.search;
  return attrs;
}
`,
    replace: `function gatherRequestAttributes(request) {
  const attrs = {};
  const headers = request.headers;
  attrs["http.request.method"] = request.method.toUpperCase();
  attrs["http.request.body.size"] = headers.get("content-length");
  attrs["user_agent.original"] = headers.get("user-agent");
  attrs["http.mime_type"] = headers.get("content-type");
  attrs["url.full"] = request.url;
  return attrs;
}
`,
  },
  {
    why: "The caller's network details (colo, country, ASN, TLS, RTT) copied from request.cf on every request: not exported either (SPAN_NOISE).",
    find: `function gatherIncomingCfAttributes(request) {
  const attrs = {};
  attrs["net.colo"] = request.cf?.colo;
  attrs["net.country"] = request.cf?.country;
  attrs["net.request_priority"] = request.cf?.requestPriority;
  attrs["net.tls_cipher"] = request.cf?.tlsCipher;
  attrs["net.tls_version"] = request.cf?.tlsVersion;
  attrs["net.asn"] = request.cf?.asn;
  attrs["net.tcp_rtt"] = request.cf?.clientTcpRtt;
  return attrs;
}
`,
    replace: `function gatherIncomingCfAttributes(_request) {
  return {};
}
`,
  },
];
