"""The operator's files behind an upload: listing them and hashing them (pure).

Files are read in chunks, never whole: a model of several gigabytes is hashed
with a few megabytes of memory. A path inside the project directory is kept
relative to it (that is how Pulumi runs the program, from the project
directory), so that the same checkout at another place gives the same inputs.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[2]  # the project directory (Pulumi.yaml)
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class LocalFile:
    relative: str  # where it lands under the upload's target ("/"-separated)
    path: str      # what the copy reads: relative to the project directory, or absolute
    size: int

    @property
    def absolute(self) -> Path:
        return resolve(self.path)


def resolve(text: str) -> Path:
    """`from` as the stack file gives it: absolute, `~/...`, or relative to the project."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else ROOT / path


def shown_path(path: Path) -> str:
    """Relative to the project when inside it, else absolute."""
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


class ListingError(Exception):
    """A file of a source that cannot be uploaded (named in the message)."""


def list_files(source: Path) -> list[LocalFile]:
    """The regular files of `source` (a file, or a directory walked in sorted
    order), each with the name it gets under the target. Symbolic links to files
    are followed (their content is uploaded); links to directories are not."""
    base = shown_path(source)
    if source.is_file():
        return [LocalFile(source.name, base, source.stat().st_size)]
    found = []
    for directory, subdirs, names in os.walk(source):
        subdirs.sort()
        for name in sorted(names):
            full = Path(directory) / name
            relative = full.relative_to(source).as_posix()
            if not full.is_file():
                raise ListingError(f"{relative} is not a regular file (a broken link, a "
                                   "socket or a device)")
            found.append(LocalFile(relative, shown_path(full), full.stat().st_size))
    return found


def is_zip(path: Path) -> bool:
    """A zip archive (read from its end, where the central directory is; not the
    whole file)."""
    return zipfile.is_zipfile(path)


def sha256_file(path: Path, chunk: int = CHUNK_BYTES) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def manifest(hashed: Iterable[tuple[str, str]]) -> str:
    """`sha256sum` lines (`<hash>  <name>`), sorted by name: what the node checks."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(hashed))


def upload_digest(hashed: Iterable[tuple[str, str]], target: str) -> str:
    """One hash for an upload: every file's name and content, and where it goes."""
    return hashlib.sha256((target + "\n" + manifest(hashed)).encode()).hexdigest()
