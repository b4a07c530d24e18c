"""The experiment config <-> the URL query string. Pure functions, no Streamlit.

A URL holds only what differs from the modality's default preset, so lesson
links stay short: `?preset=seed`, `?modality=image&rank=8`. Reading is
forgiving: a bad value is dropped with a sentence saying what was wrong, and
the rest of the URL still applies.
"""
from __future__ import annotations

from typing import Mapping

from lora_core.config import DEFAULT_PRESET, MODALITIES, PRESETS, Config, default_config, preset_config
from lora_core.errors import ConfigError

PRESET_KEY = "preset"


def _first(value) -> str:
    return value[-1] if isinstance(value, (list, tuple)) else str(value)


def config_from_query(params: Mapping[str, object]) -> tuple[Config, list[str]]:
    """The config a URL describes, and a sentence for each part of it that could not be used."""
    params = {k: _first(v) for k, v in params.items()}
    problems: list[str] = []
    preset = params.pop(PRESET_KEY, None)
    if preset is not None and preset not in PRESETS:
        problems.append(f"The link names an unknown preset '{preset}'; the presets are {', '.join(PRESETS)}.")
        preset = None
    modality = params.get("modality")
    if modality is not None and modality not in MODALITIES:
        problems.append(f"The link's modality '{modality}' is unknown; use one of {', '.join(MODALITIES)}.")
        params.pop("modality")
        modality = None
    if preset is not None:
        base = preset_config(preset)
    else:
        base = default_config(modality or "synthetic")
    fields = set(base.to_dict())
    values = base.to_dict()
    for key, raw in params.items():
        if key not in fields:
            continue  # foreign parameters (e.g. from a tracker) are ignored, not errors
        try:
            values = Config.from_dict({**values, key: raw}).to_dict()
        except ConfigError as error:
            problems.append(f"Ignored {key}={raw} from the link: {error}")
    return Config.from_dict(values), problems


def config_to_query(config: Config) -> dict[str, str]:
    """The shortest query that restores `config`: the modality plus what differs from its default."""
    default = default_config(config.modality).to_dict()
    query = {"modality": config.modality}
    for key, value in config.to_dict().items():
        if value != default[key]:
            query[key] = _format(value)
    return query


def _format(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # "8", not "8.0"
    return str(value)  # repr-exact for floats: the URL restores the same number


def preset_link(name: str, page: str = "train") -> str:
    """A relative link that opens `page` with preset `name`."""
    return f"/{page}?{PRESET_KEY}={name}"


__all__ = ["DEFAULT_PRESET", "config_from_query", "config_to_query", "preset_link"]
