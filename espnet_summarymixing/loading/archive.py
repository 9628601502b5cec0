"""Unpacking archives that may come from strangers: nothing is written outside the target folder.

Every member is checked before anything is written: an absolute path, a ``..`` component, a path
through a symbolic link (one already in the folder or one the archive makes), or a link whose
target leaves the folder is refused, and the whole archive with it. Used for model archives
(:mod:`.models`) and by the recipes' ``pyscripts/download.py`` for corpora. Standard library only.
"""

import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

__all__ = ["UnsafeArchiveError", "check_member", "safe_extract"]


class UnsafeArchiveError(ValueError):
    """An archive member that would be written outside the target folder."""


def check_member(name: str, outdir: Path) -> None:
    """Raise UnsafeArchiveError if the member ``name`` is absolute or would land outside ``outdir``
    (a resolved absolute folder)."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and posix.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"refusing archive member {name!r}: absolute path or '..'")
    target = (outdir / posix).resolve()  # also catches a path through a link already in outdir
    if target != outdir and outdir not in target.parents:
        raise UnsafeArchiveError(f"refusing archive member {name!r}: it would be written outside {outdir}")


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


def safe_extract(archive: Path, outdir: Path) -> None:
    """Unpack a zip or tar (plain, gzip, bzip2, xz) archive into ``outdir`` after checking every member.

    Raises UnsafeArchiveError for a member that would escape, ValueError for a file that is not a
    readable archive (corrupt, truncated or of another kind).
    """
    archive, outdir = Path(archive), Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    outdir = outdir.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():  # all of them before writing anything
                    check_member(name, outdir)
                zf.extractall(outdir)
            return
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                _check_tar(members, outdir)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.8.17 / 3.11.4: the stdlib's own checks too
                    tf.extractall(outdir, members, filter="data")
                else:
                    tf.extractall(outdir, members)
            return
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        raise ValueError(f"{archive}: not a readable archive ({type(err).__name__}: {err})") from None
    raise ValueError(f"{archive}: not a readable zip or tar archive (corrupt, truncated or another kind of file)")
