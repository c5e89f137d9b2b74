"""Helm charts under test: rendered and linted with Helm's own engine (helm-python-sdk, no helm binary) and
validated against the Kubernetes schemas of one pinned version (kubernetes-validate, strict)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "deploy" / "helm"
# The Kubernetes version every rendered object is validated against (and `helm lint` is told of).
KUBE_VERSION = "1.35.0"
# Kinds that are custom resources: no schema in kubernetes-validate; their tests check them field by field.
CUSTOM_KINDS = {"ServiceMonitor", "Certificate", "RayCluster"}


def chart_path(chart: str) -> Path:
    return CHARTS / chart


def load_values(*files: Path) -> dict[str, Any]:
    """Values files merged the way `helm -f a -f b` does (later files win, maps merged key by key)."""
    merged: dict[str, Any] = {}
    for f in files:
        _merge(merged, yaml.safe_load(f.read_text()) or {})
    return merged


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def render(chart: str, values: Mapping[str, Any] | None = None, *, name: str = "bc",
           namespace: str = "blendr") -> list[dict[str, Any]]:
    """Every object the chart renders with ``values`` (NOTES.txt left out), in template order.

    Raises:
        helm_python.HelmValuesError: the values fail the chart's values.schema.json.
        helm_python.HelmRenderError: a template fails (e.g. a `fail` with the chart's message).
    """
    with helm.Chart.load(chart_path(chart)) as c:
        out = c.render(dict(values or {}), name=name, namespace=namespace, is_install=True)
    objs: list[dict[str, Any]] = []
    for path in sorted(out):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(out[path]):
            if doc:
                objs.append(doc)
    return objs


def notes(chart: str, values: Mapping[str, Any] | None = None, *, name: str = "bc",
          namespace: str = "blendr") -> str:
    """The chart's rendered NOTES.txt."""
    with helm.Chart.load(chart_path(chart)) as c:
        out = c.render(dict(values or {}), name=name, namespace=namespace, is_install=True)
    return next(text for path, text in out.items() if path.endswith("NOTES.txt"))


def lint(chart: str, values: Mapping[str, Any] | None = None) -> list[str]:
    """`helm lint --strict` findings worse than info, as "path: message" (empty: clean)."""
    report = helm.lint(chart_path(chart), dict(values or {}), strict=True, kube_version=f"v{KUBE_VERSION}")
    found = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return found + list(report.get("errors") or [])


def schema_error(chart: str, values: Mapping[str, Any]) -> str:
    """The message with which the chart refuses ``values`` (AssertionError if it accepts them)."""
    try:
        render(chart, values)
    except helm.HelmError as exc:
        return str(exc)
    raise AssertionError(f"{chart} accepted values it should refuse: {values!r}")


def validate(objs: Iterable[Mapping[str, Any]]) -> None:
    """Validate every built-in object strictly against the pinned Kubernetes schemas."""
    for obj in objs:
        if obj.get("kind") in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(dict(obj), KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = obj.get("metadata", {}).get("name")
            raise AssertionError(f"{obj.get('kind')}/{name}: {exc}") from None


def find(objs: Iterable[Mapping[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of ``kind`` (and ``name``, when given)."""
    return [dict(o) for o in objs
            if o.get("kind") == kind and (name is None or o.get("metadata", {}).get("name") == name)]


def one(objs: Iterable[Mapping[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of ``kind`` (and ``name``)."""
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
