"""A non-editable install migrates by itself: the wheel carries the top-level alembic/ folder."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_in_a_fresh_venv_can_init_a_registry(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = wheels.glob("problem_registry-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Dependencies come from the test environment (no network needed); the package itself only
    # from the wheel, unpacked the way pip installs it.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )

    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBLEM_REGISTRY")}
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import problem_registry.migrations as m; print(m.alembic_dir()); "
            "import sys; from problem_registry.cli import main; "
            "sys.argv = ['problem-registry', 'init']; main()",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    alembic_dir = Path(probe.stdout.strip().splitlines()[0])
    assert alembic_dir.is_relative_to(site), alembic_dir  # from the wheel, not the checkout
    assert (alembic_dir / "versions").is_dir()
    assert (project / "registry.db").is_file()
    assert "registry ready" in probe.stderr
