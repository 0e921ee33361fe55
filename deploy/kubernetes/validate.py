"""The Kubernetes manifests checked offline: an overlay rendered with kustomize, and every object it yields checked
against the schema the API server would apply to it: the Kubernetes API's own (strict: an unknown field is an
error, as `kubectl apply` refuses it) or the served version of the custom resource definition of Strimzi,
CloudNativePG or the Prometheus Operator. An object no schema knows is an error too.

    python -m deploy.kubernetes.validate [OVERLAY]   (`make k8s-validate`; the unit tests do the same)

The tools and schemas come in pinned versions from the package registries (deploy/kubernetes/tools.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from deploy.kubernetes import tools as fetched
from deploy.local.supervisor import StackError

HERE = Path(__file__).resolve().parent
OVERLAY = HERE / "overlays" / "production"
# The base URI the Kubernetes schemas' references resolve against ("/api/_definitions.json#/$defs/...").
SCHEMA_BASE = "https://kubernetes.schemas.local"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 reads a bare `=` (an enum value in a CRD) as the obsolete "value" tag: read it as the string."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def render(kustomize: Path, overlay: Path = OVERLAY) -> list[dict[str, Any]]:
    result = subprocess.run([str(kustomize), "build", str(overlay)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"kustomize build {overlay} failed:\n{result.stderr[-3000:]}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def group_version_kind(obj: dict[str, Any]) -> tuple[str, str, str]:
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    return group, version, str(obj.get("kind", ""))


def structural(schema: Any) -> Any:
    """A custom resource's OpenAPI v3 structural schema as JSON Schema, checked as the API server checks it:
    `nullable` admits null, int-or-string admits either, and an object that lists its properties admits no
    other field unless it preserves unknown fields (the server would prune it; `kubectl apply` refuses it)."""
    if isinstance(schema, list):
        return [structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: structural(value) for key, value in schema.items()}
    if schema.get("x-kubernetes-int-or-string"):
        converted.pop("type", None)
        converted["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        converted["additionalProperties"] = False
    return converted


@dataclass
class Problem:
    obj: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.obj} at {self.path or '/'}: {self.message}"


@dataclass
class Report:
    checked: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.checked.items()))
        verdict = "all valid" if not self.problems else f"{len(self.problems)} problems"
        return f"{sum(self.checked.values())} objects checked ({kinds}): {verdict}"


class Schemas:
    """One validator per (group, version, kind), from the Kubernetes API's schemas and the fetched CRDs."""

    def __init__(self, kubernetes_schemas: Path, crd_files: Iterable[Path]) -> None:
        definitions = json.loads((kubernetes_schemas / "_definitions.json").read_text())
        self._registry = jsonschema_rs.Registry([(f"{SCHEMA_BASE}/api/_definitions.json", definitions)])
        self._builtin = {
            (gvk["group"], gvk["version"], gvk["kind"]): name
            for name, definition in definitions["$defs"].items()
            for gvk in definition.get("x-kubernetes-group-version-kind", [])
        }
        self._crds: dict[tuple[str, str, str], dict[str, Any]] = {}
        for path in crd_files:
            for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                for version in crd["spec"]["versions"]:
                    if version.get("served"):
                        key = (crd["spec"]["group"], version["name"], crd["spec"]["names"]["kind"])
                        self._crds[key] = version["schema"]["openAPIV3Schema"]
        self._validators: dict[tuple[str, str, str], Any] = {}

    def _reference(self, definition: str) -> Any:
        return jsonschema_rs.Draft7Validator(
            {"$ref": f"/api/_definitions.json#/$defs/{definition}"},
            registry=self._registry,
            base_uri=f"{SCHEMA_BASE}/object.json",
        )

    def validator(self, gvk: tuple[str, str, str]) -> Any | None:
        if gvk not in self._validators:
            if gvk in self._builtin:
                self._validators[gvk] = self._reference(self._builtin[gvk])
            elif gvk in self._crds:
                self._validators[gvk] = jsonschema_rs.Draft7Validator(structural(self._crds[gvk]))
            else:
                return None
        return self._validators[gvk]

    def problems(self, obj: dict[str, Any]) -> list[Problem]:
        gvk = group_version_kind(obj)
        name = f"{gvk[2] or '?'} {obj.get('metadata', {}).get('name', '?')} ({obj.get('apiVersion', '?')})"
        validator = self.validator(gvk)
        if validator is None:
            return [Problem(name, "", "no schema: neither the Kubernetes API nor a fetched CRD defines this kind")]
        found = [Problem(name, _path(e.instance_path), e.message) for e in validator.iter_errors(obj)]
        if gvk not in self._builtin:
            # A CRD's schema leaves metadata to the API server: check it as the server does.
            meta = self._validators.setdefault(("", "", OBJECT_META), self._reference(OBJECT_META))
            found += [
                Problem(name, _path(["metadata", *e.instance_path]), e.message)
                for e in meta.iter_errors(obj.get("metadata", {}))
            ]
        return found


def _path(parts: Iterable[str | int]) -> str:
    return "/" + "/".join(str(p) for p in parts)


def check(objects: Iterable[dict[str, Any]], schemas: Schemas) -> Report:
    report = Report()
    for obj in objects:
        report.checked[obj.get("kind", "?")] += 1
        report.problems += schemas.problems(obj)
    return report


def schemas_of(found: fetched.Tools) -> Schemas:
    return Schemas(found.kubernetes_schemas, found.crd_files())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.kubernetes.validate", description=__doc__.split("\n")[0])
    parser.add_argument("overlay", nargs="?", type=Path, default=OVERLAY)
    args = parser.parse_args(argv)
    try:
        found = fetched.ensure()
        report = check(render(found.kustomize, args.overlay), schemas_of(found))
    except StackError as error:
        sys.exit(str(error))
    for problem in report.problems:
        print(problem)
    print(report.summary())
    if report.problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
