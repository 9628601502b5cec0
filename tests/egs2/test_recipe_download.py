"""``egs2/TEMPLATE/asr1/pyscripts/download.py`` against a local HTTP server that supports Range requests."""

import hashlib
import http.server
import io
import re
import tarfile
import threading
import zipfile

import pytest

from recipe_tools import load_pyscript

dl = load_pyscript("download")

DATA = bytes(range(256)) * 1200  # 307,200 bytes
SHA256 = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; records ``(path, Range header)`` of each GET in ``server.requests``.

    ``server.drop_after = N`` sends only N bytes of the next answer then closes the connection (once);
    ``server.ignore_range = True`` answers 200 with the whole file whatever the Range header says.
    """

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and not server.ignore_range else None
        if start is not None and start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start is None:
            self.send_response(200)
            body = data
        else:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.drop_after is not None:
            body, server.drop_after = body[: server.drop_after], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files = {"/data.bin": DATA}
    httpd.requests = []
    httpd.drop_after = None
    httpd.ignore_range = False
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(dl, "BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(dl, "TIMEOUT_SECONDS", 10.0)


@pytest.mark.parametrize("option", [["--sha256", SHA256], ["--md5", MD5.upper()]])
def test_full_download_with_checksum(server, tmp_path, capsys, option):
    dest = tmp_path / "a" / "b" / "data.bin"
    assert dl.main([server.url + "/data.bin", str(dest), *option]) == 0
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "a" / "b" / "data.bin.part").exists()
    assert server.requests == [("/data.bin", None)]
    assert "0.3 MB in" in capsys.readouterr().err  # the final line: size and time


def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    server.drop_after = 100_000
    dest = tmp_path / "data.bin"
    assert dl.main([server.url + "/data.bin", str(dest), "--sha256", SHA256]) == 0
    assert server.requests == [("/data.bin", None), ("/data.bin", "bytes=100000-")]
    assert dest.read_bytes() == DATA


def test_rerun_resumes_from_part(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA[:12_345])  # left by an interrupted run
    assert dl.main([server.url + "/data.bin", str(dest)]) == 0
    assert server.requests == [("/data.bin", "bytes=12345-")]
    assert dest.read_bytes() == DATA


def test_complete_part_answered_416_is_kept(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA)
    assert dl.main([server.url + "/data.bin", str(dest), "--md5", MD5]) == 0
    assert server.requests == [("/data.bin", f"bytes={len(DATA)}-")]
    assert dest.read_bytes() == DATA


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"x" * 5000)  # wrong bytes: must not be kept
    assert dl.main([server.url + "/data.bin", str(dest), "--sha256", SHA256]) == 0
    assert dest.read_bytes() == DATA


def test_checksum_mismatch_moves_file_aside(server, tmp_path, capsys):
    dest = tmp_path / "data.bin"
    wrong = "0" * 64
    assert dl.main([server.url + "/data.bin", str(dest), "--sha256", wrong]) == 1
    assert not dest.exists()
    assert (tmp_path / "data.bin.bad").read_bytes() == DATA
    err = capsys.readouterr().err
    assert str(dest) in err and wrong in err and SHA256 in err


def test_existing_dest_with_right_checksum_is_not_downloaded(server, tmp_path, capsys):
    dest = tmp_path / "data.bin"
    dest.write_bytes(DATA)
    assert dl.main([server.url + "/data.bin", str(dest), "--sha256", SHA256]) == 0
    assert server.requests == []
    assert "already there" in capsys.readouterr().err


def test_existing_dest_with_wrong_checksum_is_downloaded_again(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"corrupt")
    assert dl.main([server.url + "/data.bin", str(dest), "--sha256", SHA256]) == 0
    assert len(server.requests) == 1
    assert dest.read_bytes() == DATA


def test_404_is_a_clear_error(server, tmp_path, capsys):
    dest = tmp_path / "missing.bin"
    assert dl.main([server.url + "/missing.bin", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and server.url + "/missing.bin" in err
    assert len(server.requests) == 1  # not retried
    assert not dest.exists()


def test_connection_refused_is_retried_then_reported(server, tmp_path, capsys):
    url = server.url + "/data.bin"
    server.shutdown()
    server.server_close()
    assert dl.main([url, str(tmp_path / "data.bin"), "--retries", "2"]) == 1
    err = capsys.readouterr().err
    assert "after 3 attempts" in err and url in err


def test_file_url(tmp_path):
    source = tmp_path / "mirror" / "data.bin"
    source.parent.mkdir()
    source.write_bytes(DATA)
    dest = tmp_path / "data.bin"
    assert dl.main([source.as_uri(), str(dest), "--sha256", SHA256]) == 0
    assert dest.read_bytes() == DATA


def make_tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


GOOD = {"an4/etc/a.txt": b"hello\n", "an4/wav/b.sph": b"\x00" * 1000}
EVIL = {"an4/ok.txt": b"ok", "../evil": b"gotcha"}


@pytest.mark.parametrize("name, make", [("an4.tar.gz", make_tar_gz), ("an4.zip", make_zip)])
def test_extract_with_marker(server, tmp_path, name, make):
    server.files["/" + name] = make(GOOD)
    dest, out = tmp_path / "dl" / name, tmp_path / "out"
    argv = [server.url + "/" + name, str(dest), "--extract", str(out)]
    assert dl.main(argv) == 0
    for member, data in GOOD.items():
        assert (out / member).read_bytes() == data
    marker = out / f".{name}.extracted"
    assert marker.exists()

    (out / "an4/etc/a.txt").unlink()
    assert dl.main(argv) == 0  # marker present: neither downloaded nor extracted again
    assert not (out / "an4/etc/a.txt").exists()
    assert len(server.requests) == 1

    marker.unlink()  # as after an interrupted extraction
    assert dl.main(argv) == 0
    assert (out / "an4/etc/a.txt").read_bytes() == GOOD["an4/etc/a.txt"]


@pytest.mark.parametrize("name, make", [("evil.tar.gz", make_tar_gz), ("evil.zip", make_zip)])
def test_extract_refuses_escaping_member(server, tmp_path, capsys, name, make):
    server.files["/" + name] = make(EVIL)
    out = tmp_path / "sub" / "out"
    assert dl.main([server.url + "/" + name, str(tmp_path / name), "--extract", str(out)]) == 1
    assert "../evil" in capsys.readouterr().err
    assert not (tmp_path / "sub" / "evil").exists()
    assert not (out / "an4/ok.txt").exists()  # checked before anything is written
    assert not (out / f".{name}.extracted").exists()


def test_extract_refuses_absolute_member(tmp_path):
    archive = tmp_path / "abs.tar.gz"
    archive.write_bytes(make_tar_gz({"/tmp/evil": b"x"}))
    with pytest.raises(dl.DownloadError, match="absolute"):
        dl.extract(archive, tmp_path / "out")
