"""fcn_edge.atomic and fcn_edge.errors: temporary names, stale leftovers, the umask, OS faults
as one line, the exit codes, and -v."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest

from fault_injection import env, fcn_edge
from fcn_edge.atomic import (
    atomic_path, remove_stale_temporaries, temporary_owner, temporary_path, write_bytes_atomic, write_json_atomic,
)
from fcn_edge.cli.main import main
from fcn_edge.errors import (
    DataError, EngineBuildError, MetaError, OutputError, UsageError, VideoError, VideoInputError, describe_os_error,
    exit_code_of,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = write_bytes_atomic(tmp_path / "a.bin", b"x")
        with atomic_path(tmp_path / "b.onnx") as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "b.onnx").stat().st_mode) == mode


def test_temporary_names_carry_the_pid_and_the_suffix(tmp_path):
    tmp = temporary_path(tmp_path / "model.int8.onnx")
    assert tmp.parent == tmp_path and tmp.name.startswith(f".model.int8.partial-{os.getpid()}-")
    assert tmp.suffix == ".onnx" and temporary_owner(tmp) == os.getpid()
    assert temporary_owner(tmp_path / "model.onnx") is None
    assert temporary_owner(".clip.partial-4242.mp4") == 4242  # the older video naming


def test_a_write_sweeps_dead_runs_temporaries_from_its_folder_once(tmp_path):
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        out = tmp_path / "out.mp4"
        stale = temporary_path(out, pid=dead)
        old_style = tmp_path / f".out.partial-{dead}.mp4"
        other_output = temporary_path(tmp_path / "run-20261128.mp4", pid=dead)  # a service's older file
        running = temporary_path(out, pid=live.pid)
        other_host = tmp_path / f".out.partial-{dead}-ffff0000.mp4"
        unrelated = tmp_path / ".out.mp4.swp"
        for path in (stale, old_style, other_output, running, other_host, unrelated):
            path.write_bytes(b"x")
        write_bytes_atomic(out, b"new")
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(p.name for p in (out, running, other_host, unrelated))
        late = temporary_path(out, pid=dead)  # appears after this process swept the folder
        late.write_bytes(b"x")
        write_bytes_atomic(out, b"newer")  # once per folder: thousands of images list it once
        assert late.exists()
        assert remove_stale_temporaries(out) == [late]  # the explicit call, for one output
    finally:
        live.kill()
        live.wait()


def test_an_os_error_is_one_line_naming_the_output_and_the_previous_file_is_kept(tmp_path):
    out = tmp_path / "report.json"
    out.write_text("previous")
    with pytest.raises(OutputError) as info:
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a write on a full disk raises
    assert str(info.value) == (f"{out}: cannot write: no space left on the device (the disk is full) [ENOSPC]; "
                               "the previous report.json was kept")
    assert isinstance(info.value, OSError) and exit_code_of(info.value) == 1
    assert out.read_text() == "previous" and sorted(tmp_path.iterdir()) == [out]


def test_a_folder_that_cannot_exist_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=r"cannot create its folder .*a part of the path is not a folder \[ENOTDIR\]"):
        write_json_atomic(blocker / "sub" / "x.json", {})


def test_other_errors_pass_through_and_leave_nothing(tmp_path):
    with pytest.raises(KeyError):
        with atomic_path(tmp_path / "x.onnx"):
            raise KeyError("not an OS fault")
    assert list(tmp_path.iterdir()) == []


def test_file_size_limit_in_a_child_process(tmp_path):
    """RLIMIT_FSIZE, the unprivileged full disk: write_bytes_atomic fails with one line."""
    out = tmp_path / "big.bin"
    out.write_bytes(b"previous")
    code = ("import resource, sys\nfrom fcn_edge.atomic import write_bytes_atomic\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))\n"
            "try:\n    write_bytes_atomic(sys.argv[1], bytes(100000))\nexcept OSError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(out)], env=env(), capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == (f"{out}: cannot write: file too large (the file-size limit, `ulimit -f`, or the "
                                   "file system's largest file) [EFBIG]; the previous big.bin was kept"), done.stderr
    assert out.read_bytes() == b"previous" and sorted(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left on the device (the disk is full) [ENOSPC]"),
    (errno.EROFS, "read-only file system [EROFS]"),
    (errno.EACCES, "permission denied [EACCES]"),
    (errno.EFBIG, "file too large (the file-size limit, `ulimit -f`, or the file system's largest file) [EFBIG]"),
    (errno.EDQUOT, "disk quota exceeded [EDQUOT]"),
    (errno.ENXIO, "no such device or address [ENXIO]"),  # not in the table: the C library's words
])
def test_os_error_words(code, words):
    assert describe_os_error(OSError(code, os.strerror(code))) == words
    named = OSError(code, os.strerror(code), "/data/other")
    assert describe_os_error(named, "/data/out.mp4") == words + " (/data/other)"
    assert describe_os_error(named, "/data/other") == words


@pytest.mark.parametrize("exc, code", [
    (UsageError("x"), 2), (MetaError("x"), 2), (DataError("x"), 2), (EngineBuildError("x"), 2),
    (VideoInputError("x"), 2), (FileNotFoundError(2, "x"), 2),
    (VideoError("x"), 1), (OutputError("x"), 1), (OSError(errno.EIO, "x"), 1), (MemoryError(), 1),
    (KeyboardInterrupt(), 130),
])
def test_exit_codes(exc, code):
    assert exit_code_of(exc) == code


def test_traceback_only_under_verbose(tmp_path, capsys):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert main(["info", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and "empty.onnx: this is an empty file" in err
    assert main(["-v", "info", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "fcn_edge.errors.MetaError" in err
    assert err.rstrip().splitlines()[-1].startswith("fcn-edge info: error: ")


def test_an_unreadable_input_is_one_line(tmp_path):
    """A model file the process may not read: bad input (exit 2), one line with the cause."""
    from fault_injection import unwritable_prefix

    prefix = unwritable_prefix()
    if prefix is None:
        pytest.skip("running as root without user namespaces: chmod 000 does not stop root")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07")
    model.chmod(0)
    try:
        result = fcn_edge(["info", model], cwd=tmp_path, prefix=prefix)
    finally:
        model.chmod(0o644)
    assert result.rc == 2, result.err
    assert result.one_line_error() == f"fcn-edge info: error: {model}: cannot read it: Permission denied"


def test_an_os_error_no_fcn_edge_error_wraps_is_one_line():
    from fcn_edge.cli.main import error_line

    exc = PermissionError(errno.EACCES, "Permission denied", "/data/model.onnx")
    assert error_line(exc) == "/data/model.onnx: permission denied [EACCES]" and exit_code_of(exc) == 1
    assert error_line(OSError(errno.EIO, "Input/output error")) == "input/output error (a failing disk or SD card?) [EIO]"
    assert error_line(MemoryError()) == "out of memory"


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "130  interrupted by SIGINT" in out
