"""The error types LoRA Lab raises on purpose, so callers can catch just these."""


class ConfigError(ValueError):
    """An impossible setting. The message names the field, the value and what is allowed."""


class CheckpointError(ValueError):
    """A checkpoint or upload that cannot be used. The message says what is wrong with it."""


def check(condition: bool, field: str, value, allowed: str, error=ConfigError) -> None:
    """Raise `error` naming `field`, its `value` and what is `allowed` unless `condition` holds."""
    if not condition:
        raise error(f"{field}={value!r} is not allowed: {field} must be {allowed}.")
