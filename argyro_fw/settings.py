"""Which MongoDB argyro talks to, and how it authenticates.

Precedence: ``--uri`` > ``$ARGYRO_DB_URI`` > ``db.uri`` of the config file (``--config`` or
``$ARGYRO_CONFIG``) > the embedded SecantusDB server recorded under ``$ARGYRO_HOME/db``.

The password never lives in a URI, a config file or a rendered file: it is read at run time from a
password file named for this database (the config's ``db.password_file``; for the embedded server its
``admin.password``, see :mod:`argyro_fw.db.embedded`), else from ``$ARGYRO_DB_PASSWORD`` (or the
config's ``db.password_env``), else from the file named by ``$ARGYRO_DB_PASSWORD_FILE``.

FireWorks' LaunchPad files that ``argyro init`` writes name the user and, for the embedded server,
``argyro_password_file`` (a path, never the password); :func:`patch_launchpad_auth` makes
``LaunchPad.from_dict`` read the password at load time, in argyro's processes (``compat.install``)
and in FireWorks' own ``lpad``/``rlaunch``/``qlaunch`` (the ``.pth`` hook of ``argyro install-hook``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote, urlsplit, urlunsplit

import yaml

from .db.embedded import ADMIN_DB, LOOPBACK, EmbeddedServer, admin_user_name
from .errors import ConfigError, yaml_problem

DEFAULT_DB_NAME = "argyro"

_CONFIG_KEYS = {"db", "home"}
_DB_KEYS = {"uri", "name", "username", "authsource", "password_env", "password_file"}


@dataclass
class DBSettings:
    """Connection settings without the password (safe to print and to render)."""
    host: str = LOOPBACK
    port: int = 27017
    name: str = DEFAULT_DB_NAME
    username: str | None = None
    authsource: str | None = None
    password_env: str = "ARGYRO_DB_PASSWORD"
    password_file: str | None = None
    tls_ca_file: str | None = None  # TLS to the server, trusting this CA (certificate) file
    source: str = "embedded"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The URI without the password (safe to print)."""
        user = f"{quote_plus(self.username)}@" if self.username else ""
        query = f"?authSource={self.authsource}" if self.authsource else ""
        return f"mongodb://{user}{self.host}:{self.port}/{self.name}{query}"

    def password(self) -> str | None:
        """The password (order in the module docstring); None if no user is set."""
        if not self.username:
            return None
        pfile = self.password_file or _PASSWORD_FILES.get((self.host, self.port, self.username))
        if pfile:
            return _read_password(pfile)
        value = os.environ.get(self.password_env)
        if value:
            return value
        if os.environ.get("ARGYRO_DB_PASSWORD_FILE"):
            return _read_password(os.environ["ARGYRO_DB_PASSWORD_FILE"])
        raise ConfigError(
            f"database user {self.username!r} needs a password: set ${self.password_env} "
            "or $ARGYRO_DB_PASSWORD_FILE (a file holding only the password)"
        )

    def client_kwargs(self, timeout_ms: int = 5000) -> dict[str, Any]:
        """Keyword arguments for :class:`pymongo.MongoClient` (password included, not logged)."""
        kw: dict[str, Any] = dict(
            host=self.host,
            port=self.port,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            retryWrites=False,
        )
        if self.username:
            kw.update(username=self.username, password=self.password())
            if self.authsource:
                kw["authSource"] = self.authsource
        kw.update(self.tls_kwargs())
        return kw

    def tls_kwargs(self) -> dict[str, Any]:
        """pymongo's TLS keywords ({} without TLS)."""
        return {"tls": True, "tlsCAFile": self.tls_ca_file} if self.tls_ca_file else {}


#: password files named in this process for (host, port, user): by the embedded server's settings and by
#: loaded launchpad files, so that a FireTask's settings without a file (its worker's env) find the same one
_PASSWORD_FILES: dict[tuple[str, int, str], str] = {}


def _read_password(pfile: str | os.PathLike) -> str:
    try:
        return Path(pfile).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"password file {pfile}: cannot be read ({exc.strerror})") from None


def remember_password_file(host: str, port: int, username: str, pfile: str | os.PathLike) -> None:
    """Use ``pfile`` for (host, port, username) in this process (a FireTask's worker-env settings name no file)."""
    _PASSWORD_FILES[(host, int(port), username)] = str(pfile)


def embedded_settings(path: str | os.PathLike | EmbeddedServer | None = None, name: str = DEFAULT_DB_NAME) -> DBSettings:
    """Settings of an embedded server directory (default ``$ARGYRO_HOME/db``): its recorded port and, when it
    runs with authentication, its admin user and password file."""
    server = path if isinstance(path, EmbeddedServer) else EmbeddedServer(path)
    s = DBSettings(host=server.host, port=server.recorded_port(), name=name, source=f"embedded ({server.path})")
    state = server.state()
    if state.get("tls"):
        s.tls_ca_file = str(server.tls_cert_file)
    if state.get("auth"):
        s.username = state.get("username") or admin_user_name()
        s.authsource = ADMIN_DB
        s.password_file = str(server.password_file)
        remember_password_file(s.host, s.port, s.username, s.password_file)
    return s


def launchpad_password(d: dict) -> str | None:
    """The password for a FireWorks launchpad dict ``d`` (never stored in it): its ``argyro_password_file``,
    else ``$<argyro_password_env>`` (default ARGYRO_DB_PASSWORD), else ``$ARGYRO_DB_PASSWORD_FILE``."""
    if not d.get("username"):
        return None
    s = DBSettings(host=str(d.get("host")), port=int(d.get("port") or 27017), username=str(d["username"]),
                   password_env=d.get("argyro_password_env") or "ARGYRO_DB_PASSWORD",
                   password_file=d.get("argyro_password_file"))
    if s.password_file:
        remember_password_file(s.host, s.port, s.username, s.password_file)
    try:
        return s.password()
    except ConfigError:
        if s.password_file:
            raise
        return None  # FireWorks then reports the server's refusal


def patch_launchpad_auth(launchpad_cls) -> None:
    """Make ``launchpad_cls.from_dict`` (and so ``from_file``) fill in a missing password by
    :func:`launchpad_password` (idempotent)."""
    if getattr(launchpad_cls, "_argyro_auth", False):
        return
    original = launchpad_cls.from_dict.__func__

    def from_dict(cls, d):
        if d.get("username") and not d.get("password"):
            pw = launchpad_password(d)
            if pw:
                d = dict(d, password=pw)
        return original(cls, {k: v for k, v in d.items() if not k.startswith("argyro_")})

    launchpad_cls.from_dict = classmethod(from_dict)
    launchpad_cls._argyro_auth = True


def load_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read and validate an argyro config YAML; an empty dict when ``path`` is None."""
    if path is None:
        path = os.environ.get("ARGYRO_CONFIG")
        if not path:
            return {}
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"config file {p}: does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except PermissionError:
        raise ConfigError(f"config file {p}: not readable (permission denied)") from None
    except OSError as exc:
        raise ConfigError(f"config file {p}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p}: not valid YAML{yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a mapping at top level, got {type(data).__name__}")
    unknown = set(data) - _CONFIG_KEYS
    if unknown:
        raise ConfigError(f"config file {p}: unknown key(s) {sorted(unknown)}; expected {sorted(_CONFIG_KEYS)}")
    db = data.get("db", {}) or {}
    if not isinstance(db, dict):
        raise ConfigError(f"config file {p}: field 'db' must be a mapping")
    unknown = set(db) - _DB_KEYS
    if unknown:
        raise ConfigError(f"config file {p}: unknown key(s) db.{sorted(unknown)}; expected {sorted(_DB_KEYS)}")
    return data


def parse_uri(uri: str, source: str) -> DBSettings:
    """Settings from a MongoDB URI. A password inside the URI is refused (it would leak)."""
    parts = urlsplit(uri)
    if parts.scheme != "mongodb":
        raise ConfigError(f"{source}: expected a mongodb://host:port/dbname URI, got scheme {parts.scheme!r}")
    if parts.password:
        raise ConfigError(
            f"{source}: the URI holds a password; remove it and set $ARGYRO_DB_PASSWORD "
            "or $ARGYRO_DB_PASSWORD_FILE instead"
        )
    if not parts.hostname:
        raise ConfigError(f"{source}: the URI has no host")
    try:
        port = parts.port or 27017
    except ValueError:
        raise ConfigError(f"{source}: the URI's port is not a number") from None
    name = parts.path.lstrip("/") or DEFAULT_DB_NAME
    query = dict(q.split("=", 1) for q in parts.query.split("&") if "=" in q)
    return DBSettings(
        host=parts.hostname,
        port=port,
        name=name,
        username=unquote(parts.username) if parts.username else None,
        authsource=query.get("authSource"),
        source=source,
    )


def resolve(uri: str | None = None, config: str | os.PathLike | None = None) -> DBSettings:
    """The database argyro should use, by the precedence in this module's docstring."""
    cfg = load_config(config)
    db = cfg.get("db", {}) or {}
    if uri:
        s = parse_uri(uri, "--uri")
    elif os.environ.get("ARGYRO_DB_URI"):
        s = parse_uri(os.environ["ARGYRO_DB_URI"], "$ARGYRO_DB_URI")
    elif db.get("uri"):
        s = parse_uri(str(db["uri"]), "config db.uri")
    else:
        s = embedded_settings()
    if db.get("name"):
        s.name = str(db["name"])
    if db.get("username"):
        s.username = str(db["username"])
    if db.get("authsource"):
        s.authsource = str(db["authsource"])
    if db.get("password_env"):
        s.password_env = str(db["password_env"])
    if db.get("password_file"):
        s.password_file = str(db["password_file"])
    return s


def redact(text: str) -> str:
    """Remove ``user:password@`` from any URI in ``text`` (for logs and error messages)."""
    out = []
    for token in text.split():
        if token.startswith("mongodb://") and "@" in token:
            p = urlsplit(token)
            netloc = p.netloc.split("@", 1)[1]
            token = urlunsplit((p.scheme, f"***@{netloc}", p.path, p.query, p.fragment))
        out.append(token)
    return " ".join(out)


@dataclass(frozen=True)
class PingSettings:
    """The liveness ping that ``argyro recover`` relies on. ``argyro init`` writes ``interval_s`` as FireWorks'
    PING_TIME_SECS into FW_config.yaml beside the launchpad files; a RUNNING firework's worker pings that often."""
    interval_s: float = 60.0  # seconds between two pings of a RUNNING launch
    expiry_pings: int = 4  # `argyro recover` default: a run silent this many intervals is lost
    min_pings: int = 2  # a --lost-after shorter than this many intervals is refused
