"""Comparison benchmark against torchvision / timm / pytorchcv: the same as `inception-zoo bench`.

    python benchmarks/compare.py --channels-last --dtype fp32 bf16 --markdown docs/benchmarks.md

See inception_zoo/bench.py for what is measured and how.
"""

from inception_zoo.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
