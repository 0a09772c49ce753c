"""DVC stage `export_<model>`: a query-time encoder as an ONNX folder -> models/onnx/<model>/ (model.onnx, graph-
optimized fp32; model.int8.onnx; tokenizer.json; onnx.json), checked against SentenceTransformer on probe sentences.

Params read: onnx.opset; base also train.base_model (its spec).
"""
import argparse

from podsearch.encoders import FINETUNED_DIR, encoder_spec, load_encoder
from podsearch.errors import exit_on_error
from podsearch.onnx_encoder import export_onnx
from podsearch.params import load_params, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=("base", "finetuned"))
    parser.add_argument("--finetuned", default=FINETUNED_DIR, help="folder of the fine-tuned model")
    parser.add_argument("--out", required=True, help="e.g. models/onnx/<model>")
    args = parser.parse_args(argv)
    setup_logging(f"export_{args.model}")

    with exit_on_error(f"export_{args.model}"):
        opset = int(load_params("onnx")["opset"])
        spec = encoder_spec(args.model, load_params("train")["base_model"] if args.model == "base" else None,
                            args.finetuned)
        export_onnx(load_encoder(args.model, spec), args.out, opset=opset, source=spec)


if __name__ == "__main__":
    main()
