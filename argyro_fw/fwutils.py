"""Small helpers shared by argyro's FireTasks (orchestration only, no science)."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError


def env_chk(value: Any, fw_spec: dict, name: str) -> Any:
    """Resolve ``>>key<<`` from the FireWorker env (``fw_spec['_fw_env']``), as atomate does."""
    if isinstance(value, str) and value.startswith(">>") and value.endswith("<<"):
        key = value[2:-2]
        env = fw_spec.get("_fw_env", {}) or {}
        if key not in env:
            raise ConfigError(f"{name}: {value} is not set in this FireWorker's env (my_fworker.yaml env.{key})")
        return env[key]
    return value
