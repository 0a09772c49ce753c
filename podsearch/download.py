"""Getting the raw Listen Notes CSVs: the embedded sample (offline default) or the full Kaggle dataset."""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from podsearch.artifacts import writing
from podsearch.config import from_section
from podsearch.errors import PodsearchError

log = logging.getLogger(__name__)

RAW_FILES = ("podcasts.csv", "episodes.csv")
KAGGLE_FIX = (
    "Kaggle credentials not found: set KAGGLE_USERNAME and KAGGLE_KEY in the environment, or put kaggle.json "
    "(from kaggle.com > Settings > API > Create New Token) in ~/.kaggle/ (or $KAGGLE_CONFIG_DIR), "
    "or set data.source: sample in params.yaml to use the embedded sample"
)


@dataclass(frozen=True)
class DataConfig:
    """params.yaml `data`."""

    source: str = "sample"          # sample | kaggle
    kaggle_dataset: str = "listennotes/all-podcast-episodes-published-in-december-2017"

    @classmethod
    def from_params(cls, params) -> "DataConfig":
        return from_section(cls, params, "data")


class DownloadError(PodsearchError, RuntimeError):
    pass


def copy_sample(sample_dir: str | Path, out_dir: str | Path) -> list[Path]:
    sample_dir, out_dir = Path(sample_dir), Path(out_dir)
    missing = [name for name in RAW_FILES if not (sample_dir / name).exists()]
    if missing:
        raise DownloadError(
            f"{sample_dir}: {', '.join(missing)} missing; materialise the embedded sample with "
            f"`dvc pull data/sample/listennotes-dec2017.dvc`"
        )
    with writing(out_dir, folder=True) as tmp:  # the stage's output folder, whole or not at all
        for name in RAW_FILES:
            shutil.copyfile(sample_dir / name, tmp / name)
    return [out_dir / name for name in RAW_FILES]


def kaggle_credentials_present(environ: dict | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return True
    config_dir = Path(env.get("KAGGLE_CONFIG_DIR") or Path(env.get("HOME", "~")).expanduser() / ".kaggle")
    return (config_dir / "kaggle.json").is_file()


def download_kaggle(dataset: str, out_dir: str | Path) -> list[Path]:
    """Fetch and unzip the dataset's two CSVs with the Kaggle API.

    `kaggle` authenticates at import time and calls `exit(1)` when it cannot, so it is imported only here, after
    checking that credentials exist, and its exits are turned into one clear error.
    """
    if not kaggle_credentials_present():
        raise DownloadError(KAGGLE_FIX)
    out_dir = Path(out_dir)
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
        with writing(out_dir, folder=True) as tmp:  # an interrupted download leaves no half a file at out_dir
            for name in RAW_FILES:
                log.info("downloading %s from kaggle dataset %s", name, dataset)
                api.dataset_download_file(dataset, name, path=str(tmp), quiet=False)
                _unzip_if_needed(tmp, name)
    except SystemExit as exc:  # raised by kaggle on authentication failure
        raise DownloadError(f"kaggle refused the credentials (exit {exc.code}); {KAGGLE_FIX}") from None
    except PodsearchError:  # the write's own one line (a full disk)
        raise
    except Exception as exc:  # network, permission (accept the dataset's rules on kaggle.com), missing file
        raise DownloadError(f"kaggle download of {dataset} failed: {exc}") from None
    return [out_dir / name for name in RAW_FILES]


def _unzip_if_needed(out_dir: Path, name: str) -> None:
    import zipfile

    archive = out_dir / f"{name}.zip"
    if archive.exists():
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(out_dir)
        archive.unlink()
