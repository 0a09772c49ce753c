"""DVC stage `unpack_use`: USE's weights stored uncompressed -> models/use/ (weights.npz, use.json), so a `search`
that fuses USE starts sooner: it need not inflate them (docs/onnx.md#use-unpacked). The arrays are the installed
package's, unchanged.

Params read: none.
"""
import argparse

from podsearch.encoders import unpack_use
from podsearch.errors import exit_on_error
from podsearch.params import setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="models/use")
    args = parser.parse_args(argv)
    log = setup_logging("unpack_use")
    with exit_on_error("unpack_use"):
        path = unpack_use(args.out)
    log.info("USE weights, uncompressed -> %s", path)


if __name__ == "__main__":
    main()
