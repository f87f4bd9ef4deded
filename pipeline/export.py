"""``python -m pipeline.export``: a checkpoint as an ONNX file, labels and crop settings inside.

    python -m pipeline.export                                   # the shipped model -> runs/export/fingers.onnx
    python -m pipeline.export --model runs/mine/model.pt --out mine.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from pipeline.cli_options import add_model_option, command_name
from pipeline.errors import run_command
from pipeline.lenet.checkpoint import DEFAULT_MODEL
from pipeline.lenet.onnx_export import INPUT, OUTPUT, export_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("export"),
        description="Export a checkpoint (one model or an ensemble) to ONNX. Input 'image': float32 "
                    "(batch, 1, 28, 28) crops scaled to [0, 1]; output 'logits'. The label names, crop settings "
                    "and model config are stored in the file's metadata_props. Needs: pip install \"handcam[export]\".",
        epilog="examples:\n  python -m pipeline.export                       # the shipped model, to runs/export/fingers.onnx\n"
               "  python -m pipeline.export --model runs/mine/model.pt --out mine.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_option(parser)
    parser.add_argument("--out", metavar="ONNX", help="output file (default: runs/export/MODEL.onnx)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime comparison")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out) if args.out else Path("runs") / "export" / Path(args.model or DEFAULT_MODEL).with_suffix(".onnx").name
    result = export_checkpoint(args.model, out, overwrite=args.force, opset=args.opset, check=not args.no_check)
    kind = f"ensemble of {result.members}" if result.members > 1 else "single model"
    print(f"wrote {result.out} ({result.bytes / 1024:.0f} KiB, {kind}): input '{INPUT}' float32 (batch, 1, {result.size}, {result.size}) in [0, 1], "
          f"output '{OUTPUT}' over {len(result.labels)} labels: {', '.join(result.labels)}")
    if result.max_abs_diff is None:
        print("not checked: onnxruntime is not installed")
    else:
        print(f"onnxruntime_max_abs_diff={result.max_abs_diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
