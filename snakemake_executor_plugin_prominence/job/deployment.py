"""How the storage plugins a run needs get into each job, without a package index.

A job downloads its workflow sources through the default storage provider, so that provider's
plugin must be importable *before* the remote Snakemake starts; the official Snakemake image
has none. In the default ``ship`` mode the run packs, once, the files of exactly the
distributions its jobs need (the storage plugins the remote command names, and their
dependencies that Snakemake itself does not bring), at the versions installed here, into one
zip. The zip goes to the default storage next to Snakemake's source archive, and each job
fetches it with Python's standard library from a URL in its task environment (a presigned
GET for S3, a ``file://`` URL for ``fs``) and unpacks it into ``.snakemake/pip-deployments``,
which Snakemake appends to ``sys.path``: nothing is resolved, nothing comes from an index, and
anything the image already has wins over the shipped copy.

What cannot travel that way (a platform-specific wheel, an installation without a file list)
is pip-installed in the job at the local version with ``--no-deps``; a default storage
provider that gives no such URL makes the whole run fall back to ``install`` (pip, as before),
with a warning saying why.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from importlib.metadata import packages_distributions as _packages_distributions
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from snakemake_interface_common.exceptions import WorkflowError

#: Snakemake puts this directory (relative to the job's working directory) on sys.path.
PIP_TARGET = ".snakemake/pip-deployments"
#: Task environment variable holding the URL of the run's package zip.
URL_ENV = "PROMINENCE_SNAKEMAKE_PACKAGES_URL"
PLUGIN_PREFIX = "snakemake-storage-plugin-"
#: A presigned S3 URL lives at most 7 days; jobs submitted later get a fresh one.
PRESIGN_SECONDS = 7 * 24 * 3600
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
#: botocore carries the API models of every AWS service (about 2,000 files, 20 MB) and reads
#: only those of the services a client is made for. The storage plugins talk to S3; the
#: credential chain may call STS and SSO. Every other model stays behind, which makes the zip
#: about ten times smaller and quicker to unpack in every job.
_BOTOCORE_MODELS = "botocore/data/"
_BOTOCORE_KEPT = frozenset({"s3", "sts", "sso", "sso-oidc"})

# Runs in a job before Snakemake, with nothing but the standard library: fetch a file by the
# URL in an env variable (3 tries), check its sha256, then act on ``data``. The URL is never
# printed (it may carry a signature).
_FETCH = (
    "import hashlib,io,os,sys,time,urllib.request,zipfile\n"
    "for attempt in range(3):\n"
    "    try:\n"
    "        data=urllib.request.urlopen(os.environ[{env!r}],timeout=300).read()\n"
    "        break\n"
    "    except Exception as e:\n"
    "        error=e\n"
    "        time.sleep(0 if attempt==2 else 2*attempt+1)\n"
    "else:\n"
    "    sys.exit({unreachable!r}+' ('+type(error).__name__+': '+str(error)+')'+{hint!r})\n"
    "if hashlib.sha256(data).hexdigest()!={sha256!r}:\n"
    "    sys.exit({damaged!r})\n"
    "{then}\n"
)


def fetch_script(
    env: str, sha256: str, unreachable: str, damaged: str, then: str, hint: str = ""
) -> str:
    """Python source (standard library only) that fetches the file whose URL is in ``env``,
    checks its sha256 and runs ``then`` with its bytes in ``data``; it exits with
    ``unreachable`` (and ``hint``) or ``damaged`` otherwise. Shared by the storage plugin zip
    of every job and the sources of a detached run's head."""
    return _FETCH.format(
        env=env, sha256=sha256, unreachable=unreachable, hint=hint, damaged=damaged, then=then
    )


@dataclass
class Deployment:
    """What each job of the run gets: a shell prefix and task environment entries."""

    prefix: str = ""
    drop_args: list[str] = field(default_factory=list)  # see unused_plugin_args
    url: Any = None  # callable () -> str, or None when nothing is shipped
    remove: Any = None  # callable () -> None: deletes the shipped zip from storage
    shipped: list[str] = field(default_factory=list)  # name==version of what travels

    def command(self, command: str) -> str:
        """The remote command without the settings of storage plugins the run does not use."""
        return without_args(command, self.drop_args)

    def env(self) -> dict[str, str]:
        return {URL_ENV: self.url()} if self.url is not None else {}

    def cleanup(self) -> None:
        remove, self.remove = self.remove, None
        if remove is not None:
            remove()


# --- what the jobs need ----------------------------------------------------------------


def used_plugins(workflow: Any) -> set[str]:
    """Distribution names of the storage plugins the run uses: the default provider's, and
    those of the providers the Snakefile asked for (registered while it was parsed)."""
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    names: set[str] = set()
    default = workflow.storage_settings.default_storage_provider
    if default:
        names.add(StoragePluginRegistry().get_plugin_package_name(default))
    for provider in _registered_providers(workflow):
        module = type(provider).__module__.split(".")[0]
        names.update(_packages_distributions().get(module, []))
    return {canonicalize_name(n) for n in names if canonicalize_name(n).startswith(PLUGIN_PREFIX)}


def unused_plugin_args(workflow: Any, used: set[str]) -> list[str]:
    """The ``--storage-<plugin>-...`` arguments Snakemake puts on the remote command for
    plugins the run does not use.

    Snakemake repeats the settings of every installed storage plugin that has any, defaults
    included (``--storage-s3-retries 5`` on a run that only uses ``fs``), so the remote
    Snakemake would refuse to start without those plugins. Dropping these arguments lets a
    job do without plugins it never calls.
    """
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    registry = StoragePluginRegistry()
    prefixes = {
        plugin.get_cli_arg("x")[:-1]: canonicalize_name(registry.get_plugin_package_name(name))
        for name, plugin in registry.plugins.items()
    }
    unused = []
    for arg in workflow.spawned_job_args_factory.get_storage_provider_args():
        matching = [p for p in prefixes if arg.startswith(p)]
        if matching and prefixes[max(matching, key=len)] not in used:
            unused.append(arg)
    return unused


def without_args(command: str, args: Iterable[str]) -> str:
    """``command`` without these exact arguments (each as Snakemake formatted it)."""
    for arg in args:
        command = re.sub(r"(?<=\s)" + re.escape(arg) + r"(?=\s|$)", "", command)
    return command


def _registered_providers(workflow: Any) -> Iterable[Any]:
    storages = getattr(workflow.storage_registry, "_storages", None) or {}
    return list(storages.values())


def closure(names: Iterable[str]) -> dict[str, Distribution]:
    """The installed distributions ``names`` need, themselves included (extras ignored)."""
    environment = default_environment()
    found: dict[str, Distribution] = {}
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # optional or platform-specific, and not installed here
        found[name] = dist
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker and not requirement.marker.evaluate({**environment, "extra": ""}):
                continue
            todo.append(canonicalize_name(requirement.name))
    return found


def to_ship(plugins: Iterable[str]) -> dict[str, Distribution]:
    """The plugins and their dependencies, minus what Snakemake itself needs (the image's
    Snakemake has those, at versions it accepts; ours would only shadow nothing)."""
    provided = closure(["snakemake"])
    return {name: dist for name, dist in closure(plugins).items() if name not in provided}


def can_travel(dist: Distribution) -> bool:
    """Pure-Python files with a file list: unpacking them anywhere is an installation."""
    files = dist.files
    if not files:
        return False
    wheel = dist.read_text("WHEEL") or ""
    if "root-is-purelib: true" not in wheel.lower():
        return False
    if dist.read_text("direct_url.json") and '"editable": true' in (
        dist.read_text("direct_url.json") or ""
    ):
        return False
    return not any(str(f).endswith(_NATIVE_SUFFIXES) for f in files)


def pin(dist: Distribution) -> str:
    return f"{dist.metadata['Name']}=={dist.version}"


def _packed(name: str) -> bool:
    """Whether an installed file goes into the zip: not scripts, bytecode or unused models."""
    parts = name.split("/")
    if parts[0] == ".." or "__pycache__" in parts:
        return False
    if name.startswith(_BOTOCORE_MODELS) and len(parts) > 3:
        return parts[2] in _BOTOCORE_KEPT
    return True


def write_zip(dists: Iterable[Distribution], path: Path) -> str:
    """Pack the installed files of ``dists``; return the zip's sha256. Files that are already
    compressed are stored as they are (inflating them again would only cost the job time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for dist in dists:
            for file in dist.files or []:
                name = file.as_posix()
                source = Path(str(dist.locate_file(file)))
                if _packed(name) and source.is_file():
                    stored = name.endswith((".gz", ".zip", ".whl"))
                    archive.write(source, name, zipfile.ZIP_STORED if stored else None)
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pip_install_command(pins: Iterable[str], no_deps: bool = False) -> str:
    pins = sorted(pins)
    if not pins:
        return ""
    return (
        "python -m pip install --quiet --disable-pip-version-check --no-warn-script-location "
        + ("--no-deps " if no_deps else "")
        + f"--target {PIP_TARGET} "
        + " ".join(pins)
    )


def fetch_command(sha256: str) -> str:
    script = fetch_script(
        URL_ENV,
        sha256,
        unreachable="Could not fetch the storage plugins this run ships to its jobs",
        hint="; use --prominence-storage-plugins install or image if the job cannot reach "
        "the default storage this way.",
        damaged="The storage plugin zip of this run is damaged (sha256 mismatch).",
        then=f"zipfile.ZipFile(io.BytesIO(data)).extractall({PIP_TARGET!r})",
    )
    return "python -c " + shlex.quote(script)


# --- the run ---------------------------------------------------------------------------


def prepare(workflow: Any, mode: str, logger: Any) -> Deployment:
    """Decide, once per run, how jobs get their storage plugins; upload the zip if shipping."""
    plugins = used_plugins(workflow)
    drop = unused_plugin_args(workflow, plugins)
    if mode == "image" or not plugins:
        return Deployment(drop_args=drop)
    if mode == "install":
        pins = (pin(distribution(n)) for n in plugins)
        return Deployment(prefix=pip_install_command(pins), drop_args=drop)
    provider = workflow.storage_registry.default_storage_provider
    url_maker = fetch_url_maker(provider)
    if url_maker is None:
        logger.warning(
            f"PROMINENCE: the default storage provider "
            f"({workflow.storage_settings.default_storage_provider}) gives no URL a job can "
            "fetch without its plugin: each job pip-installs the storage plugins from the "
            "package index (as --prominence-storage-plugins install)."
        )
        return prepare(workflow, "install", logger)
    dists = to_ship(plugins)
    travelling = {n: d for n, d in dists.items() if can_travel(d)}
    if not travelling:
        return prepare(workflow, "install", logger)
    staying = sorted(pin(d) for n, d in dists.items() if n not in travelling)
    if staying:
        logger.warning(
            "PROMINENCE: these packages are platform-specific or not installed from a wheel, so "
            f"each job pip-installs them from the package index: {', '.join(staying)}."
        )
    with tempfile.TemporaryDirectory(prefix="prominence-packages-") as tmp:
        local = Path(tmp) / "packages.zip"
        sha256 = write_zip(travelling.values(), local)
        size = local.stat().st_size
        prefix = workflow.storage_settings.default_storage_prefix or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        obj = provider.object(f"{prefix}snakemake-prominence-packages.{sha256}.zip")
        obj.set_local_path(local)
        try:
            _async_run(workflow, obj.managed_store())
        except Exception as e:
            raise WorkflowError(
                f"Could not put the storage plugins for the jobs into the default storage "
                f"({e}). Use --prominence-storage-plugins install or image to do without."
            ) from e
    logger.info(
        f"PROMINENCE: shipping {len(travelling)} package(s) to the jobs through the default "
        f"storage ({size / 1e6:.1f} MB): {', '.join(sorted(pin(d) for d in travelling.values()))}"
    )
    commands = [fetch_command(sha256), pip_install_command(staying, no_deps=True)]
    return Deployment(
        prefix=" && ".join(c for c in commands if c),
        drop_args=drop,
        url=url_maker(obj),
        remove=lambda: _async_run(workflow, obj.managed_remove()),
        shipped=sorted(pin(d) for d in travelling.values()),
    )


def fetch_url_maker(provider: Any) -> Any:
    """A function (storage object) -> (() -> URL a job can GET), or None for this provider."""
    module = type(provider).__module__.split(".")[0]
    if module == "snakemake_storage_plugin_fs":
        return lambda obj: lambda: Path(obj.query).resolve().as_uri()
    if module == "snakemake_storage_plugin_s3":
        return _presigner
    return None


def _presigner(obj: Any) -> Any:
    """Presigned GET URLs for the zip, renewed daily so that none a job gets has expired.

    Signed with Signature Version 4 (unless the user chose another for the provider): boto3
    would presign with the deprecated version 2 by default, which many services refuse.
    """
    import boto3
    from botocore.config import Config

    settings = obj.provider.settings
    client = boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        aws_session_token=settings.token,
        config=Config(signature_version=settings.signature_version or "s3v4"),
    )
    params = {"Bucket": obj.bucket, "Key": obj.s3obj().key}
    cached: dict[str, Any] = {}

    def url() -> str:
        if not cached or time.monotonic() - cached["at"] > 24 * 3600:
            cached["url"] = client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=PRESIGN_SECONDS
            )
            cached["at"] = time.monotonic()
        return cached["url"]

    return url


def _async_run(workflow: Any, coroutine: Any) -> Any:
    run = getattr(workflow, "async_run", None)
    if run is None:
        from snakemake.common import async_run as run
    return run(coroutine)
