"""Shared fixtures: a small slice of the real embedded sample (41 episodes, 12 shows, HTML, empties, duplicates)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def sample_raw_dir(tmp_path) -> Path:
    """A folder laid out like data/raw/ (Kaggle file names) holding the fixture slice."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copyfile(FIXTURES / "mini_podcasts.csv", raw / "podcasts.csv")
    shutil.copyfile(FIXTURES / "mini_episodes.csv", raw / "episodes.csv")
    return raw


@pytest.fixture
def prepared_df(sample_raw_dir) -> pd.DataFrame:
    from podsearch.data import load_raw, prepare_episodes

    podcasts, episodes = load_raw(sample_raw_dir / "podcasts.csv", sample_raw_dir / "episodes.csv")
    frame, _ = prepare_episodes(podcasts, episodes, seed=0)
    return frame


# Tests that skip themselves on a machine without a system package (CI installs both: .ci/run).
SYSTEM_PACKAGES = {"chromium": "chromium", "sshd": "openssh-server"}


def pytest_terminal_summary(terminalreporter):
    """Say at the end of the run which tests a missing system package skipped, and how to run them."""
    skipped, packages = [], set()
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        needed = [package for word, package in SYSTEM_PACKAGES.items() if word in reason]
        if needed:
            skipped.append(f"{report.nodeid} ({reason.removeprefix('Skipped: ')})")
            packages.update(needed)
    if skipped:
        terminalreporter.write_sep("-", f"{len(skipped)} test(s) skipped for want of a system package")
        for line in skipped:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"to run them: apt-get install -y {' '.join(sorted(packages))} (as root; CI "
                                    "installs both), then rerun pytest")
