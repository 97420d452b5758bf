"""A non-editable install works by itself: the wheel carries the top-level alembic/, patterns/."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Installed:
    python: Path
    site: Path  # where the wheel was unpacked

    def run(self, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        # Nor PYTHONPATH: pointing at a checkout, it would import that instead of the wheel.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PROBLEM_REGISTRY") and k != "PYTHONPATH"
        }
        return subprocess.run(
            [str(self.python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The package built as a wheel and installed, without the checkout, into a fresh venv."""
    tmp_path = tmp_path_factory.mktemp("wheel")
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
    return Installed(python, site)


@pytest.mark.slow
def test_wheel_install_in_a_fresh_venv_can_init_a_registry(
    installed: Installed, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    probe = installed.run(
        "import problem_registry.store.migrations as m; print(m.alembic_dir()); "
        "import sys; from problem_registry.cli import main; "
        "sys.argv = ['problem-registry', 'init']; main()",
        cwd=project,
    )
    assert probe.returncode == 0, probe.stderr
    alembic_dir = Path(probe.stdout.strip().splitlines()[0])
    assert alembic_dir.is_relative_to(installed.site), alembic_dir  # from the wheel
    assert (alembic_dir / "versions").is_dir()
    assert (project / "registry.db").is_file()
    assert "registry ready" in probe.stderr


@pytest.mark.slow  # trains the demo's four scikit-learn models and writes the report
def test_wheel_install_runs_the_demo_from_the_patterns_it_ships(
    installed: Installed, tmp_path: Path
) -> None:
    probe = installed.run(
        "from problem_registry.demo.folder import demo_patterns_dir; print(demo_patterns_dir()); "
        "import sys; from problem_registry.cli import main; "
        "sys.argv = ['problem-registry', 'demo', 'demo']; main()",
        cwd=tmp_path,
    )

    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.strip().splitlines()
    patterns = Path(lines[0])
    assert patterns.is_relative_to(installed.site), patterns  # from the wheel, not the checkout
    shipped = sorted(p.relative_to(patterns) for p in patterns.rglob("*.json"))
    assert shipped == sorted(
        p.relative_to(ROOT / "patterns") for p in (ROOT / "patterns").rglob("*.json")
    )
    assert lines[-1].startswith("report: ")
    assert Path(lines[-1].removeprefix("report: ")).is_file()
    assert "imported 6 problems" in probe.stderr
