"""The package installs as documented: one dependency list, a working console script."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import attn_course.reference
from attn_course.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    requirements = importlib.metadata.requires("attn-course")
    runtime = {_name(r) for r in requirements if "extra ==" not in r}
    env_lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_deps = {
        _name(line.strip()[2:])
        for line in env_lines[env_lines.index("  - pip:") + 1 :]
        if line.strip().startswith("- ") and not line.strip().startswith("- -e")
    }
    assert pip_deps == runtime
    assert "      - -e ." in env_lines, "environment.yml must install the course package itself"


def test_every_spec_name_imports_from_reference():
    spec_names = [
        "attention_scores", "softmax", "context_vector", "SimpleAttention",
        "scaled_dot_product_attention", "causal_mask", "padding_mask",
        "split_heads", "merge_heads", "MultiHeadAttention",
    ]  # fmt: skip
    missing = [n for n in spec_names if not hasattr(attn_course.reference, n)]
    assert missing == []
    assert set(attn_course.reference.__all__) <= set(dir(attn_course.reference))


def test_reference_modules_import_only_torch():
    for path in (ROOT / "attn_course" / "reference").glob("*.py"):
        imports = re.findall(r"^(?:from|import) (\w+)", path.read_text(), flags=re.M)
        assert set(imports) <= {"torch", "attn_course", "math", "__future__"}, path.name


def test_console_script_and_python_m_show_help():
    script = Path(sys.executable).with_name("attn-course")
    for argv in ([str(script), "--help"], [sys.executable, "-m", "attn_course", "--help"]):
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        assert "lab" in done.stdout


def test_cli_rejects_unknown_commands_with_exit_status_2():
    done = subprocess.run(
        [sys.executable, "-m", "attn_course", "no-such-command"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert build_parser().parse_args(["lab", "--port", "9999", "--no-browser"]).port == 9999
