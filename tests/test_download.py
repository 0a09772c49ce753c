import subprocess
import sys
from pathlib import Path

import pytest

from podsearch.download import DownloadError, copy_sample, kaggle_credentials_present

ROOT = Path(__file__).resolve().parents[1]


def test_copy_sample(sample_raw_dir, tmp_path):
    files = copy_sample(sample_raw_dir, tmp_path / "out")
    assert [f.name for f in files] == ["podcasts.csv", "episodes.csv"]
    assert files[1].read_bytes() == (sample_raw_dir / "episodes.csv").read_bytes()


def test_missing_sample_names_the_dvc_pull_fix(tmp_path):
    with pytest.raises(DownloadError, match="dvc pull data/sample/listennotes-dec2017.dvc"):
        copy_sample(tmp_path / "nowhere", tmp_path / "out")


def test_credentials_detection(tmp_path):
    assert not kaggle_credentials_present({"HOME": str(tmp_path)})
    assert kaggle_credentials_present({"HOME": str(tmp_path), "KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"})
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text("{}")
    assert kaggle_credentials_present({"HOME": str(tmp_path)})


def test_kaggle_without_credentials_fails_in_one_clear_line(tmp_path):
    """No credentials: one line naming the fix, non-zero exit, no traceback, and kaggle never imported (no network)."""
    (tmp_path / "params.yaml").write_text("data: {source: kaggle, kaggle_dataset: listennotes/x}\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = (
        "import runpy, sys; sys.argv=['download.py','--out','raw'];\n"
        "try:\n    runpy.run_path(%r, run_name='__main__')\n"
        "finally:\n    print('KAGGLE_IMPORTED' if 'kaggle' in sys.modules else 'KAGGLE_NOT_IMPORTED')\n"
    ) % str(ROOT / "stages/download.py")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in proc.stderr and "~/.kaggle" in proc.stderr
    assert "KAGGLE_NOT_IMPORTED" in proc.stdout
    assert not (tmp_path / "raw" / "episodes.csv").exists()
