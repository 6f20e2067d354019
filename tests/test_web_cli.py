"""`fcn-edge run` with the browser page: -o http://HOST:PORT/, --view beside another output,
--view-token, and --input-loop; refusals before anything opens."""

from __future__ import annotations

import json

import pytest

from fcn_edge.cli.main import main
from fcn_edge.errors import UsageError
from fcn_edge.video import VideoJob, VideoRunConfig
from fcn_edge.video.web import TOKEN_ENV, ViewConfig, parse_view_address, token_from_environment
from video_fixtures import read_all, write_clip
from web_clients import request

TOKEN = "s3cret-token_0123"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    pytest.importorskip("torch")  # the tiny model is made by the exporter
    from tiny_models import make_tiny_onnx

    folder = tmp_path_factory.mktemp("web-cli")
    return {"clip": write_clip(folder / "clip.avi", 20), "onnx": make_tiny_onnx(folder)}


@pytest.mark.parametrize("extra, message", [
    (["-o", "http://0.0.0.0:8080/"], "--view-token"),
    (["--view", "0.0.0.0:8080", "--headless"], "--view-token"),
    (["-o", "http://127.0.0.1:8080/", "--view", ":9090"], "one page per run"),
    (["-o", "https://127.0.0.1:8080/"], "plain http://"),
    (["--view", ":8080", "--view-token", "short", "--headless"], "8 to 256 characters"),
])
def test_page_refusals_come_before_anything_opens(extra, message, tmp_path, capsys):
    # the model does not exist: the page's address and token fail first, before a model loads
    missing_model = tmp_path / "none.onnx"
    clip = write_clip(tmp_path / "clip.avi", 2)
    assert main(["run", str(clip), "--model", str(missing_model), *extra]) == 2
    assert message in capsys.readouterr().err


def test_view_address_typos_are_usage_errors(capsys):
    with pytest.raises(SystemExit):
        main(["run", "clip.avi", "--view", "8080"])
    assert "[HOST]:PORT" in capsys.readouterr().err


def test_input_loop(assets, tmp_path, capsys):
    summary = tmp_path / "summary.json"
    assert main(["run", str(assets["clip"]), "--model", str(assets["onnx"]), "--headless", "--input-loop", "2",
                 "--json", str(summary)]) == 0
    data = json.loads(summary.read_text())
    assert data["frames_in"] == data["frames_out"] == 60
    assert main(["run", "rtsp://127.0.0.1:1/none", "--input-loop", "-1", "--headless"]) == 2
    assert "not the live source" in capsys.readouterr().err


def test_the_page_runs_beside_a_recording(assets, tmp_path):
    out = tmp_path / "rec.avi"
    config = VideoRunConfig(model=assets["onnx"], view=ViewConfig(parse_view_address("127.0.0.1:0"), TOKEN))
    with VideoJob([str(assets["clip"])], [str(out)], config) as job:
        url = job.view.url
        assert url.startswith("http://127.0.0.1:") and job.view.port != 0
        assert request(url, "/api/streams")[0] == 401
        status, _, body = request(url, "/api/streams", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        assert [c["name"] for c in json.loads(body)["streams"][0]["classes"]] == list(job.segmenter.meta.class_names)
        summary = job.run()
    assert summary.frames_out == 20 and len(read_all(out)) == 20
    with pytest.raises(OSError):  # closed with the job
        request(url, "/", timeout=2)


def test_the_page_as_the_output(assets, capsys):
    config = VideoRunConfig(model=assets["onnx"])
    with VideoJob([str(assets["clip"])], ["http://127.0.0.1:0/"], config) as job:
        assert job.sink_spec.kind == "page" and job.route.endswith("(page)")
        assert request(job.view.url, "/")[0] == 200
        assert job.run().frames_out == 20
    assert main(["run", str(assets["clip"]), "--model", str(assets["onnx"]), "-o", "http://127.0.0.1:0/",
                 "--view-token", TOKEN, "--max-frames", "5"]) == 0
    err = capsys.readouterr().err
    assert "page: http://127.0.0.1:" in err and "?token=TOKEN" in err and "out 5" in err


def test_the_token_from_the_environment(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert token_from_environment(None) is None
    clip = write_clip(tmp_path / "clip.avi", 2)
    with pytest.raises(UsageError, match="--view-token"):
        VideoJob([str(clip)], ["http://0.0.0.0:8080/"], VideoRunConfig())
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert token_from_environment(None) == TOKEN
    assert token_from_environment("given-token-1") == "given-token-1"
    # the CLI takes the token from the environment: the run gets past the page to the (missing) model
    assert main(["run", str(clip), "--model", str(tmp_path / "none.onnx"), "-o", "http://0.0.0.0:8080/"]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_several_streams_share_one_page(assets, tmp_path):
    """`run SRC1 SRC2 --view`: one page lists every stream (the grid), each with its own frames."""
    from fcn_edge.video.multistream import MultiStreamJob

    config = VideoRunConfig(model=assets["onnx"], view=ViewConfig(parse_view_address("127.0.0.1:0"), TOKEN))
    outputs = [str(tmp_path / "a.avi"), str(tmp_path / "b.avi")]
    with MultiStreamJob([str(assets["clip"]), str(assets["clip"])], outputs, config) as job:
        status, _, body = request(job.view.url, "/api/streams", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and [s["name"] for s in json.loads(body)["streams"]] == ["0", "1"]
        summary = job.run()
    assert [s.frames_out for s in summary.streams] == [20, 20]
    assert [len(read_all(p)) for p in outputs] == [20, 20]
    with pytest.raises(UsageError, match="--view"):
        MultiStreamJob([str(assets["clip"]), str(assets["clip"])], ["http://127.0.0.1:0/", "http://127.0.0.1:1/"],
                       config)


def test_a_token_without_a_page_is_refused(assets, capsys):
    assert main(["run", str(assets["clip"]), "--model", str(assets["onnx"]), "--headless",
                 "--view-token", TOKEN]) == 2
    assert "--view-token protects the browser page" in capsys.readouterr().err
