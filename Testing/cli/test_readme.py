"""The README's promises: CI runs the README's test command; its examples are valid."""

from __future__ import annotations

import json
import re

from SpinePlannerLib.planning.params_file import validate_stage_params


def test_ci_runs_the_readme_test_command(repo_root):
    readme = (repo_root / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    test_command = next(b.strip() for b in blocks if "pytest" in b and "pip install" in b)
    ci = (repo_root / ".ci" / "run").read_text()
    assert test_command in ci


def test_readme_params_example_is_accepted(repo_root):
    readme = (repo_root / "README.md").read_text()
    example = re.search(r"`(\{\"synthetic_ct_check\".*?\})`", readme).group(1)
    validate_stage_params(json.loads(example))
