"""Which MongoDB argyro talks to, and how it authenticates.

Precedence: ``--uri`` > ``$ARGYRO_DB_URI`` > ``db.uri`` of the config file (``--config`` or
``$ARGYRO_CONFIG``) > the embedded SecantusDB server recorded under ``$ARGYRO_HOME/db``.

The password never lives in a URI, a config file or a rendered file: it is read at run time from
``$ARGYRO_DB_PASSWORD`` or from the file named by ``$ARGYRO_DB_PASSWORD_FILE`` (or the config's
``db.password_env`` / ``db.password_file``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote, urlsplit, urlunsplit

import yaml

from .db.embedded import EmbeddedServer
from .errors import ConfigError, yaml_problem

DEFAULT_DB_NAME = "argyro"

_CONFIG_KEYS = {"db", "home"}
_DB_KEYS = {"uri", "name", "username", "authsource", "password_env", "password_file"}


@dataclass
class DBSettings:
    """Connection settings without the password (safe to print and to render)."""
    host: str = "127.0.0.1"
    port: int = 27017
    name: str = DEFAULT_DB_NAME
    username: str | None = None
    authsource: str | None = None
    password_env: str = "ARGYRO_DB_PASSWORD"
    password_file: str | None = None
    source: str = "embedded"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The URI without the password (safe to print)."""
        user = f"{quote_plus(self.username)}@" if self.username else ""
        query = f"?authSource={self.authsource}" if self.authsource else ""
        return f"mongodb://{user}{self.host}:{self.port}/{self.name}{query}"

    def password(self) -> str | None:
        """The password from the environment or the password file; None if no user is set."""
        if not self.username:
            return None
        value = os.environ.get(self.password_env)
        if value:
            return value
        pfile = self.password_file or os.environ.get("ARGYRO_DB_PASSWORD_FILE")
        if pfile:
            try:
                return Path(pfile).expanduser().read_text().strip()
            except OSError as exc:
                raise ConfigError(f"password file {pfile}: cannot be read ({exc.strerror})") from None
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
        return kw


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
        server = EmbeddedServer()
        s = DBSettings(host=server.host, port=server.recorded_port(), source=f"embedded ({server.path})")
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
