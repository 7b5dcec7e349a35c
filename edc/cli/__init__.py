"""The commands (``python -m edc.train``, ``evaluate``, ``predict``, ``generate``, ``gpu``): Hydra at the edge,
config checks, exit codes.

Imported before any command loads numpy, it pins numpy's OpenBLAS to its AVX2 kernels on CPUs with AVX-512
(:func:`pin_blas_kernels`), so that ``python -m edc.generate`` simulates the same curves, bit for bit, as on CPUs without it."""
import os
import sys


def pin_blas_kernels() -> bool:
    """Have OpenBLAS, once numpy loads it, run its AVX2 (``Haswell``) kernels on an x86 CPU with AVX-512, unless
    ``OPENBLAS_CORETYPE`` is set or numpy is loaded already; True where it did. pyroomacoustics' products go
    through it, and its AVX-512 kernels round differently: on an AVX-512 machine 13 of the paper's 6000 rooms
    came out 1 ulp off ../shared's curves, and with the AVX2 kernels those 13 bit for bit (docs/data.md)."""
    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules:
        return False
    try:
        with open("/proc/cpuinfo") as info:  # Linux; elsewhere the library's own choice stands
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    if "avx2" not in flags or "avx512f" not in flags:
        return False
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    return True


pin_blas_kernels()
