"""Unpacking archives that may come from strangers: nothing is written outside the target folder.

Every member is checked before anything is written: an absolute path, a ``..`` component, a path
through a symbolic link (one already in the folder or one the archive makes), or a link whose
target leaves the folder is refused, and the whole archive with it. So is an archive that would
unpack to more than :func:`limits` allow (its total size, and its size against the archive's: a
"zip bomb"), counted from the members' headers before anything is written (zip and tar readers
stop at the sizes the headers give). Used for model archives (:mod:`.models`, which also leaves
out members a model does not use) and by the recipes' ``pyscripts/download.py`` for corpora.
Standard library only.
"""

import os
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable, List, NamedTuple, Optional

__all__ = ["UnsafeArchiveError", "Limits", "limits", "check_member", "inside", "safe_extract", "members_of",
           "read_member"]

GIB = 1 << 30
# The biggest public ESPnet models (OWSM v3.1, 1B parameters) unpack to about 4 GB; float weights
# compress by 10 % at most, so an archive unpacking to 100 times its size holds something else.
MAX_GB = 32.0
MAX_RATIO = 100.0
RATIO_FLOOR = 64 << 20  # below 64 MiB unpacked, the ratio is not checked (small configs compress well)
ENV_MAX_GB, ENV_MAX_RATIO = "ESPNET_SUMMARYMIXING_MAX_UNPACK_GB", "ESPNET_SUMMARYMIXING_MAX_UNPACK_RATIO"


class UnsafeArchiveError(ValueError):
    """An archive member that would be written outside the target folder, or an archive that would
    unpack to more than its limits."""


class Limits(NamedTuple):
    """The most an archive may unpack to: ``max_bytes`` in all, ``max_ratio`` times its own size."""

    max_bytes: int
    max_ratio: float


def limits() -> Limits:
    """The unpacking limits: 32 GB and 100 times the archive's size unless the environment raises
    them (``ESPNET_SUMMARYMIXING_MAX_UNPACK_GB``, ``ESPNET_SUMMARYMIXING_MAX_UNPACK_RATIO``).

    >>> limits()
    Limits(max_bytes=34359738368, max_ratio=100.0)
    """
    values = []
    for name, default in ((ENV_MAX_GB, MAX_GB), (ENV_MAX_RATIO, MAX_RATIO)):
        text = os.environ.get(name, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            value = float("nan")
        if not (value > 0 and value < float("inf")):
            raise ValueError(f"{name}={text!r}: expected a positive number")
        values.append(value)
    return Limits(int(values[0] * GIB), values[1])


def _check_size(archive: Path, sizes: List[int], bound: Limits) -> None:
    total, packed = sum(sizes), max(archive.stat().st_size, 1)
    if total > bound.max_bytes:
        raise UnsafeArchiveError(
            f"{archive}: would unpack to {total / GIB:.1f} GB, more than the limit of {bound.max_bytes / GIB:g} GB "
            f"(set {ENV_MAX_GB} to allow more)")
    if total > RATIO_FLOOR and total > bound.max_ratio * packed:
        raise UnsafeArchiveError(
            f"{archive}: would unpack to {total / packed:.0f} times its size ({total / GIB:.2f} GB from "
            f"{packed / (1 << 20):.1f} MB), more than the limit of {bound.max_ratio:g} times: a compression bomb? "
            f"(set {ENV_MAX_RATIO} to allow more)")


def check_member(name: str, outdir: Path) -> None:
    """Raise UnsafeArchiveError if the member ``name`` is absolute or would land outside ``outdir``
    (a resolved absolute folder)."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and posix.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"refusing archive member {name!r}: absolute path or '..'")
    target = (outdir / posix).resolve()  # also catches a path through a link already in outdir
    if target != outdir and outdir not in target.parents:
        raise UnsafeArchiveError(f"refusing archive member {name!r}: it would be written outside {outdir}")


def inside(root: Path, relative, what: str, place: str, must_exist: bool = True) -> Path:
    """``root / relative`` for a path a model file names (``place``: "model folder", "export folder"):
    ValueError starting with ``what`` unless it is a non-empty relative path that stays inside ``root``
    (the archive members' check); FileNotFoundError unless it is a file there (``must_exist``)."""
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"{what}: expected a path inside the {place}, got {relative!r}")
    try:
        check_member(relative, Path(root).resolve())
    except UnsafeArchiveError:
        raise ValueError(f"{what}: {relative!r} points outside the {place} {root}") from None
    target = Path(root) / relative
    if must_exist and not target.is_file():
        raise FileNotFoundError(f"{what}: {relative!r} is not a file of the {place} {root}")
    return target


def _check_tar(members, outdir: Path) -> None:
    links = set()
    for member in members:
        check_member(member.name, outdir)
        parts = PurePosixPath(member.name).parts
        through = [str(PurePosixPath(*parts[:i])) for i in range(1, len(parts))]
        if any(p in links for p in through):
            raise UnsafeArchiveError(f"refusing archive member {member.name!r}: its path goes through a link")
        if member.issym() or member.islnk():  # a link's target must stay inside too
            target = str(PurePosixPath(member.name).parent / member.linkname) if member.issym() else member.linkname
            try:
                check_member(target, outdir)
            except UnsafeArchiveError:
                raise UnsafeArchiveError(
                    f"refusing archive member {member.name!r}: a link to {member.linkname!r}, outside the folder"
                ) from None
            links.add(str(PurePosixPath(member.name)))
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"refusing archive member {member.name!r}: a device, fifo or other special file")


_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError)


def _unreadable(archive: Path, err: Exception) -> ValueError:
    return ValueError(f"{archive}: not a readable archive ({type(err).__name__}: {err})")


def members_of(archive: Path) -> dict:
    """{member name: unpacked size} of a zip or tar archive's files (ValueError if it is neither)."""
    archive = Path(archive)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                return {m.name: m.size for m in tf.getmembers() if m.isfile()}
    except _READ_ERRORS as err:
        raise _unreadable(archive, err) from None
    raise ValueError(f"{archive}: not a readable zip or tar archive (corrupt, truncated or another kind of file)")


def read_member(archive: Path, name: str, max_bytes: int = 16 << 20, members: Optional[dict] = None) -> Optional[bytes]:
    """The content of one file of the archive (None if it has none of that name); UnsafeArchiveError
    if it is larger than ``max_bytes``. ``members``: the archive's :func:`members_of`, when already read."""
    archive = Path(archive)
    size = (members if members is not None else members_of(archive)).get(name)
    if size is None:
        return None
    if size > max_bytes:
        raise UnsafeArchiveError(f"{archive}: {name} is {size} bytes, more than the {max_bytes} expected")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return zf.read(name)
        with tarfile.open(archive) as tf:
            return tf.extractfile(name).read(max_bytes + 1)[:max_bytes]
    except _READ_ERRORS as err:
        raise _unreadable(archive, err) from None


def safe_extract(archive: Path, outdir: Path, keep: Optional[Callable[[str], bool]] = None,
                 bound: Optional[Limits] = None) -> List[str]:
    """Unpack a zip or tar (plain, gzip, bzip2, xz) archive into ``outdir`` after checking every member
    and the total size (``bound``, default :func:`limits`); ``keep(name)`` False leaves a file member
    out. Returns the names of the members left out.

    Raises UnsafeArchiveError for a member that would escape or an archive over the limits, ValueError
    for a file that is not a readable archive (corrupt, truncated or of another kind).
    """
    archive, outdir = Path(archive), Path(outdir)
    bound = bound or limits()
    outdir.mkdir(parents=True, exist_ok=True)
    outdir = outdir.resolve()
    keep = keep or (lambda name: True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:  # all of them before writing anything
                    check_member(info.filename, outdir)
                chosen = [i for i in infos if i.is_dir() or keep(i.filename)]
                _check_size(archive, [i.file_size for i in chosen], bound)
                zf.extractall(outdir, [i.filename for i in chosen])
                return [i.filename for i in infos if i not in chosen]
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                _check_tar(members, outdir)
                chosen = [m for m in members if not m.isfile() or keep(m.name)]
                _check_size(archive, [m.size for m in chosen if m.isfile()], bound)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.8.17 / 3.11.4: the stdlib's own checks too
                    tf.extractall(outdir, chosen, filter="data")
                else:
                    tf.extractall(outdir, chosen)
                return [m.name for m in members if m not in chosen]
    except _READ_ERRORS as err:
        raise _unreadable(archive, err) from None
    raise ValueError(f"{archive}: not a readable zip or tar archive (corrupt, truncated or another kind of file)")
