"""System facts, read from a fake Jetson tree in a tmp dir (and the real machine)."""

from pathlib import Path

from fcn_edge.bench.sysinfo import (
    JETSON_CLOCKS_HINT, clock_state, collect_system_info, jetson_info, parse_l4t_release,
    parse_nvidia_smi, parse_nvpmodel_query,
)

ORIN_RELEASE = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n"
NVPMODEL_CONF = """\
< POWER_MODEL ID=0 NAME=MAXN >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=15W >
CPU_ONLINE CORE_0 1
< PM_CONFIG DEFAULT=2 >
"""


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_jetson(root: Path, pinned: bool) -> Path:
    write(root, "etc/nv_tegra_release", ORIN_RELEASE)
    write(root, "proc/device-tree/model", "NVIDIA Jetson AGX Orin Developer Kit\x00")
    write(root, "proc/cpuinfo", "processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\n")
    for cpu in range(4):
        base = f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        write(root, f"{base}/scaling_max_freq", "2201600\n")
        write(root, f"{base}/scaling_min_freq", "2201600\n" if pinned else "115200\n")
        write(root, f"{base}/scaling_governor", "schedutil\n")
    gpu = "sys/class/devfreq/17000000.ga10b"
    write(root, f"{gpu}/max_freq", "1300500000\n")
    write(root, f"{gpu}/min_freq", "1300500000\n" if pinned else "306000000\n")
    write(root, "sys/class/devfreq/15340000.vic/min_freq", "1\n")  # not the GPU: ignored
    write(root, "sys/class/devfreq/15340000.vic/max_freq", "9\n")
    write(root, "var/lib/nvpmodel/status", "pmode:0001 fmode:quiet\n")
    write(root, "etc/nvpmodel.conf", NVPMODEL_CONF)
    return root


def no_commands(argv):
    return None


def test_parsers():
    assert parse_l4t_release(ORIN_RELEASE) == "36.4.3"
    assert parse_l4t_release("# R35 (release), REVISION: 4.1, GCID: 1") == "35.4.1"
    assert parse_l4t_release("garbage") is None
    assert parse_nvpmodel_query("NV Power Mode: MAXN\n0\n") == "MAXN (0)"
    assert parse_nvpmodel_query("NVPM WARN: something\nNV Power Mode: 30W\n2\n") == "30W (2)"
    assert parse_nvpmodel_query("nothing here") is None
    assert parse_nvidia_smi("NVIDIA GeForce RTX 4090, 550.54.14\n") == ("NVIDIA GeForce RTX 4090", "550.54.14")
    assert parse_nvidia_smi("") == (None, None)


def test_jetson_with_clocks_off_gets_the_hint(tmp_path):
    root = fake_jetson(tmp_path, pinned=False)
    info = jetson_info(root, run=no_commands)
    assert info.l4t == "36.4.3"
    assert info.model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert info.power_mode == "15W (1)"  # from /var/lib/nvpmodel/status + nvpmodel.conf
    assert info.clocks_pinned is False
    assert info.hint == JETSON_CLOCKS_HINT and "sudo jetson_clocks" in info.hint
    assert any(note.startswith("cpu0: min 115 MHz") for note in info.clock_notes)
    assert any("GPU 17000000.ga10b: min 306 MHz < max 1300 MHz" == n for n in info.clock_notes)
    assert not any("vic" in n for n in info.clock_notes)


def test_jetson_with_clocks_pinned_and_nvpmodel_query(tmp_path):
    root = fake_jetson(tmp_path, pinned=True)
    calls = []

    def fake_nvpmodel(argv):
        calls.append(list(argv))
        return "NV Power Mode: MAXN\n0\n" if argv[0] == "nvpmodel" else None

    info = jetson_info(root, run=fake_nvpmodel)
    assert ["nvpmodel", "-q"] in calls
    assert info.power_mode == "MAXN (0)"  # the command wins over the status file
    assert info.clocks_pinned is True and info.hint is None and info.clock_notes == ()


def test_unreadable_clocks_are_unknown_not_off(tmp_path):
    write(tmp_path, "etc/nv_tegra_release", ORIN_RELEASE)
    info = jetson_info(tmp_path, run=no_commands)
    assert info.clocks_pinned is None and info.hint is None and info.power_mode is None
    assert clock_state(tmp_path) == (None, ())


def test_collect_on_a_fake_jetson(tmp_path):
    root = fake_jetson(tmp_path, pinned=False)
    info = collect_system_info(root, run=no_commands)
    assert info.cpu == "ARMv8 Processor rev 1 (v8l)"
    assert info.cpu_governor == "schedutil"
    assert info.gpu == "integrated GPU of NVIDIA Jetson AGX Orin Developer Kit"
    assert info.notes == (JETSON_CLOCKS_HINT,)
    text = "\n".join(info.lines())
    assert "L4T 36.4.3" in text and "power mode 15W (1)" in text and "jetson_clocks off" in text
    assert info.as_dict()["jetson"]["clocks_pinned"] is False


def test_collect_on_this_machine():
    info = collect_system_info()
    assert info.cpu and info.cpu_count >= 1
    assert info.python.count(".") == 2
    assert info.onnxruntime  # the dev environment has ONNX Runtime
    assert "CPUExecutionProvider" in info.ort_providers
    if not Path("/etc/nv_tegra_release").exists():
        assert info.jetson is None


def test_nvidia_smi_is_used_when_present(tmp_path):
    def fake_smi(argv):
        return "NVIDIA RTX A2000, 535.104.05\n" if argv[0] == "nvidia-smi" else None

    info = collect_system_info(tmp_path, run=fake_smi)
    assert (info.gpu, info.gpu_driver) == ("NVIDIA RTX A2000", "535.104.05")
    assert info.jetson is None
