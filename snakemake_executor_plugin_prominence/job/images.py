"""What a user writes as an image -> what a PROMINENCE worker can pull, or why it cannot.

Pure, but for :func:`default_snakemake_image` (the installed Snakemake's own image). The
worker (the server's ``promlet.py``) gets an image in one of these forms:

- a registry name, which it pulls as ``singularity pull docker://<name>`` or
  ``udocker pull <name>``: so the ``docker://`` that Snakemake workflows write in
  ``container:`` must be stripped, or the pull asks for ``docker://docker://...`` and fails;
- ``shub:...`` (Singularity Hub), pulled as is by Singularity only;
- an http(s) URL, downloaded: a ``docker save`` archive (``.tar``/``.tgz``), which both
  runtimes can load, or else a Singularity image (``.sif``/``.simg``), which only Singularity
  can run;
- an absolute path, on storage attached to the job (udocker loads only a ``.tar`` there);
- the name of an image uploaded to PROMINENCE: the server turns any other name that contains
  ``.tar``, ``.tgz``, ``.sif`` or ``.simg`` (and neither ``http`` nor a leading ``/``) into a
  URL of the user's upload, which the worker then downloads like any URL.

Everything else (``library://``, ``oras://``, ``docker-archive://``, ...) never reaches a
worker that could pull it, so it is refused here, before submission, with what to write
instead.
"""

from __future__ import annotations

import posixpath
import re
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

from snakemake_executor_plugin_prominence.job.resources import JobSpecError

__all__ = ["ImageRefused", "default_snakemake_image", "for_job", "pullable"]

DOCKER_SCHEME = "docker://"
#: Any ``scheme://`` prefix (RFC 3986 scheme characters).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: The ends of names the server takes for uploaded images (it tests them as substrings).
UPLOAD_MARKERS = (".tar", ".tgz", ".sif", ".simg")
SINGULARITY_ENDINGS = (".sif", ".simg")

_REGISTRY_NAME = "a registry name (e.g. ghcr.io/me/tool:1.0)"
_SCHEME_ADVICE = {
    "library": "no PROMINENCE worker pulls from a Sylabs library: push the image to a Docker "
    f"registry and write {_REGISTRY_NAME}, or give the https URL of its .sif",
    "oras": f"no PROMINENCE worker pulls ORAS artifacts: write {_REGISTRY_NAME}, or the https "
    "URL of the .sif",
    "docker-archive": "the archive is on your machine, which no PROMINENCE worker sees: upload "
    "it (`prominence upload`) and write its uploaded name (e.g. tool.tar), or give an https URL "
    "of the .tar",
    "oci-archive": "the archive is on your machine, which no PROMINENCE worker sees: `docker "
    "save` the image into a .tar, upload it (`prominence upload`) and write its uploaded name "
    f"(e.g. tool.tar), or push the image to a registry and write {_REGISTRY_NAME}",
    "docker-daemon": "the image is in your local Docker daemon, which no PROMINENCE worker "
    f"sees: push it to a registry and write {_REGISTRY_NAME}",
}
_ACCEPTED = (
    f"{_REGISTRY_NAME} with or without docker://, shub://..., an http(s) URL of a .sif or of a "
    "`docker save` .tar/.tgz, an absolute path on storage attached to the job, or the name of "
    "an uploaded image"
)
_SINGULARITY_ADVICE = (
    "use the singularity runtime (prominence_runtime='singularity' or --prominence-runtime "
    "singularity)"
)


class ImageRefused(ValueError):
    """The image cannot run on a PROMINENCE worker; the message says why and what to write."""


def pullable(image: Any, runtime: str) -> str:
    """The image as the worker must receive it to pull it under ``runtime``.

    Raises :class:`ImageRefused` (the problem, without the value) when no worker could.
    """
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise ImageRefused("is invalid: expected an image name without spaces")
    name = image
    if name[: len(DOCKER_SCHEME)].lower() == DOCKER_SCHEME:
        name = name[len(DOCKER_SCHEME) :]
        if not name:
            raise ImageRefused("names no image after docker://")
        if name.startswith("/") or _SCHEME.match(name) or name.startswith("shub:"):
            raise ImageRefused(f"has no registry name after docker://: write {_REGISTRY_NAME}")
        if _is_upload_name(name):
            raise ImageRefused(
                "cannot be pulled from a registry: PROMINENCE takes a name containing "
                + ", ".join(UPLOAD_MARKERS)
                + " for an image uploaded to it (`prominence upload`), whatever comes before"
            )
        return name
    scheme = _SCHEME.match(name)
    # The worker tells these apart by their exact, lower-case beginnings.
    if name.startswith("shub:"):
        _check_runtime_runs_shub(runtime)
    elif scheme and scheme.group(1) in ("http", "https"):
        _check_runtime_runs_file(_url_file_name(name), runtime, "URL")
    elif scheme:
        kind = scheme.group(1)
        advice = _SCHEME_ADVICE.get(kind.lower())
        if kind.lower() in ("http", "https"):
            advice = f"the worker downloads only URLs written {kind.lower()}:// (lower case)"
        elif advice is None:
            advice = f"no PROMINENCE worker pulls {kind}:// images; write {_ACCEPTED}"
        raise ImageRefused(f"cannot be pulled: {advice}")
    elif name.startswith("/"):
        _check_runtime_runs_path(name, runtime)
    elif _is_upload_name(name):
        _check_runtime_runs_file(name, runtime, "uploaded image")
    return name


def for_job(rule: str, resource: str, image: Any, runtime: str) -> str:
    """:func:`pullable` for a job: a refusal names the rule, the resource and the value."""
    try:
        return pullable(image, runtime)
    except ImageRefused as e:
        raise JobSpecError(rule, resource, image, str(e)) from None


def _is_upload_name(name: str) -> bool:
    """What the server resolves to the user's uploads (its test, not a file-name test)."""
    return "http" not in name and any(marker in name for marker in UPLOAD_MARKERS)


def _url_file_name(url: str) -> str:
    """The file name the worker judges a URL by: the last part of its path."""
    return posixpath.basename(urlsplit(url).path)


def _check_runtime_runs_shub(runtime: str) -> None:
    if runtime == "udocker":
        raise ImageRefused(
            "is a Singularity Hub image, which the udocker runtime cannot pull: "
            f"{_SINGULARITY_ADVICE}, or write {_REGISTRY_NAME}"
        )


def _check_runtime_runs_file(file_name: str, runtime: str, what: str) -> None:
    """udocker loads ``docker save`` archives only; Singularity also runs its own images."""
    if runtime == "udocker" and file_name.lower().endswith(SINGULARITY_ENDINGS):
        raise ImageRefused(
            f"is a Singularity image ({what}), which the udocker runtime cannot run: "
            f"{_SINGULARITY_ADVICE}, or give a `docker save` .tar of the image"
        )


def _check_runtime_runs_path(path: str, runtime: str) -> None:
    if runtime == "udocker" and not path.endswith(".tar"):
        raise ImageRefused(
            "is a path on attached storage, from which the udocker runtime loads only a "
            f"`docker save` .tar: give the .tar, or {_SINGULARITY_ADVICE}"
        )


def default_snakemake_image() -> str:
    """The image of Snakemake's own ``--container-image`` default for the Snakemake installed
    here: the last resort for jobs (and a detached run's head) that name no image."""
    return f"snakemake/snakemake:v{version('snakemake')}"
