// A minimal OTLP/HTTP sink on 127.0.0.1 for the telemetry-on measurement, run as a child process: it reads
// each export, answers 200 and counts (no decoding, so the sink's own work stays small). Prints
// `listening <port>`; GET /counts answers the counts as JSON.
import http from "node:http";

const counts = { traces: 0, metrics: 0, logs: 0, other: 0, bytes: 0 };
const server = http.createServer((req, res) => {
  let n = 0;
  req.on("data", (c) => (n += c.length));
  req.on("end", () => {
    if (req.method === "GET" && req.url === "/counts") return res.end(JSON.stringify(counts));
    counts.bytes += n;
    if (req.url === "/v1/traces") counts.traces++;
    else if (req.url === "/v1/metrics") counts.metrics++;
    else if (req.url === "/v1/logs") counts.logs++;
    else counts.other++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
