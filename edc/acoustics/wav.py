"""WAV files (PCM, Python's ``wave``): the RIRs ``edc.predict rir=true`` writes and the dry sound it convolves."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from edc.errors import EdcInputError

PEAK = 10.0 ** (-1.0 / 20.0)  # a written file's peak: -1 dBFS


def write_wav(path, samples: np.ndarray, fs: int) -> float:
    """Write ``samples`` ``(n,)`` as mono 24-bit PCM at ``fs`` Hz, scaled so that the peak is -1 dBFS.
    Returns the scale (file samples = scale * ``samples``, full scale 1)."""
    samples = np.asarray(samples, np.float64)
    peak = float(np.abs(samples).max(initial=0.0))
    scale = PEAK / peak if peak > 0 else 1.0
    ints = np.round(samples * scale * (2 ** 23 - 1)).astype("<i4")
    data = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()  # little-endian: the low 3 bytes
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(3)
        out.setframerate(int(fs))
        out.writeframes(data)
    return scale


def read_wav(path, source: str = "convolve") -> tuple[np.ndarray, int]:
    """``(samples (n,) float64 in [-1, 1], fs)`` of a PCM WAV file (8 to 32 bit); channels are averaged."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, fs = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise EdcInputError(f"{source}={path}: file not found. Fix: give the path of a WAV file.") from None
    except (wave.Error, EOFError) as err:
        raise EdcInputError(f"{source}={path}: not a PCM WAV file ({err}). "
                            "Fix: export it as 16- or 24-bit PCM WAV (float WAV is not read).") from None
    if width == 1:
        ints = np.frombuffer(raw, np.uint8).astype(np.int64) - 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int64)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 2 ** 23, ints - 2 ** 24, ints)
    else:
        ints = np.frombuffer(raw, {2: "<i2", 4: "<i4"}[width]).astype(np.int64)
    samples = ints.reshape(-1, channels).mean(-1) / 2.0 ** (8 * width - 1)
    if not len(samples):
        raise EdcInputError(f"{source}={path}: the file has no samples. Fix: give a WAV file with sound in it.")
    return samples, fs
