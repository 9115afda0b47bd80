// SPDX-License-Identifier: MIT
// h2tls.js [KEY CERT]: an HTTP/2 server on 127.0.0.1 for the tests, run
// without the shim: over TLS (ALPN h2) with KEY and CERT, in clear (prior
// knowledge) without.  Prints its port; answers 200 "ok\n" to every path
// but /hang, which it never answers, /503, which gets a 503, and /refuse,
// which it resets with REFUSED_STREAM.  Exits
// after 20 s.
"use strict";
const fs = require("fs");
const http2 = require("http2");

const server = process.argv[2]
  ? http2.createSecureServer({
      key: fs.readFileSync(process.argv[2]),
      cert: fs.readFileSync(process.argv[3]),
      allowHTTP1: false,
    })
  : http2.createServer();
server.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":path"].startsWith("/hang"))
    return;
  if (headers[":path"].startsWith("/refuse"))
    return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
  const status = headers[":path"].startsWith("/503") ? 503 : 200;
  stream.respond({ ":status": status, "content-type": "text/plain" });
  stream.end("ok\n");
});
server.on("sessionError", () => {});
server.listen(0, "127.0.0.1", () => {
  console.log(server.address().port);
});
setTimeout(() => process.exit(0), 20000).unref();
setTimeout(() => process.exit(0), 20000);
