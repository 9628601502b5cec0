#!/usr/bin/env python3
"""Download a corpus archive, resumably, check it and optionally extract it.

    download.py URL DEST [--sha256 HEX | --md5 HEX] [--extract DIR] [--retries 3]

The data goes to ``DEST.part`` and is renamed to ``DEST`` only once complete (the server's size,
when it gives one, is reached) and, if a checksum is given, verified; so ``DEST`` is never a partial
or corrupt file. An interrupted download is resumed from the ``.part`` with an HTTP
``Range: bytes=<size>-`` request, both on a re-run and on the automatic retries after a connection
error or timeout. A server that ignores ``Range`` (answers 200) makes the download start again from
zero; a 416 answer means the ``.part`` already holds the whole file.

An archive that fails its checksum is moved to ``DEST.bad``, so that a re-run downloads it again. An
existing ``DEST`` is kept without any request when it passes the checksum (or none is given).

``--extract DIR`` unpacks a tar (plain, gzip, bzip2, xz) or zip archive into ``DIR``, refusing any
member that would land outside ``DIR`` (``espnet_summarymixing.loading.archive``, the checks the
package applies to model archives), then writes ``DIR/.<archive name>.extracted``; with that
marker a re-run skips extraction, without it (an interrupted extraction) it is done again.

``file://`` URLs work too (local mirrors). Exit status: 0 on success, 1 on any error (2: bad usage).
"""

import argparse
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from espnet_summarymixing.loading.archive import MAX_RATIO, Limits, safe_extract

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60.0  # of one connect or one read, not of the whole download
BACKOFF_SECONDS = 1.0  # first wait before a retry; doubled each time
PROGRESS_SECONDS = 5.0
PROGRESS_PERCENT = 5.0
MB = 1e6
PROG = "download.py"


class DownloadError(Exception):
    """A failure worth reporting in one line; ``retryable`` ones are tried again."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def log(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(path: Path, algorithm: str, expected: str) -> str:
    """The actual digest; raises a DownloadError naming both if they differ."""
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DownloadError(f"{algorithm} mismatch for {path}: expected {expected.lower()}, got {actual}")
    return actual


class Progress:
    """Prints the state of a download every PROGRESS_SECONDS or PROGRESS_PERCENT, whichever comes first."""

    def __init__(self, name: str, total, start: int = 0):
        self.name, self.total = name, total
        self.last_time = time.monotonic()
        self.last_percent = 100.0 * start / total if total else None  # 0, or where a resume begins

    def update(self, done: int) -> None:
        now = time.monotonic()
        percent = 100.0 * done / self.total if self.total else None
        due = now - self.last_time >= PROGRESS_SECONDS
        if percent is not None and percent - self.last_percent >= PROGRESS_PERCENT:
            due = True
        if due:
            self.last_time, self.last_percent = now, percent
            if percent is None:
                log(f"{self.name}: {done / MB:.1f} MB")
            else:
                log(f"{self.name}: {percent:3.0f}% ({done / MB:.1f} of {self.total / MB:.1f} MB)")


def _content_range_total(value):
    """The total size in a ``Content-Range: bytes a-b/total`` (or ``bytes */total``) header, else None."""
    total = (value or "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _fetch_once(url: str, part: Path, timeout: float) -> None:
    """One request: appends to (resumes) or rewrites ``part``; raises DownloadError unless it is complete."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": PROG})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            total = _content_range_total(e.headers.get("Content-Range"))
            e.close()
            if total is None or total == offset:
                return  # nothing left to fetch: the .part is complete
            part.unlink()  # larger than the file: start again
            raise DownloadError(f"{part} is larger than {url} ({offset} > {total} bytes)", retryable=True)
        raise DownloadError(f"HTTP {e.code} {e.reason} for {url}", retryable=e.code >= 500 or e.code in (408, 429))
    with response:
        status = response.getcode()  # None for file:// URLs, which ignore Range
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            start = response.headers.get("Content-Range", "").partition(" ")[2].partition("-")[0]
            if start != str(offset):
                part.unlink()
                raise DownloadError(f"{url} resumed at the wrong offset ({start}, asked {offset})", retryable=True)
            total = _content_range_total(response.headers.get("Content-Range"))
            if total is None and length is not None:
                total = offset + length
            mode = "ab"
        else:
            if offset:
                log(f"{url} does not support resuming (HTTP {status}): starting again from zero")
            offset, total, mode = 0, length, "wb"
        if offset:
            log(f"resuming {url} at {offset / MB:.1f} MB")
        progress = Progress(part.name[: -len(".part")], total, offset)
        done = offset
        with open(part, mode) as out:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                progress.update(done)
    if total is not None and done != total:
        raise DownloadError(f"connection to {url} ended at {done} of {total} bytes", retryable=True)


# Errors of the local file system (or of a file:// URL) that trying again will not cure.
LOCAL_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def _is_retryable(error: Exception) -> bool:
    """Connection errors, timeouts and truncated or garbled answers are; HTTP 4xx and local errors are not."""
    if isinstance(error, DownloadError):
        return error.retryable
    if isinstance(error, urllib.error.URLError):  # no answer at all (HTTPError is handled in _fetch_once)
        error = error.reason
    if isinstance(error, LOCAL_ERRORS):
        return False
    return isinstance(error, (OSError, http.client.HTTPException))  # refused, reset, timed out, bad answer


def fetch(url: str, dest: Path, retries: int = 3, timeout: float = None) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming and retrying; raises DownloadError."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, TIMEOUT_SECONDS if timeout is None else timeout)
            break
        except Exception as error:  # noqa: BLE001 - sorted into retryable or not just below
            if isinstance(error, DownloadError) and not error.retryable:
                raise
            if not _is_retryable(error):
                raise DownloadError(f"{url}: {error}") from error
            if attempt == retries:
                raise DownloadError(f"giving up on {url} after {retries + 1} attempts: {error}") from error
            wait = BACKOFF_SECONDS * 2**attempt
            log(f"{error}; retrying in {wait:g} s ({attempt + 1} of {retries})")
            time.sleep(wait)
    os.replace(part, dest)
    seconds = time.monotonic() - started
    size = dest.stat().st_size
    log(f"downloaded {dest}: {size / MB:.1f} MB in {seconds:.1f} s ({size / MB / max(seconds, 1e-3):.1f} MB/s)")


# A corpus is bigger than any model (LibriSpeech's train-other-500 unpacks to 30 GB): its total is
# bounded by the disk, the size ratio still guards against compression bombs.
CORPUS_LIMITS = Limits(max_bytes=1 << 42, max_ratio=MAX_RATIO)


def extract(archive: Path, outdir: Path) -> bool:
    """Unpack a tar or zip archive into ``outdir`` unless its marker says it was; True if it extracted."""
    archive, outdir = Path(archive), Path(outdir)
    marker = outdir / f".{archive.name}.extracted"
    if marker.exists():
        log(f"{archive.name} already extracted in {outdir} ({marker.name} exists)")
        return False
    outdir.mkdir(parents=True, exist_ok=True)
    outdir = outdir.resolve()
    log(f"extracting {archive} into {outdir}")
    try:  # the package's checks, shared with the model archives: nothing lands outside outdir
        safe_extract(archive, outdir, bound=CORPUS_LIMITS)
    except ValueError as err:
        raise DownloadError(str(err)) from None
    marker.touch()
    return True


def _hex(length: int):
    def parse(value: str) -> str:
        value = value.strip().lower()
        if len(value) != length or any(c not in "0123456789abcdef" for c in value):
            raise argparse.ArgumentTypeError(f"expected {length} hexadecimal digits, got {value!r}")
        return value

    return parse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog=PROG)
    parser.add_argument("url", help="http(s):// or file:// URL")
    parser.add_argument("dest", type=Path, help="file to write (its parent directories are created)")
    digest = parser.add_mutually_exclusive_group()
    digest.add_argument("--sha256", type=_hex(64), help="expected SHA-256 of the file")
    digest.add_argument("--md5", type=_hex(32), help="expected MD5 of the file")
    parser.add_argument("--extract", type=Path, metavar="DIR", help="unpack the archive (tar or zip) into DIR")
    parser.add_argument("--retries", type=int, default=3, help="retries after a connection error (default 3)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    dest = args.dest
    bad = dest.with_name(dest.name + ".bad")
    algorithm, expected = ("sha256", args.sha256) if args.sha256 else ("md5", args.md5)
    try:
        download = True
        if dest.exists():
            if expected is None:
                log(f"{dest} is already there: not downloading it")
                download = False
            else:
                try:
                    check_digest(dest, algorithm, expected)
                    log(f"{dest} is already there ({algorithm} checked): not downloading it")
                    download = False
                except DownloadError as e:
                    log(f"{e}; moving it to {bad.name} and downloading it again")
                    os.replace(dest, bad)
        if download:
            fetch(args.url, dest, retries=args.retries)
            if expected is not None:
                try:
                    check_digest(dest, algorithm, expected)
                except DownloadError as e:
                    os.replace(dest, bad)
                    raise DownloadError(f"{e}; moved it to {bad} (a re-run downloads it again)") from None
                log(f"{algorithm} of {dest} checked")
        if args.extract is not None:
            extract(dest, args.extract)
    except DownloadError as e:
        log(f"error: {e}")
        return 1
    except OSError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log(f"interrupted; a re-run resumes from {dest.name}.part")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
