"""The systemd unit of ``spikestream service --print``: it must work as printed on a fresh box."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.service import systemd_unit

CAMERA = Path(__file__).parent.parent / "configs" / "camera.toml"


def test_the_unit_allocates_its_user_and_the_folders_it_writes():
    """No account to create: systemd allocates the user; it may write only its state and cache folders,
    so numba's cache goes to the latter; webcams need the group video."""
    lines = systemd_unit(CAMERA).splitlines()
    for line in (
        "DynamicUser=yes",
        "User=spikestream",
        "SupplementaryGroups=video",
        "StateDirectory=spikestream/camera",
        "CacheDirectory=spikestream/camera",
        "Environment=NUMBA_CACHE_DIR=%C/spikestream/camera",
    ):
        assert line in lines, line
    assert any(line.startswith("ExecStart=") and "--state ${STATE_DIRECTORY}" in line for line in lines)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_printed_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "spikestream-camera-encoder.service"
    unit.write_text(systemd_unit(CAMERA, node="encoder"))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_a_config_other_users_cannot_read_is_flagged_in_the_unit(tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    config = private / "camera.toml"
    shutil.copy(CAMERA, config)
    private.chmod(0o700)
    unit = systemd_unit(config)
    assert f"# WARNING: {config} is not readable by other users" in unit
