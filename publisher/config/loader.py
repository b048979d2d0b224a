"""Reading schedules.yaml: YAML with the line of every key, pydantic validation, and every
problem turned into a ConfigError naming file, line and key path (with a suggestion)."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from publisher.config.models import DEFAULT_CONFIG, PublisherConfig, format_key_path
from publisher.errors import ConfigError, ConfigErrors
from publisher.support.bounded import LimitError, check_yaml_limits

# --- loading with line numbers ------------------------------------------------------------

KeyPath = tuple[str | int, ...]
MAX_CONFIG_BYTES = 1024 * 1024  # a real schedules.yaml is a few kilobytes


class _LineLoader(yaml.SafeLoader):
    pass


def _walk_nodes(
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    file: str,
    active: frozenset[int] = frozenset(),
) -> None:
    if id(node) in active:  # an alias to one of its own parents (`a: &x {b: *x}`)
        raise ConfigError(
            "recursive alias: a value contains itself",
            file=file,
            line=node.start_mark.line + 1,
            key=format_key_path(path),
        )
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise ConfigError(
                    f"duplicate key '{key}'",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    key=format_key_path(path + (key,)),
                )
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk_nodes(value_node, path + (key,), lines, file, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _walk_nodes(item, path + (index,), lines, file, active)


def parse_yaml_with_lines(text: str, file: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML, returning the data and the line of every key and list item."""
    try:  # before anything is built: depth and alias expansion
        check_yaml_limits(text)
    except LimitError as exc:
        key = format_key_path(exc.path[:8]) + ("..." if len(exc.path) > 8 else "")
        raise ConfigError(str(exc), file=file, line=exc.line, key=key or None) from None
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"YAML syntax error: {reason}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=file) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _walk_nodes(node, (), lines, file)
    return data, lines


def _model_at(model: type[BaseModel], loc: typing.Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model class that a data location (pydantic 'loc') points into."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif isinstance(current, list):  # union of models: pick by discriminator tag
            match = [m for m in current if _literal_tag(m) == part]
            if not match:
                continue
            current = match[0]
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
            else:
                return args
        elif origin in (list, dict):
            return tp
        else:
            return tp


def _literal_tag(model: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel) and "type" in model.model_fields:
        args = typing.get_args(model.model_fields["type"].annotation)
        return args[0] if args else None
    return None


def _line_for(loc: typing.Sequence[str | int], lines: dict[KeyPath, int]) -> tuple[KeyPath, int]:
    """Map a pydantic loc (which may contain union tags) onto the YAML key path and line."""
    path: KeyPath = ()
    line = 1
    for part in loc:
        candidate = path + (part,)
        if candidate in lines:
            path = candidate
            line = lines[candidate]
    return path, line


def _errors_from_validation(
    exc: ValidationError, lines: dict[KeyPath, int], file: str, model: type[BaseModel]
) -> list[ConfigError]:
    errors = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, line = _line_for(loc, lines)
        key = format_key_path(path) if path else format_key_path(loc)
        etype = err["type"]
        if etype == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            allowed = sorted(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            msg = f"unknown key '{loc[-1]}'{hint} (allowed: {', '.join(allowed)})"
        elif etype == "missing":
            msg = f"required key '{loc[-1]}' is missing"
            key = format_key_path(path + (loc[-1],)) if path != loc else key
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if etype in ("literal_error", "union_tag_invalid", "enum"):
                msg = err["msg"]
        errors.append(ConfigError(msg, file=file, line=line, key=key))
    return errors


def load_config(path: str | Path = DEFAULT_CONFIG) -> PublisherConfig:
    """Read and validate schedules.yaml; raise ConfigError(s) naming file, line and key."""
    path = Path(path)
    file = str(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"larger than {MAX_CONFIG_BYTES // 1024} KB: not a configuration", file=file
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("configuration file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration: {exc}", file=file) from None
    data, lines = parse_yaml_with_lines(text, file)
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys", file=file, line=1)
    try:
        config = PublisherConfig.model_validate(data)
    except ValidationError as exc:
        errors = _errors_from_validation(exc, lines, file, PublisherConfig)
        raise (errors[0] if len(errors) == 1 else ConfigErrors(errors)) from None
    config = config.located_at(path, lines)
    errors = cross_reference_errors(config)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return config


def _duplicates(
    config: PublisherConfig, section: tuple[str | int, ...], values: list[str], what: str
) -> list[ConfigError]:
    """One error for each repeated value, at the second (and later) place it appears;
    `what` is 'campaign name', 'feed path'..., its last word the key."""
    seen: set[str] = set()
    errors = []
    key = what.split()[-1]
    for index, value in enumerate(values):
        if value in seen:
            errors.append(config.error_at(section + (index, key), f"duplicate {what} '{value}'"))
        seen.add(value)
    return errors


def cross_reference_errors(config: PublisherConfig) -> list[ConfigError]:
    """What pydantic cannot check field by field: unique names, and feeds naming campaigns
    that exist. `publisher check` and every other command refuse exactly these."""
    sources = [s.name for s in config.sources]
    errors = _duplicates(config, ("sources",), sources, "source name")
    campaign_names = [c.name for c in config.campaigns]
    errors += _duplicates(config, ("campaigns",), campaign_names, "campaign name")
    for index, campaign in enumerate(config.campaigns):
        names = [s.name for s in campaign.sections]
        errors += _duplicates(config, ("campaigns", index, "sections"), names, "section name")
    feeds = config.feeds.feeds
    for attribute in ("name", "path"):
        values = [getattr(feed, attribute) for feed in feeds]
        errors += _duplicates(config, ("feeds", "feeds"), values, f"feed {attribute}")
    campaigns = {campaign.name for campaign in config.campaigns}
    for index, feed in enumerate(feeds):
        if feed.campaign and feed.campaign not in campaigns:
            close = difflib.get_close_matches(feed.campaign, sorted(campaigns), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            errors.append(
                config.error_at(
                    ("feeds", "feeds", index, "campaign"),
                    f"unknown campaign '{feed.campaign}'{hint}",
                )
            )
    welcome = config.welcome
    if welcome and welcome.latest_edition and welcome.latest_edition not in campaigns:
        errors.append(
            config.error_at(
                ("welcome", "latest_edition"),
                f"unknown campaign '{welcome.latest_edition}' (campaigns: "
                + (", ".join(sorted(campaigns)) or "none configured")
                + ")",
            )
        )
    return errors
