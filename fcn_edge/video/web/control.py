"""The page's controls, checked on the server: a JSON object in, one change of a running pipeline out.

Accepted keys (any subset, nothing else)::

    {"mode": "overlay"|"mask"|"both", "alpha": 0..255, "ignore_class": null|INDEX|"NAME",
     "filter_mode": "point"|"linear", "paused": true|false}

Every value is checked before anything changes: a request that fails changes nothing.
Values the model cannot honour are refused with the runtime's own message (linear
filtering needs scores, which a fused-argmax model does not give).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Optional

from fcn_edge.errors import UsageError
from fcn_edge.runtime.decode import FILTER_MODES
from fcn_edge.runtime.render import VISUAL_MODES, RenderConfig, class_index
from fcn_edge.video.live import LiveControls

CONTROL_KEYS = ("mode", "alpha", "ignore_class", "filter_mode", "paused")
_UNSET = object()


@dataclass(frozen=True)
class ControlChange:
    """What one request changes; None (or _UNSET for ignore_class, where None means 'none'): unchanged."""

    mode: Optional[str] = None
    alpha: Optional[float] = None
    ignore_class: Any = _UNSET
    filter_mode: Optional[str] = None
    paused: Optional[bool] = None

    @property
    def render_changes(self) -> Dict[str, Any]:
        changes: Dict[str, Any] = {}
        if self.mode is not None:
            changes["mode"] = self.mode
        if self.alpha is not None:
            changes["alpha"] = self.alpha
        if self.ignore_class is not _UNSET:
            changes["ignore_class"] = self.ignore_class
        return changes


def parse_control(payload: Any) -> ControlChange:
    """Check the types and choices of a decoded JSON body; UsageError names what is wrong."""
    if not isinstance(payload, dict) or not payload:
        raise UsageError("a control is a non-empty JSON object, e.g. {\"alpha\": 120}")
    unknown = sorted(set(payload) - set(CONTROL_KEYS))
    if unknown:
        raise UsageError(f"unknown control {', '.join(map(repr, unknown))}; accepted: {', '.join(CONTROL_KEYS)}")
    fields: Dict[str, Any] = {}
    if "mode" in payload:
        fields["mode"] = _choice(payload["mode"], VISUAL_MODES, "mode")
    if "alpha" in payload:
        alpha = payload["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 255:
            raise UsageError(f"alpha must be a number from 0 (frame only) to 255 (mask only), got {alpha!r}")
        fields["alpha"] = float(alpha)
    if "ignore_class" in payload:
        value = payload["ignore_class"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
            raise UsageError(f"ignore_class must be null, a class index or a class name, got {value!r}")
        fields["ignore_class"] = value
    if "filter_mode" in payload:
        fields["filter_mode"] = _choice(payload["filter_mode"], FILTER_MODES, "filter_mode")
    if "paused" in payload:
        if not isinstance(payload["paused"], bool):
            raise UsageError(f"paused must be true or false, got {payload['paused']!r}")
        fields["paused"] = payload["paused"]
    return ControlChange(**fields)


def _choice(value: Any, choices, what: str) -> str:
    if value not in choices:
        raise UsageError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value


def apply_control(change: ControlChange, controls: LiveControls) -> None:
    """Apply ``change``; all or nothing: the render settings are checked (a Renderer built)
    before the decode settings, which may be refused (MetaError), change anything."""
    render: Optional[RenderConfig] = None
    if change.render_changes:
        render = replace(controls.render, **change.render_changes)  # RenderConfig checks mode and alpha
        controls.new_renderer(render)  # and the ignore class against the model's classes
    if change.filter_mode is not None:
        controls.set_filter_mode(change.filter_mode)
    if render is not None:
        controls.set_render(render)
    if change.paused is not None:
        controls.set_paused(change.paused)


def settings(controls: LiveControls) -> Dict[str, Any]:
    """The live settings as the page shows them."""
    render, decode = controls.render, controls.decode
    names = controls.meta.class_names
    ignore = render.ignore_class
    if ignore is not None:
        ignore = class_index(ignore, names)
    return {
        "mode": render.mode,
        "alpha": render.alpha,
        "ignore_class": ignore,
        "filter_mode": decode.filter_mode if decode is not None else None,
        "paused": controls.paused,
    }
