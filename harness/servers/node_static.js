// node.js as a production comparison server (the SXE posts, Hardy-Francis 2010, measure node's
// "Hello World" against SXE on libev). Started by harness/production.py:
//
//   node node_static.js --bind 127.0.0.1 --port N --docroot DIR
//
// One process, node's own `http` module on its libuv loop, keep-alive on (HTTP/1.1 default, as
// in every other comparison server), no logging. Like the other servers' caches, the document
// root is read into memory once at start (files within the memory budget; larger ones are
// streamed from disk), so a request never touches the file system. GET and HEAD with correct
// Content-Type and Content-Length, 404 for what is not there, 405 for other methods. A GET of
// /server-status answers nginx's stub_status page (accepts and requests, the status request
// itself counted, as nginx does) so the harness reads its request counter the same way.
// It never forks and never daemonizes: SIGTERM or SIGINT (also the harness's parent-death
// signal) ends the process at once, with exit status 0.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const MEMORY_BUDGET = 256 * 1024 * 1024;  // bytes of file bodies kept in memory
const KEEP_ALIVE_TIMEOUT_MS = 60000;      // node's default is 5 s; nginx's config here says 65
const STATUS_PATH = '/server-status';

// The same table as the core's mime_type() (servers/core/content.cpp).
const MIME_TYPES = new Map(Object.entries({
  '.html': 'text/html', '.htm': 'text/html', '.txt': 'text/plain', '.css': 'text/css',
  '.js': 'text/javascript', '.json': 'application/json', '.xml': 'application/xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif',
  '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.webp': 'image/webp',
  '.pdf': 'application/pdf', '.wasm': 'application/wasm', '.mp4': 'video/mp4',
  '.csv': 'text/csv',
}));

function parseArgs(argv) {
  const options = {bind: '127.0.0.1', port: 0, docroot: null};
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) usage(`${flag} needs a value`);
    if (flag === '--bind') options.bind = value;
    else if (flag === '--port') options.port = Number(value);
    else if (flag === '--docroot') options.docroot = value;
    else usage(`unknown option ${flag}`);
  }
  if (!options.docroot) usage('--docroot is required');
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) usage('bad --port');
  return options;
}

function usage(problem) {
  process.stderr.write(`node_static.js: ${problem}\n` +
                       'usage: node node_static.js [--bind HOST] [--port N] --docroot DIR\n');
  process.exit(2);
}

function contentType(name) {
  const type = MIME_TYPES.get(path.extname(name).toLowerCase()) || 'application/octet-stream';
  return type.startsWith('text/') ? `${type}; charset=utf-8` : type;
}

// Every regular file below `root` whose real location is inside it (symlinks out are never
// served), by URL path; a directory's index.html also answers "/dir/" and "/dir".
function loadDocroot(docroot) {
  const root = fs.realpathSync(docroot);
  const files = new Map();
  let inMemory = 0;
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, {withFileTypes: true})) {
      const full = path.join(dir, entry.name);
      let real;
      try {
        real = fs.realpathSync(full);
      } catch {
        continue;  // a dangling symlink
      }
      if (real !== root && !real.startsWith(root + path.sep)) continue;
      const stat = fs.statSync(real);
      if (stat.isDirectory()) {
        if (entry.isDirectory()) walk(full);  // not through symlinked directories: no cycles
        continue;
      }
      if (!stat.isFile()) continue;
      const file = {
        headers: {'Content-Type': contentType(entry.name), 'Content-Length': String(stat.size)},
        body: null,
        real,
      };
      if (inMemory + stat.size <= MEMORY_BUDGET) {
        try {
          file.body = fs.readFileSync(real);
        } catch {
          continue;  // unreadable files are simply not served
        }
        inMemory += stat.size;
      }
      const urlPath = '/' + path.relative(root, full).split(path.sep).join('/');
      files.set(urlPath, file);
      if (entry.name === 'index.html') {
        const dir = urlPath.slice(0, -'index.html'.length);
        files.set(dir, file);
        if (dir.length > 1) files.set(dir.slice(0, -1), file);
      }
    }
  };
  walk(root);
  return files;
}

function errorPage(res, status, extraHeaders = {}) {
  const body = `<html><body><h1>${status} ${http.STATUS_CODES[status]}</h1></body></html>\n`;
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    ...extraHeaders,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const files = loadDocroot(options.docroot);
  let accepts = 0;
  let requests = 0;

  const server = http.createServer((req, res) => {
    requests += 1;
    if (req.method !== 'GET' && req.method !== 'HEAD') return errorPage(res, 405, {'Allow': 'GET, HEAD'});
    let pathname;
    try {
      // The WHATWG parser drops the query and resolves "." and ".." (also %2e%2e) segments.
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return errorPage(res, 400);
    }
    if (pathname === STATUS_PATH) return statusPage(res);
    const file = files.get(pathname);
    if (file === undefined) return errorPage(res, 404);
    res.writeHead(200, file.headers);
    if (req.method === 'HEAD') return res.end();
    if (file.body !== null) return res.end(file.body);
    fs.createReadStream(file.real).on('error', () => res.destroy()).pipe(res);
  });

  function statusPage(res) {
    server.getConnections((err, active) => {
      const body = `Active connections: ${err ? 0 : active} \nserver accepts handled requests\n` +
                   ` ${accepts} ${accepts} ${requests} \nReading: 0 Writing: 0 Waiting: 0 \n`;
      res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': String(body.length)});
      res.end(res.req.method === 'HEAD' ? undefined : body);
    });
  }

  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;  // must exceed keepAliveTimeout
  server.on('connection', () => { accepts += 1; });
  server.on('error', (err) => {
    process.stderr.write(`node_static.js: ${err.message}\n`);
    process.exit(1);
  });
  server.listen({host: options.bind, port: options.port, backlog: 4096}, () => {
    const {address, port} = server.address();
    process.stdout.write(`listening on ${address.includes(':') ? `[${address}]` : address}:${port}\n`);
  });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
}

main();
