"""The documentation site builds cleanly, and its navigation matches the pages in docs/."""

import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _nav_pages(nav) -> list[str]:
    """Every page file named in mkdocs.yml's nav, at any depth."""
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages += _nav_pages(value)
        elif isinstance(value, str) and not value.startswith(("http://", "https://")):
            pages.append(value)
    return pages


def test_mkdocs_build_strict(tmp_path):
    # --strict turns every warning into a failure: broken links between pages, missing anchors,
    # links to files outside docs/, pages missing from the nav.
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nav_lists_every_page():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    missing = [page for page in nav if not (DOCS / page).is_file()]
    assert not missing, f"pages in mkdocs.yml's nav that do not exist in docs/: {missing}"
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    unlisted = [page for page in on_disk if page not in nav]
    assert not unlisted, f"docs pages missing from mkdocs.yml's nav: {unlisted}"
    assert len(nav) == len(set(nav)), f"a page is listed twice in the nav: {nav}"
