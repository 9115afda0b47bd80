// SPDX-License-Identifier: MIT
// h2tls.js KEY CERT: an HTTP/2 server over TLS (ALPN h2) on 127.0.0.1 for
// the tests, run without the shim.  Prints its port; answers 200 "ok\n"
// to every path but /hang, which it never answers.  Exits after 20 s.
"use strict";
const fs = require("fs");
const http2 = require("http2");

const server = http2.createSecureServer({
  key: fs.readFileSync(process.argv[2]),
  cert: fs.readFileSync(process.argv[3]),
  allowHTTP1: false,
});
server.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":path"].startsWith("/hang"))
    return;
  stream.respond({ ":status": 200, "content-type": "text/plain" });
  stream.end("ok\n");
});
server.on("sessionError", () => {});
server.listen(0, "127.0.0.1", () => {
  console.log(server.address().port);
});
setTimeout(() => process.exit(0), 20000).unref();
setTimeout(() => process.exit(0), 20000);
