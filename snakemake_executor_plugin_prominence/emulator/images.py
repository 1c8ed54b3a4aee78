"""How the worker gets a task's image, and whether it can: the emulator's model of the pull.

The worker (``promlet.py``, ``download_singularity`` and ``download_udocker``) never looks at an
image's scheme the way Singularity users expect. It takes:

- a name starting with ``http``: a download (a ``docker save`` tarball or a Singularity image);
- an absolute path: from the job's default storage when the job has one (it becomes a URL
  under the storage's CDMI endpoint), else from the storage mounted in the job, which the
  emulator never has: the path is then pulled from the registry (Singularity) or linked from a
  mount that does not exist (udocker), and fails;
- ``shub:...`` (Singularity only): pulled as it is;
- anything else: a registry reference, pulled as ``singularity pull docker://<image>`` or
  ``udocker pull <image>``. So ``docker://x`` is pulled as ``docker://docker://x``, and
  ``library://``, ``oras://`` or ``docker-archive://`` references are registry names that do
  not parse: all of these fail.

Names of uploaded objects (``.tar``, ``.tgz``, ``.sif`` or ``.simg`` in a name without ``http``
that does not start with ``/``) never get here: the server answers 400 at submission
(``submission.backend_error``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# The Docker image reference grammar (distribution/reference): an optional registry host (with
# a dot or a port, or localhost), lower-case path components separated by ".", "_", "__" or
# dashes, then an optional tag and an optional digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}"
_REFERENCE = re.compile(
    rf"^(?:(?P<host>{_HOST})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$",
    re.ASCII,
)
#: longest repository name (host and path) a registry accepts
_MAX_NAME = 255

RUNTIMES = ("singularity", "udocker")


def is_registry_reference(image: str) -> bool:
    """True for what a registry pull accepts: ``[host[:port]/]path[:tag][@digest]``.

    A first component is a host only if it has a dot or a port or is ``localhost`` (else it is
    a path component, and must be lower case like the others).
    """
    match = _REFERENCE.match(image)
    if match is None:
        return False
    host = match.group("host")
    plain_component = host is not None and not ("." in host or ":" in host or host == "localhost")
    if plain_component and not re.fullmatch(_COMPONENT, host, re.ASCII):
        return False  # e.g. "Me/image": a path component, which must be lower case
    name = f"{host}/{match.group('path')}" if host else match.group("path")
    return len(name) <= _MAX_NAME


def is_url(image: str) -> bool:
    """What the worker downloads instead of pulling: a name that starts with ``http``."""
    return image.startswith("http")


def _downloadable(url: str) -> bool:
    """An http(s) URL with a host and a file name: what the worker's download can fetch."""
    parts = urlsplit(url)
    name = posixpath.basename(unquote(parts.path))
    return parts.scheme in ("http", "https") and bool(parts.netloc) and bool(name)


def cache_key(image: str) -> str:
    """The worker's ``image_name``: a URL counts by its file name, anything else as given.

    A later task of the job with the same key and runtime reuses the image (``cached``).
    """
    if is_url(image):
        return posixpath.basename(unquote(urlsplit(image).path))
    return image


@dataclass(frozen=True)
class Pull:
    """What the worker's pull of one image does."""

    ok: bool
    #: what the worker fetches: ``docker://<image>``, ``udocker pull <image>``, a URL
    source: str
    #: why it fails (for the job's stderr), empty when it works
    reason: str = ""
    #: the worker computes the image file's sha256 (``imageSha256``) for this kind of image
    checksum: bool = True


def _storage_url(job: dict, path: str) -> str | None:
    """The URL an absolute image path becomes when the job's storage is its default one."""
    storage = job.get("storage")
    if isinstance(storage, dict) and "default" in storage:
        onedata = storage.get("onedata") or {}
        return f"https://{onedata.get('provider', '')}/cdmi{path}"
    return None


def pull(image: str, runtime: str, job: dict) -> Pull:
    """How the worker gets ``image`` for a task of ``runtime`` in ``job``, and whether it can.

    Downloads (URLs, and absolute paths on a job's default storage) are not made: a
    well-formed URL counts as fetched.
    """
    if image.startswith("/"):
        url = _storage_url(job, image)
        if url is not None:
            return Pull(True, url)
        if runtime == "udocker":
            reason = (
                f"no storage is mounted in the job, so {image} is not there to load"
                if image.endswith(".tar")
                else f"`udocker pull {image}` is not a registry name"
            )
            return Pull(False, f"udocker pull {image}", reason)
        return Pull(
            False,
            f"docker://{image}",
            f"no storage is mounted in the job, so {image} is pulled from a registry as "
            f"docker://{image}, which is not an image name",
        )
    if is_url(image):
        if _downloadable(image):
            return Pull(True, image)
        return Pull(False, image, f"{image} starts with 'http' but is not a URL to download")
    if runtime == "singularity" and image.startswith("shub:"):
        return Pull(True, image)
    source = f"udocker pull {image}" if runtime == "udocker" else f"docker://{image}"
    if is_registry_reference(image):
        # udocker pulls from a registry record no file checksum; Singularity hashes its image
        return Pull(True, source, checksum=runtime == "singularity")
    if "://" in image or image.startswith("shub:"):
        scheme = image.split(":", 1)[0]
        why = (
            f"the worker fetches every such name from a registry ({source}), and "
            f"'{scheme}:' is not part of an image name"
        )
        if runtime == "singularity":
            why += " (write the registry name without docker://)"
        return Pull(False, source, why)
    return Pull(False, source, f"{image!r} is not a valid image name (a registry reference)")


def matches(image: str, patterns: tuple[str, ...]) -> bool:
    """True if ``image``, as the task gives it, matches one of the fnmatch ``patterns``."""
    return any(fnmatch.fnmatchcase(image, pattern) for pattern in patterns)


def sha256_of(source: str) -> str:
    """The ``imageSha256`` reported for a pulled image. The emulator has no image file, so it
    hashes what was fetched: the same image always gets the same checksum."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()
