"""One finding of ``fcn-edge doctor``: :class:`Check`, and the report that holds them.

Every check is a small function returning a :class:`Check`: what it looked at, the verdict
(ok / warn / fail / absent), what it found, and the fix when something is missing or wrong.
"absent" means the thing is not on this machine and nothing needs it to be (TensorRT on a
development box); "fail" means something this machine is meant to do will not work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Tuple

VERDICTS = ("ok", "absent", "warn", "fail")  # in rising order of concern


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    found: str
    fix: str = ""
    details: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "found": self.found, "fix": self.fix,
                "details": self.details}


def worst(verdicts: Iterable[str]) -> str:
    return max(verdicts, key=VERDICTS.index, default="ok")


@dataclass(frozen=True)
class DoctorReport:
    checks: Tuple[Check, ...]
    facts: Dict[str, Any] = field(default_factory=dict)  # the machine as fcn_edge.bench.sysinfo sees it

    @property
    def verdict(self) -> str:
        """ok, warn or fail: what is absent is not a problem in itself (the checks that need
        it say so)."""
        return worst(c.verdict for c in self.checks if c.verdict != "absent")

    def by_name(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> Dict[str, Any]:
        counts = {v: sum(c.verdict == v for c in self.checks) for v in VERDICTS}
        return {"verdict": self.verdict, "counts": counts, "checks": [c.to_dict() for c in self.checks],
                "machine": self.facts}

    def table(self) -> List[str]:
        """The report as text lines: one row per check, its fix indented beneath."""
        name_width = max((len(c.name) for c in self.checks), default=4) + 2
        lines = [f"{'CHECK':<{name_width}}{'VERDICT':<9}FOUND"]
        for check in self.checks:
            lines.append(f"{check.name:<{name_width}}{check.verdict.upper():<9}{check.found}")
            if check.fix and check.verdict != "ok":
                lines.append(f"{'':<{name_width + 9}}fix: {check.fix}")
        counts = ", ".join(f"{sum(c.verdict == v for c in self.checks)} {v}" for v in VERDICTS)
        lines.append(f"verdict: {self.verdict.upper()} ({counts})")
        return lines
