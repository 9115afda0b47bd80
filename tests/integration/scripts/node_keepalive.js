// SPDX-License-Identifier: MIT
// node_keepalive.js PORT COUNT: COUNT GET requests, one after the other,
// through one keep-alive http.Agent to 127.0.0.1:PORT, a server that
// closes each connection after its reply: node reuses some before it has
// seen the close (node#47130).  Prints "ok N errors M" and the first
// error's code.
"use strict";
const http = require("http");

const port = Number(process.argv[2]), count = Number(process.argv[3]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let ok = 0, errors = 0, first = "";
const one = (i) => {
  if (i === count) {
    console.log(`ok ${ok} errors ${errors} ${first}`.trim());
    agent.destroy();
    return;
  }
  const q = http.get({ host: "127.0.0.1", port, path: "/k" + i, agent },
    (r) => { r.resume(); r.on("end", () => { ok++; setImmediate(() => one(i + 1)); }); });
  q.on("error", (e) => {
    errors++;
    first = first || e.code || e.message;
    setImmediate(() => one(i + 1));
  });
};
one(0);
