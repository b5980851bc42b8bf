"""``tools/check_licences.py`` on fake installed metadata (``*.dist-info`` folders in
``tmp_path``): it follows ``Requires-Dist`` without extras, fails naming a GPL or AGPL
package, passes LGPL and a permissive ``OR`` choice, and fails on no licence at all; and
on this venv it passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "check_licences.py"


def install(site: Path, name: str, *lines: str) -> None:
    """A distribution ``name`` 1.0 whose METADATA has ``lines`` (License-Expression: ...,
    Requires-Dist: ..., Classifier: ...)."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    header = ["Metadata-Version: 2.4", f"Name: {name}", "Version: 1.0"]
    (info / "METADATA").write_text("\n".join([*header, *lines]) + "\n")


def run(site: Path, root: str = "app") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", root, "--path", str(site)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("licence", "kind"),
    [
        ("License-Expression: GPL-3.0-only", "GPL"),
        ("License-Expression: AGPL-3.0-or-later", "AGPL"),
        ("Classifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)", "GPL"),
        ("License: GNU Affero General Public License", "AGPL"),
        ("License-Expression: MIT AND GPL-2.0-or-later", "GPL"),
    ],
)
def test_a_gpl_dependency_two_levels_down_fails_naming_it(
    tmp_path: Path, licence: str, kind: str
) -> None:
    install(tmp_path, "app", "License-Expression: Apache-2.0", "Requires-Dist: middle>=1")
    install(tmp_path, "middle", "License-Expression: MIT", "Requires-Dist: copyleft")
    install(tmp_path, "copyleft", licence)

    result = run(tmp_path)

    assert result.returncode == 1, result.stdout
    assert "FAIL: copyleft is licensed" in result.stdout
    assert "(GPL/AGPL)" in result.stdout and kind in result.stdout
    table = result.stdout.split("\n\n")[0]
    assert {line.split()[0] for line in table.splitlines()[1:]} == {"app", "middle", "copyleft"}


def test_lgpl_mpl_and_a_permissive_choice_pass_and_extras_are_not_followed(
    tmp_path: Path,
) -> None:
    install(
        tmp_path,
        "app",
        "License-Expression: Apache-2.0",
        "Requires-Dist: lesser",
        "Requires-Dist: choice",
        "Requires-Dist: mozilla",
        "Requires-Dist: gpl-tool; extra == 'notebooks'",  # an optional extra: not runtime
        "Requires-Dist: windows-only; sys_platform == 'nonexistent'",
        "Provides-Extra: notebooks",
    )
    install(
        tmp_path,
        "lesser",
        "Classifier: License :: OSI Approved :: GNU Lesser General "
        "Public License v3 or later (LGPLv3+)",
    )
    install(tmp_path, "choice", "License-Expression: MIT OR GPL-3.0-only")
    install(tmp_path, "mozilla", "License-Expression: MPL-2.0")
    install(tmp_path, "gpl-tool", "License-Expression: GPL-3.0-only")

    result = run(tmp_path)

    assert result.returncode == 0, result.stdout
    assert "gpl-tool" not in result.stdout and "windows-only" not in result.stdout
    assert "no GPL or AGPL licence among them" in result.stdout


def test_a_dependency_that_states_no_licence_or_is_missing_fails(tmp_path: Path) -> None:
    install(
        tmp_path, "app", "License-Expression: MIT", "Requires-Dist: silent", "Requires-Dist: gone"
    )
    install(tmp_path, "silent", "License: UNKNOWN")

    result = run(tmp_path)

    assert result.returncode == 1
    assert "FAIL: silent states no licence" in result.stdout
    assert "FAIL: gone is required but not installed" in result.stdout


def test_the_installed_hippograph_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "neo4j-viz" not in result.stdout  # GPL-3.0-only: the former renderer of /graph
    assert "hippograph " in result.stdout
