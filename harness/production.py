"""Production web servers as comparison points: nginx, lighttpd, h2o, Apache prefork and worker,
and node.js.

Each is started from a config file the harness writes into the run directory: one worker, no
access log, keep-alive limits raised, listening on loopback, serving the run's docroot (the same
305-byte page the toy servers get). ``shared/anchors.md`` describes these settings. node.js has
no configuration file: it runs ``harness/servers/node_static.js`` (its ``http`` module, one
process, the docroot read into memory at start).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.server import LaunchSpec

APACHE_MODULES = Path("/usr/lib/apache2/modules")
NODE_SCRIPT = Path(__file__).resolve().parent / "servers" / "node_static.js"


@dataclass(frozen=True)
class ProductionServer:
    name: str
    model: str
    category: str
    executable: str  # the command looked up on PATH and in /usr/sbin
    needs: tuple[Path, ...] = ()  # extra files that must exist (Apache MPM modules)


PRODUCTION_SERVERS: dict[str, ProductionServer] = {
    s.name: s
    for s in (
        ProductionServer("nginx", "event-driven, one worker process (epoll)", "event-driven", "nginx"),
        ProductionServer("lighttpd", "event-driven, single process (epoll)", "event-driven", "lighttpd"),
        ProductionServer("h2o", "event-driven, one thread (epoll)", "event-driven", "h2o"),
        ProductionServer("apache-prefork", "process pool (Apache 2.4 prefork MPM)", "processes", "apache2",
                         (APACHE_MODULES / "mod_mpm_prefork.so",)),
        ProductionServer("apache-worker", "thread pool in one process (Apache 2.4 worker MPM)",
                         "kernel threads", "apache2", (APACHE_MODULES / "mod_mpm_worker.so",)),
        ProductionServer("node", "event-driven, one process (node.js http on libuv)", "event-driven",
                         "node", (NODE_SCRIPT,)),
    )
}


# Each server's counter page, in the convention of nginx's stub_status and Apache's mod_status:
# (path, parser in harness.accounting, how many of its own fetches a reading already counts).
# nginx counts the status request itself; Apache and lighttpd count a request when it ends.
# h2o's status handler has no running total of requests, so it is not used. node_static.js
# answers nginx's format and, like nginx, counts the status request itself.
STATUS_PAGES: dict[str, tuple[str, str, int]] = {
    "nginx": ("/server-status", "nginx", 1),
    "node": ("/server-status", "nginx", 1),
    "lighttpd": ("/server-status?auto", "mod_status", 0),
    "apache-prefork": ("/server-status?auto", "mod_status", 0),
    "apache-worker": ("/server-status?auto", "mod_status", 0),
}


def status_page(name: str) -> tuple[str, str, int] | None:
    return STATUS_PAGES.get(name)


def find_executable(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def installed() -> dict[str, str]:
    """Name → executable path of every production server installed here."""
    found = {}
    for server in PRODUCTION_SERVERS.values():
        exe = find_executable(server.executable)
        if exe and all(p.exists() for p in server.needs):
            found[server.name] = exe
    return found


def launch_spec(name: str, executable: str, workdir: Path, docroot: Path, port: int,
                pool_size: int = 64) -> LaunchSpec:
    """Write ``name``'s config into ``workdir`` and return how to start it on ``port``."""
    workdir.mkdir(parents=True, exist_ok=True)
    writer = _WRITERS[name]
    return writer(executable, workdir, docroot.resolve(), port, pool_size)


def _nginx(exe: str, wd: Path, docroot: Path, port: int, _pool: int) -> LaunchSpec:
    conf = wd / "nginx.conf"
    conf.write_text(
        f"""# written by the httpbench harness
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {wd}/nginx.pid;
error_log {wd}/error.log crit;
events {{ worker_connections 16384; multi_accept off; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    types {{ text/html html; }}
    default_type application/octet-stream;
    client_body_temp_path {wd}/client_body;
    proxy_temp_path {wd}/proxy;
    fastcgi_temp_path {wd}/fastcgi;
    uwsgi_temp_path {wd}/uwsgi;
    scgi_temp_path {wd}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {docroot};
        index index.html;
        location = /server-status {{ stub_status; }}
    }}
}}
"""
    )
    return LaunchSpec(argv=(exe, "-p", str(wd), "-c", str(conf)), ready="tcp", port=port, cwd=wd)


def _lighttpd(exe: str, wd: Path, docroot: Path, port: int, _pool: int) -> LaunchSpec:
    conf = wd / "lighttpd.conf"
    conf.write_text(
        f"""# written by the httpbench harness
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{docroot}"
server.errorlog = "{wd}/error.log"
server.pid-file = "{wd}/lighttpd.pid"
server.max-fds = 16384
server.max-connections = 8192
server.listen-backlog = 4096
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 60
server.event-handler = "linux-sysepoll"
server.network-backend = "sendfile"
server.max-worker = 0
server.modules = ( "mod_status" )
status.status-url = "/server-status"
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html" )
"""
    )
    return LaunchSpec(argv=(exe, "-D", "-f", str(conf)), ready="tcp", port=port, cwd=wd)


def _h2o(exe: str, wd: Path, docroot: Path, port: int, _pool: int) -> LaunchSpec:
    conf = wd / "h2o.conf"
    # Started as root, h2o would switch to "nobody", and changing credentials clears the
    # PR_SET_PDEATHSIG that makes a server die with the harness; so it stays root (it only
    # serves loopback). The crash handler is a Perl helper process by default; /bin/cat keeps
    # that process tiny so it does not inflate h2o's memory figures.
    user = "user: root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""# written by the httpbench harness
listen:
  host: 127.0.0.1
  port: {port}
num-threads: 1
{user}max-connections: 16384
error-log: {wd}/error.log
crash-handler: /bin/cat
hosts:
  default:
    paths:
      /:
        file.dir: {docroot}
"""
    )
    return LaunchSpec(argv=(exe, "-c", str(conf)), ready="tcp", port=port, cwd=wd)


def _apache_common(wd: Path, docroot: Path, port: int, mpm: str) -> str:
    user = ""
    if os.geteuid() == 0:
        # Apache refuses to serve as root; www-data exists on Debian.
        user = "User www-data\nGroup www-data\n"
    return f"""# written by the httpbench harness
ServerRoot {wd}
ServerName localhost
DefaultRuntimeDir {wd}
PidFile {wd}/apache.pid
Mutex file:{wd} default
Listen 127.0.0.1:{port}
ListenBacklog 4096
ErrorLog {wd}/error.log
LogLevel crit
{user}LoadModule mpm_{mpm}_module {APACHE_MODULES}/mod_mpm_{mpm}.so
LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so
LoadModule mime_module {APACHE_MODULES}/mod_mime.so
LoadModule dir_module {APACHE_MODULES}/mod_dir.so
LoadModule status_module {APACHE_MODULES}/mod_status.so
ExtendedStatus On
<Location "/server-status">
    SetHandler server-status
    Require all granted
</Location>
TypesConfig /dev/null
AddType text/html .html
DocumentRoot {docroot}
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory {docroot}>
    AllowOverride None
    Require all granted
</Directory>
DirectoryIndex index.html
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
EnableSendfile On
"""


def _apache_prefork(exe: str, wd: Path, docroot: Path, port: int, pool: int) -> LaunchSpec:
    conf = wd / "apache.conf"
    conf.write_text(
        _apache_common(wd, docroot, port, "prefork")
        + f"""# a fixed pool of {pool} processes
StartServers {pool}
MinSpareServers {pool}
MaxSpareServers {pool}
ServerLimit {pool}
MaxRequestWorkers {pool}
MaxConnectionsPerChild 0
"""
    )
    return LaunchSpec(argv=(exe, "-f", str(conf), "-DFOREGROUND"), ready="tcp", port=port, cwd=wd)


def _apache_worker(exe: str, wd: Path, docroot: Path, port: int, pool: int) -> LaunchSpec:
    conf = wd / "apache.conf"
    conf.write_text(
        _apache_common(wd, docroot, port, "worker")
        + f"""# one process with a fixed pool of {pool} threads
StartServers 1
ServerLimit 1
ThreadLimit {pool}
ThreadsPerChild {pool}
MaxRequestWorkers {pool}
MinSpareThreads 1
MaxSpareThreads {pool}
MaxConnectionsPerChild 0
"""
    )
    return LaunchSpec(argv=(exe, "-f", str(conf), "-DFOREGROUND"), ready="tcp", port=port, cwd=wd)


def _node(exe: str, wd: Path, docroot: Path, port: int, _pool: int) -> LaunchSpec:
    # One process: node never forks here and stays in the harness's session, so the parent-death
    # signal and the session kill reach it; SIGTERM ends it at once.
    return LaunchSpec(argv=(exe, str(NODE_SCRIPT), "--bind", "127.0.0.1", "--port", str(port),
                            "--docroot", str(docroot)), ready="tcp", port=port, cwd=wd)


_WRITERS: dict[str, Callable[[str, Path, Path, int, int], LaunchSpec]] = {
    "nginx": _nginx,
    "lighttpd": _lighttpd,
    "h2o": _h2o,
    "apache-prefork": _apache_prefork,
    "apache-worker": _apache_worker,
    "node": _node,
}
