"""The README's two set-up commands are what CI and users run: keep .ci/run in step with them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_that_install_first():
    commands = readme_commands()  # the set-up commands are the README's only `sh` blocks
    assert len(commands) == 2
    assert all(c.startswith("scripts/install.sh") for c in commands)


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = readme_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
