"""The documentation: every command and option of the CLI on its page, the results generated from the JSON files
(not typed by hand), a short README whose links resolve. `make docs` builds the site itself with --strict."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from digitsum_edge.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = {"train": "commands/train.md", "export": "commands/export.md", "live": "commands/live.md",
         "predict": "commands/live.md", "synth": "commands/live.md", "bench": "commands/bench.md",
         "serve": "commands/serve.md", "web": "commands/web.md"}


def options(command: click.Command) -> list[str]:
    """Every long option a command's --help shows: --name, and --no-name for a --name/--no-name flag."""
    names = []
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            names += [n for n in (*param.opts, *param.secondary_opts) if n.startswith("--") and n != "--help"]
    return names


def test_every_command_has_a_page() -> None:
    assert set(main.commands) == set(PAGES), "a new command needs its page in docs/commands/ and in PAGES"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_option_is_on_its_page(name: str) -> None:
    page = (DOCS / PAGES[name]).read_text()
    assert f"digitsum-edge {name}" in page
    missing = [opt for opt in options(main.commands[name]) if not re.search(re.escape(opt) + r"(?![\w-])", page)]
    assert not missing, f"docs/{PAGES[name]} does not mention {', '.join(missing)}"


def test_option_lister_sees_flags() -> None:
    """The check above must see both sides of a --x/--no-x flag, or a page could leave half of it out."""
    live = options(main.commands["live"])
    assert "--window" in live and "--no-window" in live and "--rand" in live


def test_results_are_generated_from_the_json_files(tmp_path: Path) -> None:
    """docs/results.md and the README's table are what scripts/results_page.py makes of docs/*.json now: a
    re-run benchmark without a re-run of the script fails here."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts/results_page.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    page = (DOCS / "results.md").read_text()
    bench = __import__("json").loads((DOCS / "bench.json").read_text())
    onnx = next(r for r in bench["rows"] if r["label"].startswith("onnxruntime") and r["batch"] == 1)
    assert f"{onnx['median_ms']:.3g}" in page  # a figure of the file, as the file has it


def test_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links and all((ROOT / link).exists() for link in links if not link.startswith("http")), links
