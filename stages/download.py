"""Stage download: raw podcasts.csv and episodes.csv, from the embedded sample or Kaggle (params: data.*)."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podsearch.download import DownloadError, copy_sample, download_kaggle  # noqa: E402
from podsearch.params import load_params, setup_logging  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="data/sample/listennotes-dec2017")
    parser.add_argument("--out", default="data/raw")
    args = parser.parse_args(argv)
    log = setup_logging("download")
    params = load_params("data")
    try:
        if params["source"] == "sample":
            files = copy_sample(args.sample, args.out)
        elif params["source"] == "kaggle":
            files = download_kaggle(params["kaggle_dataset"], args.out)
        else:
            raise DownloadError(f"params.yaml: data.source is '{params['source']}'; expected 'sample' or 'kaggle'")
    except DownloadError as exc:
        sys.exit(f"download: {exc}")
    log.info("raw data (%s) written: %s", params["source"], ", ".join(map(str, files)))


if __name__ == "__main__":
    main()
