"""Stage download: raw podcasts.csv and episodes.csv, from the embedded sample or Kaggle (params: data.*)."""
import argparse

from podsearch.download import DataConfig, DownloadError, copy_sample, download_kaggle
from podsearch.errors import exit_on_error
from podsearch.params import load_params, setup_logging


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="data/sample/listennotes-dec2017")
    parser.add_argument("--out", default="data/raw")
    args = parser.parse_args(argv)
    log = setup_logging("download")
    with exit_on_error("download"):
        config = DataConfig.from_params(load_params("data"))
        if config.source == "sample":
            files = copy_sample(args.sample, args.out)
        elif config.source == "kaggle":
            files = download_kaggle(config.kaggle_dataset, args.out)
        else:
            raise DownloadError(f"params.yaml: data.source is '{config.source}'; expected 'sample' or 'kaggle'")
    log.info("raw data (%s) written: %s", config.source, ", ".join(map(str, files)))


if __name__ == "__main__":
    main()
