"""What the offline validation of the Kubernetes manifests needs, in pinned versions, fetched once from the package
registries into the cache (OMS_CACHE_DIR, where the local stack keeps Kafka's jars):

- kustomize, built with `go install` from the Go module proxy (renders the overlays as `kubectl apply -k` would);
- the Kubernetes API's JSON schemas, strict variant (unknown fields refused), from the PyPI package
  kubernetes-validate;
- the Strimzi custom resource definitions, from the `tests` jar of io.strimzi:api on Maven Central;
- the CloudNativePG and Prometheus Operator (ServiceMonitor) custom resource definitions, from their Go modules.

    python -m deploy.kubernetes.tools   fetch whatever is missing and print where each lives
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deploy.local.settings import LocalStack
from deploy.local.supervisor import StackError, say

KUSTOMIZE = "v5.7.1"
KUBERNETES = "v1.33.0"  # the API version the manifests are checked against
KUBERNETES_VALIDATE = "1.37.0"
KUBERNETES_VALIDATE_SHA256 = "85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
STRIMZI = "0.49.1"
CLOUDNATIVE_PG = "v1.28.0"
PROMETHEUS_OPERATOR = "v0.85.0"

CNPG_MODULE = "github.com/cloudnative-pg/cloudnative-pg"
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"


@dataclass(frozen=True)
class Tools:
    """Where the fetched tools and schemas are."""

    root: Path

    @property
    def kustomize(self) -> Path:
        return self.root / f"kustomize-{KUSTOMIZE}" / "kustomize"

    @property
    def kubernetes_schemas(self) -> Path:
        return self.root / f"kubernetes-json-schema-{KUBERNETES}-strict"

    @property
    def strimzi_crds(self) -> Path:
        return self.root / f"strimzi-{STRIMZI}-crds"

    @property
    def cloudnative_pg_crds(self) -> Path:
        return self.root / f"cloudnative-pg-{CLOUDNATIVE_PG}-crds"

    @property
    def prometheus_operator_crds(self) -> Path:
        return self.root / f"prometheus-operator-{PROMETHEUS_OPERATOR}-crds"

    def crd_files(self) -> list[Path]:
        return sorted(
            p
            for folder in (self.strimzi_crds, self.cloudnative_pg_crds, self.prometheus_operator_crds)
            for p in folder.glob("*.yaml")
        )


def tools(local: LocalStack | None = None) -> Tools:
    return Tools((local or LocalStack.from_env()).cache / "kubernetes")


def ensure(found: Tools | None = None) -> Tools:
    """Everything fetched (each piece only when missing); raises StackError saying which registry refused what."""
    found = found or tools()
    found.root.mkdir(parents=True, exist_ok=True)
    steps = (
        (found.kustomize.parent, _kustomize),
        (found.kubernetes_schemas, _kubernetes_schemas),
        (found.strimzi_crds, _strimzi_crds),
        (found.cloudnative_pg_crds, _cloudnative_pg_crds),
        (found.prometheus_operator_crds, _prometheus_operator_crds),
    )
    for target, fetch in steps:
        if target.exists():
            continue
        say(f"kubernetes tools: fetching {target.name}")
        with tempfile.TemporaryDirectory(dir=found.root) as scratch:
            staged = Path(scratch) / target.name
            fetch(found, Path(scratch), staged)
            # Whole or not at all: an interrupted fetch leaves nothing behind, and of two concurrent fetches (two
            # checkouts sharing the cache) the first to finish is kept.
            with contextlib.suppress(OSError):
                staged.rename(target)
            if not target.exists():
                raise StackError(f"could not move {staged} to {target}")
    return found


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    if shutil.which(cmd[0]) is None:
        raise StackError(f"{what}: `{cmd[0]}` is not installed")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    if result.returncode != 0:
        raise StackError(f"{what} failed ({' '.join(cmd)}):\n{(result.stdout + result.stderr)[-3000:]}")
    return result.stdout


def _go_env(found: Tools, scratch: Path) -> dict[str, str]:
    # The module cache is the tools' own, writable so it can be removed; never a toolchain download.
    return {
        **os.environ,
        "GOMODCACHE": str(found.root / "gomod"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
        "GOPATH": str(scratch / "gopath"),
    }


def _kustomize(found: Tools, scratch: Path, staged: Path) -> None:
    env = {**_go_env(found, scratch), "GOBIN": str(staged), "CGO_ENABLED": "0"}
    _run(["go", "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE}"], "building kustomize", env, scratch)


def _kubernetes_schemas(found: Tools, scratch: Path, staged: Path) -> None:
    wanted = f"kubernetes-validate=={KUBERNETES_VALIDATE}"
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(scratch)]
    _run([*pip, wanted], f"pip download {wanted}")
    wheel = next(scratch.glob("kubernetes_validate-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != KUBERNETES_VALIDATE_SHA256:
        raise StackError(f"{wheel.name} has sha256 {digest}, not the pinned {KUBERNETES_VALIDATE_SHA256}")
    prefix = f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES}-local-strict/"
    _extract(wheel, prefix, staged)


def _strimzi_crds(found: Tools, scratch: Path, staged: Path) -> None:
    # The CRDs of the API version the manifests use (kafka.strimzi.io/v1) ship in the api module's tests jar.
    artifact = f"io.strimzi:api:{STRIMZI}:jar:tests"
    _run(
        ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={scratch}"],
        f"maven fetching {artifact}",
        cwd=scratch,
    )
    _extract(scratch / f"api-{STRIMZI}-tests.jar", "crds/v1/", staged)


def _cloudnative_pg_crds(found: Tools, scratch: Path, staged: Path) -> None:
    _go_env_run(found, scratch, staged, CNPG_MODULE, CLOUDNATIVE_PG, "config/crd/bases")


def _prometheus_operator_crds(found: Tools, scratch: Path, staged: Path) -> None:
    _go_env_run(
        found, scratch, staged, PROMETHEUS_OPERATOR_MODULE, PROMETHEUS_OPERATOR, "example/prometheus-operator-crd"
    )


def _go_env_run(found: Tools, scratch: Path, staged: Path, module: str, version: str, folder: str) -> None:
    env = _go_env(found, scratch)
    listing = _run(
        ["go", "mod", "download", "-json", f"{module}@{version}"], f"go mod download {module}@{version}", env
    )
    source = Path(json.loads(listing)["Dir"]) / folder
    staged.mkdir()
    for crd in sorted(source.glob("*.yaml")):
        shutil.copy(crd, staged / crd.name)
    if not any(staged.iterdir()):
        raise StackError(f"{module}@{version} has no CRDs in {folder}")


def _extract(archive: Path, prefix: str, staged: Path) -> None:
    staged.mkdir()
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                (staged / member.removeprefix(prefix)).write_bytes(zipped.read(member))
    if not any(staged.iterdir()):
        raise StackError(f"{archive.name} has nothing under {prefix}")


def main() -> None:
    try:
        found = ensure()
    except StackError as error:
        raise SystemExit(str(error)) from None
    for path in (
        found.kustomize,
        found.kubernetes_schemas,
        found.strimzi_crds,
        found.cloudnative_pg_crds,
        found.prometheus_operator_crds,
    ):
        print(path)


if __name__ == "__main__":
    main()
