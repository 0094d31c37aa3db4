"""The infrastructure repository: resolving commits and exporting a commit's tree."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from deployments.terraform.redact import MASK, Redactor

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_GIT_TIMEOUT = 120
# The user-info part of any URL (``https://user:token@host``): credentials, always masked.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


def sanitize_urls(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (``https://[REDACTED]@host``)."""
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)


# Git asks this helper for a remote's credentials; it answers from the environment of the
# git process (readable only by the portal's user), so they never appear on a command line
# (`ps` shows those to every local user) nor in the mirror's config.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    'printf \'username=%s\\npassword=%s\\n\' "$CCP_GIT_USERNAME" "$CCP_GIT_PASSWORD"; }; f'
)


def _private_umask() -> None:
    # A mirror's config holds the remote URL, credentials included: private to the portal.
    os.umask(0o077)


class SourceError(Exception):
    """The infrastructure repository cannot answer (missing, unreachable, corrupt)."""


@dataclass(frozen=True)
class InfraRepo:
    """A git repository holding the Terraform root: a local path or a remote URL.

    A remote is mirrored under ``cache_dir`` and fetched when a commit is not known yet.
    """

    location: str
    cache_dir: Path

    @property
    def display_location(self) -> str:
        """The location as it may be shown or logged: without credentials."""
        return sanitize_urls(self.location)

    def redact(self, text: str) -> str:
        """``text`` (an error, git's stderr) without the location's credentials in any form."""
        secrets: list[str] = []
        if not self.is_local:
            parts = urlsplit(self.location)
            for value in (parts.username, parts.password):
                if value:
                    secrets += [value, unquote(value)]
        redactor = Redactor(secrets)
        return "\n".join(redactor(sanitize_urls(line)) for line in text.splitlines())

    def _error(self, message: str) -> SourceError:
        return SourceError(self.redact(message))

    def _remote(self) -> tuple[str, list[str], dict[str, str]]:
        """What git is given for a remote: its URL without credentials, the options naming
        the credential helper, and the environment that carries the credentials to it."""
        parts = urlsplit(self.location)
        if self.is_local or (parts.username is None and parts.password is None):
            return self.location, [], {}
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        options = ["-c", "credential.helper=", "-c", f"credential.helper={_CREDENTIAL_HELPER}"]
        credentials = {
            "CCP_GIT_USERNAME": unquote(parts.username or ""),
            "CCP_GIT_PASSWORD": unquote(parts.password or ""),
        }
        return urlunsplit(parts._replace(netloc=netloc)), options, credentials

    @property
    def is_local(self) -> bool:
        return "://" not in self.location and not re.match(r"^[\w.-]+@[\w.-]+:", self.location)

    @property
    def git_dir(self) -> Path:
        if self.is_local:
            path = Path(self.location)
            return path / ".git" if (path / ".git").exists() else path
        return self.cache_dir / "infra-mirror.git"

    def _git(self, *args: str, binary: bool = False) -> subprocess.CompletedProcess[bytes]:
        _url, options, credentials = self._remote()
        env = self._git_env(credentials)
        try:
            return subprocess.run(
                ["git", *options, f"--git-dir={self.git_dir}", *args],
                capture_output=True,
                env=env,
                timeout=_GIT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            # The exception's text quotes the command line, which may hold the URL.
            raise self._error(f"git {args[0]} failed: {exc}") from None

    def _ensure_available(self, refresh: bool = False) -> None:
        if self.is_local:
            if not self.git_dir.exists():
                raise self._error(
                    f"the infrastructure repository {self.display_location} does not exist"
                )
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        url, options, credentials = self._remote()
        if not self.git_dir.exists():
            try:
                result = subprocess.run(
                    ["git", *options, "clone", "--mirror", "--quiet", url, str(self.git_dir)],
                    capture_output=True,
                    timeout=_GIT_TIMEOUT * 5,
                    check=False,
                    env={
                        "PATH": os.environ.get("PATH", ""),
                        "HOME": str(self.cache_dir),
                        "GIT_TERMINAL_PROMPT": "0",
                        **credentials,
                    },
                    preexec_fn=_private_umask,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                # The exception's text quotes the command line, URL included.
                raise self._error(f"cannot clone {self.display_location}: {exc}") from None
            if result.returncode != 0:
                raise self._error(
                    f"cannot clone {self.display_location}: "
                    + result.stderr.decode(errors="replace").strip()
                )
        elif refresh:
            if credentials:
                # A mirror cloned by an older version kept the URL with its credentials.
                self._git("config", "remote.origin.url", url)
            result = self._git("fetch", "--prune", "--quiet", "origin")
            if result.returncode != 0:
                raise self._error(
                    f"cannot fetch {self.display_location}: "
                    + result.stderr.decode(errors="replace").strip()
                )

    def branch_tip(self, branch: str) -> str:
        """The commit at the tip of ``branch`` (fetched first for a remote)."""
        self._ensure_available(refresh=True)
        result = self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
        sha = result.stdout.decode().strip()
        if result.returncode != 0 or not SHA_RE.match(sha):
            raise SourceError(f"the infrastructure repository has no branch {branch!r}")
        return sha

    def is_ancestor(self, sha: str, branch: str) -> bool:
        """Is commit ``sha`` reachable from the tip of ``branch`` (the commit itself included)?

        Both are resolved to commits first (a remote is fetched, so the answer is about the
        branch as it is now), then ``git merge-base --is-ancestor`` decides. SourceError
        when either cannot be resolved or git cannot answer: callers treat that as "no".
        """
        if not SHA_RE.match(sha):
            raise SourceError(f"{sha!r} is not a 40-hex commit SHA")
        tip = self.branch_tip(branch)
        if self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
            raise SourceError(f"commit {sha} is not in the infrastructure repository")
        result = self._git("merge-base", "--is-ancestor", sha, tip)
        if result.returncode == 0:
            return True
        if result.returncode == 1:
            return False
        raise self._error(
            f"cannot tell whether {sha[:10]} is on {branch}: "
            + result.stderr.decode(errors="replace").strip()
        )

    def has_commit(self, sha: str) -> bool:
        if not SHA_RE.match(sha):
            return False
        self._ensure_available()
        if self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode == 0:
            return True
        if self.is_local:
            return False
        self._ensure_available(refresh=True)
        return self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def resolve_commit(self, sha: str) -> str | None:
        """The commit ``sha`` names, peeled as git's ``<sha>^{commit}`` does: a commit is
        itself, an annotated tag is the commit it points at; anything else (a tree, a blob,
        a tag of a tree, an unknown object) is None. Fetches a remote once when unknown."""
        if not SHA_RE.match(sha):
            return None
        self._ensure_available()
        found = self._peel_to_commit(sha)
        if found is None and not self.is_local:
            self._ensure_available(refresh=True)
            found = self._peel_to_commit(sha)
        return found

    def _peel_to_commit(self, sha: str) -> str | None:
        result = self._git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}")
        peeled = result.stdout.decode(errors="replace").strip()
        return peeled if result.returncode == 0 and SHA_RE.match(peeled) else None

    def commit_subject(self, sha: str) -> str:
        result = self._git("log", "-1", "--format=%s", sha)
        return result.stdout.decode(errors="replace").strip() if result.returncode == 0 else ""

    def commit_facts(self, sha: str) -> dict[str, str]:
        """The commit's message (at most 4,000 characters), author name and authored time
        (ISO 8601); ``{}`` when git cannot say. Read from what is already fetched."""
        if not SHA_RE.match(sha):
            return {}
        result = self._git("log", "-1", "--format=%an%x00%aI%x00%B", sha)
        if result.returncode != 0:
            return {}
        author, _, rest = result.stdout.decode(errors="replace").partition("\x00")
        authored_at, _, message = rest.partition("\x00")
        message = message.strip()
        if len(message) > 4000:
            message = message[:3999] + "…"
        return {
            "author": author.strip()[:200],
            "authored_at": authored_at.strip(),
            "message": message,
        }

    def export(self, sha: str, subdir: str, dest: Path) -> Path:
        """Write the whole tree of the commit at ``sha`` into ``dest``; return the Terraform
        root inside it (``dest/subdir``).

        The whole tree, not only the root: a root calls modules beside it
        (``source = "../modules/db"``) and reads files there (``file("../policies/x")``),
        as HCP Terraform and Atlantis let it. Every local module the root calls, directly
        or through others, must resolve inside the repository (SourceError otherwise). A
        symbolic link that points outside the tree is not written (it could only reach the
        run's own directory or beyond).
        """
        if not SHA_RE.match(sha):
            raise SourceError(f"{sha!r} is not a 40-hex commit SHA")
        check_relative(subdir, "TERRAFORM_DIR")
        self._ensure_available()
        self._archive_into(sha, dest)
        return _root_of(dest, subdir, sha)

    def _archive_into(self, sha: str, dest: Path) -> None:
        """``git archive`` of the commit, unpacked as it streams (a large repository is
        never held in memory whole)."""
        _url, options, credentials = self._remote()
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(
                    ["git", *options, f"--git-dir={self.git_dir}", "archive", "--format=tar", sha],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=self._git_env(credentials),
                )
            except OSError as exc:
                raise self._error(f"git archive failed: {exc}") from None
            timer = threading.Timer(_GIT_TIMEOUT * 5, proc.kill)
            timer.start()
            unpack_error = ""
            try:
                assert proc.stdout is not None
                with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                    archive.extractall(dest, filter=_inside_tree)  # noqa: S202 - "data" filter
            except (tarfile.TarError, OSError) as exc:
                unpack_error = str(exc)
            finally:
                if proc.stdout is not None:
                    proc.stdout.close()
                code = proc.wait()
                timer.cancel()
            if code != 0:
                errors.seek(0)
                raise self._error(
                    f"cannot export commit {sha[:10]}: "
                    + (errors.read().decode(errors="replace").strip() or f"git exited {code}")
                )
            if unpack_error:
                raise SourceError(f"cannot unpack commit {sha[:10]}: {unpack_error}")

    def _git_env(self, credentials: Mapping[str, str]) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.cache_dir),
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            **credentials,
        }

    def export_cached(self, sha: str, subdir: str, dest: Path, cache_root: Path) -> Path:
        """:meth:`export`, served from a copy kept per commit under ``cache_root``.

        A commit's tree never changes, so it is exported from git once and copied for each
        run (files already unpacked, instead of starting git and unpacking an archive).
        Every file is checked against the SHA-256 recorded when the entry was made while it
        is copied; an entry that does not match (edited, truncated, half-deleted) is dropped
        and exported again. Entries are made in a temporary folder and renamed into place,
        so a half-made entry is never used. The files are what the repository already
        holds on disk, var-files included, in a folder private to the portal's user. The
        root's local modules are checked on every copy (the entry is the commit's, shared
        by every root in it).
        """
        if not SHA_RE.match(sha):
            raise SourceError(f"{sha!r} is not a 40-hex commit SHA")
        check_relative(subdir, "TERRAFORM_DIR")
        cache_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        # "tree": entries hold the whole commit (older ones, keyed with the root, held only
        # the root and are never read again; pruning removes them).
        key = hashlib.sha256(f"tree\0{sha}".encode()).hexdigest()[:32]
        entry = cache_root / key
        if entry.is_dir():
            try:
                _copy_entry(entry, dest)
                return _root_of(dest, subdir, sha)
            except (OSError, ValueError, KeyError):
                shutil.rmtree(dest, ignore_errors=True)
                shutil.rmtree(entry, ignore_errors=True)  # rebuilt below
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=cache_root))
        try:
            self._ensure_available()
            self._archive_into(sha, staging / "tree")
            _write_manifest(staging)
            try:
                staging.rename(entry)
            except OSError:  # another run made it meanwhile: use that one
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _prune(cache_root, keep=_CACHED_EXPORTS)
        _copy_entry(entry, dest)
        return _root_of(dest, subdir, sha)


def _inside_tree(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's "data" filter (no absolute paths, no device files, no links out of the
    tree), skipping a link that points out of the tree instead of failing the export:
    a repository may hold one anywhere; if the root or a module it calls needs it, the
    module check says so (_root_of)."""
    try:
        return tarfile.data_filter(member, dest)
    except (tarfile.LinkOutsideDestinationError, tarfile.AbsoluteLinkError):
        return None


def _root_of(tree: Path, subdir: str, sha: str) -> Path:
    """The Terraform root in an exported tree, its local modules checked."""
    from deployments.terraform.configuration import local_module_dirs

    root = tree / subdir
    if not root.is_dir() or not root.resolve().is_relative_to(tree.resolve()):
        raise SourceError(f"{subdir}/ does not exist at commit {sha[:10]}")
    local_module_dirs(root, tree)
    return root


# Commits whose exports are kept (the most recently used); older ones are removed.
_CACHED_EXPORTS = 32
_MANIFEST = "manifest.json"


def _write_manifest(entry: Path) -> None:
    tree = entry / "tree"
    files: dict[str, dict[str, object]] = {}
    for path in sorted(tree.rglob("*")):
        name = path.relative_to(tree).as_posix()
        if path.is_symlink():
            files[name] = {"link": os.readlink(path)}
        elif path.is_file():
            files[name] = {
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "mode": path.stat().st_mode & 0o777,
            }
    (entry / _MANIFEST).write_text(json.dumps(files))


def _copy_entry(entry: Path, dest: Path) -> None:
    """Copy a cache entry's files to ``dest``, checking each; ValueError on a mismatch."""
    files = json.loads((entry / _MANIFEST).read_text())
    tree = entry / "tree"
    dest.mkdir(parents=True, exist_ok=True)
    for name, meta in files.items():
        check_relative(name, "exported file")
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if "link" in meta:
            os.symlink(meta["link"], target)
            continue
        data = (tree / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ValueError(f"cached export of {name} does not match its digest")
        target.write_bytes(data)
        target.chmod(int(meta["mode"]))
    os.utime(entry)  # most recently used, for pruning


def _prune(cache_root: Path, *, keep: int) -> None:
    entries = sorted(
        (p for p in cache_root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in entries[keep:]:
        shutil.rmtree(stale, ignore_errors=True)


def check_relative(path: str, what: str) -> None:
    """Refuse absolute paths and parent references: they could escape the working copy."""
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts:
        raise SourceError(f"{what} must be a relative path inside the repository, not {path!r}")


def create_repository(
    source: Path, dest: Path, *, branch: str = "main", message: str = "Sample Media Platform stack"
) -> str:
    """Make ``source`` (a directory tree) into a git repository at ``dest``; return the commit."""
    if (dest / ".git").exists():
        raise SourceError(f"{dest} is already a git repository")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        source,
        dest,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfplan"),
    )
    _work_git(dest, "init", "--quiet", "-b", branch)
    return commit_all(dest, message)


def _work_git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),
        "GIT_AUTHOR_NAME": "Change Control Portal",
        "GIT_AUTHOR_EMAIL": "portal@localhost",
        "GIT_COMMITTER_NAME": "Change Control Portal",
        "GIT_COMMITTER_EMAIL": "portal@localhost",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, timeout=_GIT_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise SourceError(f"git {args[0]} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode().strip()


def commit_all(repo: Path, message: str) -> str:
    """Commit every change in a local working repository; return the new commit."""
    _work_git(repo, "add", "-A")
    _work_git(repo, "commit", "--quiet", "--no-gpg-sign", "--allow-empty", "-m", message)
    return _work_git(repo, "rev-parse", "HEAD")
