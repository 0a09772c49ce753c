"""DVC stage `export_<model>`: a query-time encoder as an ONNX folder -> models/onnx/<model>/ (model.onnx, graph-
optimized fp32; model.int8.onnx; tokenizer.json; onnx.json with the probe differences vs SentenceTransformer).

Params read: onnx.opset; base also train.base_model (its spec).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podsearch.encoders import FINETUNED_DIR, load_encoder  # noqa: E402
from podsearch.onnx_encoder import OnnxError, export_onnx  # noqa: E402
from podsearch.params import load_params, setup_logging  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=("base", "finetuned"))
    parser.add_argument("--finetuned", default=FINETUNED_DIR, help="folder of the fine-tuned model")
    parser.add_argument("--out", required=True, help="e.g. models/onnx/<model>")
    args = parser.parse_args(argv)
    setup_logging(f"export_{args.model}")

    opset = int(load_params("onnx")["opset"])
    spec = load_params("train")["base_model"] if args.model == "base" else args.finetuned
    try:
        export_onnx(load_encoder(args.model, spec), args.out, opset=opset, source=spec)
    except OnnxError as error:
        raise SystemExit(f"export_{args.model}: {spec}: {error}") from None


if __name__ == "__main__":
    main()
