"""``argyro db start|stop|status|uri``: the embedded MongoDB server."""

from __future__ import annotations

import json
import sys

from ..db.embedded import DEFAULT_PORT, LOOPBACK, EmbeddedServer
from ..errors import DatabaseError
from ..settings import embedded_settings, resolve

NO_AUTH_WARNING = (
    "WARNING: the embedded database at {path} runs WITHOUT authentication (--no-auth): every user of this machine "
    "can read, change and delete its data, and a changed firework runs as you in your workers. Use it only for "
    "throw-away data; start without --no-auth to protect it."
)


def register(sub) -> None:
    p = sub.add_parser("db", help="start, stop and query the embedded MongoDB (SecantusDB) server")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    path_help = "server directory (data, password, pid and log files; private to you); default $ARGYRO_HOME/db"

    s = dsub.add_parser(
        "start", help="start the embedded server in the background (authentication on)",
        description="Start SecantusDB in the background with SCRAM authentication. The first start creates the admin "
        "user argyro-<login> with a random password in DIR/admin.password (mode 0600); argyro's commands and the "
        "launchpad files of `argyro init` read it from there. DIR and its files are private to you (0700/0600).")
    s.add_argument("--path", metavar="DIR", help=path_help)
    s.add_argument("--port", type=int, default=None,
                   help=f"TCP port (default: the port of DIR's last start, so that a restart after a crash keeps the "
                   f"launchpad files valid; {DEFAULT_PORT} for a new DIR)")
    s.add_argument("--host", default=LOOPBACK, metavar="ADDR",
                   help="address to listen on (default 127.0.0.1, this machine only); an address the compute nodes "
                   "reach (the login node's cluster-network address) lets jobs on them use it: authentication "
                   "required, --no-auth refused; argyro init writes it into the launchpad files")
    s.add_argument("--tls", action="store_true",
                   help="TLS on every connection, with a self-signed certificate for the --host address made in DIR "
                   "(tls-cert.pem; argyro init writes it into the launchpad files as the CA file clients trust)")
    a = s.add_mutually_exclusive_group()
    a.add_argument("--auth", dest="no_auth", action="store_false", help="require authentication (the default)")
    a.add_argument("--no-auth", dest="no_auth", action="store_true",
                   help="no authentication: every local user can read and change the data (throw-away use only)")
    s.set_defaults(func=cmd_start, no_auth=False)

    s = dsub.add_parser("stop", help="stop the embedded server (SIGTERM to its pid)")
    s.add_argument("--path", metavar="DIR", help=path_help)
    s.set_defaults(func=cmd_stop)

    s = dsub.add_parser(
        "status", help="say whether the database answers (the embedded one, or --uri/$ARGYRO_DB_URI)"
    )
    s.add_argument("--path", metavar="DIR", help=path_help)
    s.add_argument("--json", action="store_true", help="print a JSON document")
    s.add_argument("-q", "--quiet", action="store_true", help="print nothing; exit 0 if it answers, 1 if not")
    s.set_defaults(func=cmd_status)

    s = dsub.add_parser("uri", help="print the URI of the database argyro uses (never a password)")
    s.add_argument("--path", metavar="DIR", help=path_help)
    s.set_defaults(func=cmd_uri)


def cmd_start(args) -> int:
    server = EmbeddedServer(args.path, host=args.host)
    if args.no_auth:
        print(NO_AUTH_WARNING.format(path=server.path), file=sys.stderr)
    port = server.recorded_port() if args.port is None else args.port
    st = server.start(port=port, auth=not args.no_auth, tls=args.tls)
    login = f"; admin {st.username}, password in {server.password_file}" if st.auth else "; NO authentication"
    if args.tls:
        login += f"; TLS, certificate {server.tls_cert_file}"
    print(f"embedded database running: pid {st.pid}, {st.uri} (data in {st.path / 'data'}{login})")
    return 0


def cmd_stop(args) -> int:
    server = EmbeddedServer(args.path)
    if server.stop():
        print(f"embedded database on {server.path} stopped")
    else:
        print(f"no embedded database running on {server.path}")
    return 0


def _external(args) -> bool:
    """True when --uri, $ARGYRO_DB_URI or the config's db.uri names a database (config is validated)."""
    return not resolve(args.uri, args.config).source.startswith("embedded")


def cmd_status(args) -> int:
    if _external(args):
        import pymongo

        s = resolve(args.uri, args.config)
        try:
            client = pymongo.MongoClient(**s.client_kwargs(timeout_ms=5000))
            client.admin.command("ping")
            ok = True
        except Exception as exc:
            ok = False
            err = type(exc).__name__
        doc = {"running": ok, "uri": s.uri, "source": s.source}
        if args.quiet:
            return 0 if ok else 1
        if args.json:
            print(json.dumps(doc))
        elif ok:
            print(f"database {s.uri} answers")
        else:
            raise DatabaseError(f"database {s.uri} is not reachable ({err})")
        return 0 if ok else 1
    server = EmbeddedServer(args.path)
    st = server.check_identity()  # refuses a port held by another process or another server
    answers = st.running and server.ping(st.port)
    doc = {"running": st.running, "answers": answers, "pid": st.pid, "port": st.port, "path": str(st.path),
           "auth": st.auth}
    if args.quiet:
        return 0 if answers else 1
    if args.json:
        print(json.dumps(doc))
    elif st.running:
        print(f"embedded database running: pid {st.pid}, {st.uri}, {'answers' if answers else 'does NOT answer'} "
              f"(path {st.path}{'' if st.auth else '; NO authentication'})")
        if not st.auth:
            print(NO_AUTH_WARNING.format(path=st.path), file=sys.stderr)
    else:
        print(f"no embedded database running on {st.path}")
    return 0 if answers else 1


def cmd_uri(args) -> int:
    if _external(args):
        print(resolve(args.uri, args.config).uri)
        return 0
    print(embedded_settings(args.path).uri)
    return 0
