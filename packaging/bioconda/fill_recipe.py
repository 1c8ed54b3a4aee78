"""Set the version and the sdist's sha256 in the Bioconda recipe (meta.yaml beside this file).

    python packaging/bioconda/fill_recipe.py --from-pypi          # the release PyPI serves
    python packaging/bioconda/fill_recipe.py --sdist dist/X.tar.gz  # a local sdist

Bioconda builds from the sdist on PyPI, so the hash must be that file's: ``--from-pypi`` reads
it from PyPI's JSON API for the version in pyproject.toml (after the release is published);
``--sdist`` hashes a file you have (the same bytes only if it is the uploaded one).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tarfile
import tomllib
from email.parser import HeaderParser
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
RECIPE = HERE / "meta.yaml"
PYPROJECT = HERE.parents[1] / "pyproject.toml"
SET_LINE = re.compile(r'^(\{% set (version|sha256) = ")[^"]*(" %\})$', re.MULTILINE)


def sdist_facts(path: Path) -> tuple[str, str]:
    """(version, sha256) of an sdist, the version from its own PKG-INFO."""
    with tarfile.open(path) as archive:
        member = next(m for m in archive.getmembers() if m.name.count("/") == 1
                      and m.name.endswith("/PKG-INFO"))  # fmt: skip
        handle = archive.extractfile(member)
        assert handle is not None
        headers = HeaderParser().parsestr(handle.read().decode("utf-8"))
    return headers["Version"], hashlib.sha256(path.read_bytes()).hexdigest()


def pypi_facts(name: str, version: str) -> tuple[str, str]:
    """(version, sha256) of the sdist that PyPI serves for ``name`` ``version``."""
    answer = requests.get(f"https://pypi.org/pypi/{name}/{version}/json", timeout=30)
    if answer.status_code == 404:
        raise SystemExit(f"PyPI has no {name} {version} yet: publish the release first.")
    answer.raise_for_status()
    sdists = [u for u in answer.json()["urls"] if u["packagetype"] == "sdist"]
    if not sdists:
        raise SystemExit(f"PyPI has no sdist of {name} {version}.")
    return version, sdists[0]["digests"]["sha256"]


def fill(recipe_text: str, version: str, sha256: str) -> str:
    """The recipe with its ``version`` and ``sha256`` set lines replaced."""
    values = {"version": version, "sha256": sha256}
    filled, count = SET_LINE.subn(lambda m: m.group(1) + values[m.group(2)] + m.group(3),
                                  recipe_text)  # fmt: skip
    if count != 2:
        raise ValueError("the recipe must have one `{% set version = ... %}` and one sha256 line")
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-pypi", action="store_true", help="the sdist PyPI serves")
    source.add_argument("--sdist", type=Path, help="a local sdist (.tar.gz)")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.sdist:
        version, sha256 = sdist_facts(args.sdist)
    else:
        project = tomllib.loads(PYPROJECT.read_text())["project"]
        version, sha256 = pypi_facts(project["name"], project["version"])
    args.recipe.write_text(fill(args.recipe.read_text(), version, sha256))
    print(f"{args.recipe}: version {version}, sha256 {sha256}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
